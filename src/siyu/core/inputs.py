"""Bounds for outside input, in one place: ids, dates, offsets, texts, link URLs and uploaded media.

Console forms and views and the REST schemas all check input through this module, so a value
the database cannot hold (an id beyond its 64-bit signed range, a date before 1970 or after 2100
whose arithmetic or time-zone conversion overflows) or a text with control characters is a clear
400/422 or a form error, never a 500:

- REST (django-ninja / pydantic): ``DbId``, ``Offset``, ``Limit``, ``ApiDate``, ``ApiDateTime``,
  ``LinkUrl`` and ``InputSchema`` (the base of every input body: no control characters in any
  string it holds).
- Console forms: ``IdField``, ``DateField``, ``DateTimeField``, ``LinkUrlField`` and
  ``TextCheckMixin``.
- Console query strings without a form: ``query_id`` / ``query_date`` (400 ``BadInput``).
- Uploads: ``check_media`` (WeCom's media/upload limits, by content).
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

from django import forms
from django.core.exceptions import BadRequest
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.files import File
from django.core.validators import URLValidator
from django.http import HttpResponse
from django.utils.translation import gettext as _g
from django.utils.translation import gettext_lazy as _
from ninja import Schema
from PIL import Image, UnidentifiedImageError
from pydantic import AfterValidator, Field, model_validator

log = logging.getLogger("siyu.inputs")

DB_ID_MAX = 2**63 - 1  # the database's BIGINT (SQLite INTEGER, PostgreSQL bigint)
DATE_MIN = date(1970, 1, 1)  # a sane window: arithmetic (± days, time zones) stays in range
DATE_MAX = date(2100, 12, 31)
OFFSET_MAX = 1_000_000_000
LINK_SCHEMES = ("http", "https")
# C0 controls and DEL, except tab, line feed and carriage return (allowed in texts)
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class BadInput(BadRequest):
    """A console query parameter out of bounds: answered 400 with the message (siyu.core.views.bad_request)."""


# --- plain checks (raise ValueError with a clear message) -------------------------------------
def check_text(value: str) -> str:
    if CONTROL_CHARS.search(value):
        raise ValueError("must not contain control characters (NUL etc.)")
    return value


def check_link_url(value: str) -> str:
    if not value:
        return value
    check_text(value)
    parts = urlsplit(value.strip())
    if parts.scheme.lower() not in LINK_SCHEMES or not parts.netloc:
        raise ValueError("must be an http(s) URL")
    return value


def check_date(value: date) -> date:
    if not (DATE_MIN <= value <= DATE_MAX):
        raise ValueError(f"must be between {DATE_MIN.isoformat()} and {DATE_MAX.isoformat()}")
    return value


def check_datetime(value: datetime) -> datetime:
    naive = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    # a day's margin each side: converting to the corp's time zone must stay in range
    if not (datetime(DATE_MIN.year, 1, 2) <= naive <= datetime(DATE_MAX.year, 12, 30)):
        raise ValueError(f"must be between {DATE_MIN.isoformat()} and {DATE_MAX.isoformat()}")
    return value


# --- REST types (pydantic / django-ninja) ---------------------------------------------------------
DbId = Annotated[int, Field(ge=1, le=DB_ID_MAX)]
Offset = Annotated[int, Field(ge=0, le=OFFSET_MAX)]
ApiDate = Annotated[date, Field(ge=DATE_MIN, le=DATE_MAX)]
ApiDateTime = Annotated[datetime, AfterValidator(check_datetime)]
LinkUrl = Annotated[str, AfterValidator(check_link_url)]
Text = Annotated[str, AfterValidator(check_text)]  # a path or query string without control characters


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, (list, tuple, set)):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, Schema):
        for v in value.__dict__.values():
            yield from _strings(v)


class InputSchema(Schema):
    """Base of every REST input: no string anywhere in it (nested dicts and lists too) may hold a
    control character."""

    @model_validator(mode="after")
    def _no_control_chars(self) -> InputSchema:
        for s in _strings(self.__dict__):
            check_text(s)
        return self


# --- console forms ------------------------------------------------------------------------------
def _validate_text(value: object) -> None:
    if isinstance(value, str) and CONTROL_CHARS.search(value):
        raise DjangoValidationError(_("不能包含控制字符。"), code="control")


def _validate_date(value: date | None) -> None:
    if value is None:
        return
    try:
        check_datetime(value) if isinstance(value, datetime) else check_date(value)
    except ValueError:
        raise DjangoValidationError(
            _("日期须在 %(min)s 至 %(max)s 之间。"),
            code="date_range",
            params={"min": DATE_MIN.isoformat(), "max": DATE_MAX.isoformat()},
        ) from None


class IdField(forms.IntegerField):
    """A row or WeCom id: 1 … 2^63-1."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", DB_ID_MAX)
        super().__init__(**kwargs)


class DateField(forms.DateField):
    """A day, entered with the browser's date picker (YYYY-MM-DD)."""

    widget = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    default_validators = [_validate_date]


class DateTimeField(forms.DateTimeField):
    """A moment, entered with the browser's date and time picker (YYYY-MM-DDTHH:MM; the form also
    takes "YYYY-MM-DD HH:MM")."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
    default_validators = [_validate_date]


# An "HH:MM" text field's widget: the browser's time picker (it submits exactly that).
TIME_INPUT = forms.TimeInput(attrs={"type": "time", "placeholder": "HH:MM"}, format="%H:%M")


class LinkUrlField(forms.URLField):
    """An http(s) link (no javascript:, data:, ftp: …)."""

    default_validators = [URLValidator(schemes=list(LINK_SCHEMES)), _validate_text]


if TYPE_CHECKING:  # the mixin is for forms: typed as one, a plain mixin at run time
    _FormBase = forms.BaseForm
else:
    _FormBase = object


def refused_if_invalid(response: HttpResponse, form: forms.BaseForm) -> HttpResponse:
    """A console page showing ``form``: answered 400 when the form was refused (its errors shown)."""
    if form.errors:
        response.status_code = 400
    return response


class TextCheckMixin(_FormBase):
    """Form mixin: no control character in any text field's value."""

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data is None:  # a parent's clean() may return None: Django keeps cleaned_data then
            data = self.cleaned_data
        for name, value in list(data.items()):
            values = value if isinstance(value, (list, tuple)) else [value]
            if any(isinstance(v, str) and CONTROL_CHARS.search(v) for v in values):
                self.add_error(name, _("不能包含控制字符。"))
        return data


# --- console query strings ----------------------------------------------------------------------
def query_id(params: Mapping[str, Any], name: str) -> int | None:
    """``params[name]`` as an id (None when absent or empty); anything else is a 400."""
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= DB_ID_MAX:
        log.info("bad query parameter %s=%r", name, raw[:40])
        raise BadInput(_g("参数 %(name)s 无效：须为 1 至 %(max)d 之间的整数。") % {"name": name, "max": DB_ID_MAX})
    return value


def query_date(params: Mapping[str, Any], name: str) -> date | None:
    """``params[name]`` as a YYYY-MM-DD date in the sane window (None when absent); else a 400."""
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        return check_date(date.fromisoformat(raw[:10]))
    except ValueError:
        log.info("bad query parameter %s=%r", name, raw[:40])
        raise BadInput(
            _g("参数 %(name)s 无效：须为 %(min)s 至 %(max)s 之间的日期。")
            % {"name": name, "min": DATE_MIN.isoformat(), "max": DATE_MAX.isoformat()}
        ) from None


# --- uploaded media: WeCom's media/upload limits, checked by content -------------------------------
# media/upload (contract part2 §6.1, rule R17): every file > 5 bytes; image JPG/PNG ≤ 2 MB;
# voice AMR ≤ 2 MB; video MP4 ≤ 10 MB; file ≤ 20 MB.
MEDIA_MIN = 5
MEDIA_MAX = {"image": 2 * 1024 * 1024, "voice": 2 * 1024 * 1024, "video": 10 * 1024 * 1024, "file": 20 * 1024 * 1024}
MEDIA_TYPES = {"image": "image/jpeg", "voice": "audio/amr", "video": "video/mp4", "file": "application/octet-stream"}


class MediaError(ValueError):
    pass


def check_media(kind: str, data: bytes, name: str = "", content_type: str = "") -> str:
    """The content type of an upload of ``kind`` whose bytes meet WeCom's limits (a file keeps the
    ``content_type`` it came with); MediaError if not."""
    if kind not in MEDIA_MAX:
        raise MediaError(_g("不支持的素材类型。"))
    if name and CONTROL_CHARS.search(name):
        raise MediaError(_g("文件名不能包含控制字符。"))
    size = len(data)
    if size <= MEDIA_MIN:
        raise MediaError(_g("文件太小（须大于 5 字节）。"))
    if size > MEDIA_MAX[kind]:
        raise MediaError(_g("文件太大：最大 %(mb)d MB。") % {"mb": MEDIA_MAX[kind] // (1024 * 1024)})
    if kind == "image":
        return _image_type(data)
    if kind == "voice" and not data.startswith(b"#!AMR"):
        raise MediaError(_g("语音须为 AMR 格式。"))
    if kind == "video" and not (len(data) >= 12 and data[4:8] == b"ftyp"):
        raise MediaError(_g("视频须为 MP4 格式。"))
    if kind == "file" and content_type and not CONTROL_CHARS.search(content_type):
        return content_type[:100]
    return MEDIA_TYPES[kind]


def _image_type(data: bytes) -> str:
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format
            img.verify()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise MediaError(_g("图片须为 JPG 或 PNG 格式。")) from None
    if fmt not in ("JPEG", "PNG"):
        raise MediaError(_g("图片须为 JPG 或 PNG 格式。"))
    return "image/jpeg" if fmt == "JPEG" else "image/png"


def validate_upload(kind: str) -> Callable[[File[Any] | None], None]:
    """A form-field validator for an uploaded file of ``kind`` (reads it, then rewinds)."""

    def validator(f: File[Any] | None) -> None:
        if f is None:
            return
        f.seek(0)
        data = f.read()
        f.seek(0)
        try:
            check_media(kind, data, getattr(f, "name", "") or "")
        except MediaError as e:
            raise DjangoValidationError(str(e), code="media") from e

    return validator


class IdConverter:
    """URL converter ``<id:name>``: digits naming an id the database can hold (else no match: 404)."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        n = int(value)
        if not 1 <= n <= DB_ID_MAX:
            raise ValueError("id out of range")
        return n

    def to_url(self, value: int | str) -> str:
        return str(int(value))


def id_list(values: Iterable[object]) -> list[int]:
    """The ids among ``values`` (checkbox lists): junk and out-of-range values are dropped."""
    out: list[int] = []
    for v in values:
        try:
            n = int(str(v).strip())
        except ValueError:
            continue
        if 1 <= n <= DB_ID_MAX:
            out.append(n)
    return out
