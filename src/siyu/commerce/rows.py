"""Checking one ingestion row (docs/cdp.md "Ingestion rows"): plain functions that turn an outside
row (REST JSON or a file line, every value possibly a string) into clean Python values, or a
``{field: message}`` dict of what is wrong. Nothing here touches the database."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone

from siyu.profiles import services as profile_services

SHANGHAI = ZoneInfo("Asia/Shanghai")
KEY_KINDS = profile_services.KEY_ORDER
KEY_LIMITS = {"unionid": 64, "member_no": 64, "phone": 20, "external_userid": 128, "openid": 128}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
TYPE_CODE = re.compile(r"^[a-z0-9_]{1,32}$")
MONEY_MAX = Decimal("9999999999.99")
DATE_MIN, DATE_MAX = datetime(1900, 1, 1, tzinfo=SHANGHAI), datetime(2200, 1, 1, tzinfo=SHANGHAI)
MAX_ITEMS = 500
MAX_JSON = 8192  # bytes of props / attributes

ORDER_STATUSES = ("paid", "part_refunded", "refunded")
GENDERS = {
    "0": 0,
    "1": 1,
    "2": 2,
    "男": 1,
    "女": 2,
    "未知": 0,
    "m": 1,
    "f": 2,
    "male": 1,
    "female": 2,
    "unknown": 0,
}


class RowError(Exception):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


def blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def text(row: dict[str, Any], name: str, limit: int, *, required: bool = False, out: str | None = None) -> str:
    value = row.get(name)
    if type(value) is str:  # the common case, fast
        s = value.strip()
        # isprintable: a C-speed pass that is true of ordinary text (no control character); the
        # regex only for the rest (text with spaces other than " ", line breaks...)
        if s and len(s) <= limit and (s.isprintable() or not _CONTROL.search(s)):
            return s
        if not s and not required:  # an empty cell (most key columns of a row)
            return ""
    elif value is None and not required:
        return ""
    if blank(value):
        if required:
            raise RowError(out or name, "required")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise RowError(out or name, "must be text")
    s = str(value).strip()
    if isinstance(value, float) and value.is_integer():
        s = str(int(value))  # a spreadsheet's number cell holding an id
    if len(s) > limit:
        raise RowError(out or name, f"too long (max {limit} characters)")
    if _CONTROL.search(s):
        raise RowError(out or name, "control characters are not allowed")
    return s


_MONEY: dict[str, Decimal] = {}  # checked money texts (amounts and prices repeat): text -> value


def money(row: dict[str, Any], name: str, *, required: bool = False, default: Decimal = Decimal(0)) -> Decimal:
    value = row.get(name)
    if type(value) is str and value.strip():
        try:
            return _MONEY[value]
        except KeyError:
            pass
        d = _money(value, name, required, default)
        if len(_MONEY) > 100_000:
            _MONEY.clear()
        _MONEY[value] = d
        return d
    return _money(value, name, required, default)


def _money(value: object, name: str, required: bool, default: Decimal) -> Decimal:
    if blank(value):
        if required:
            raise RowError(name, "required")
        return default
    if isinstance(value, bool):
        raise RowError(name, "not a number")
    try:
        d = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        raise RowError(name, "not a number") from None
    if not d.is_finite() or d < 0 or d > MONEY_MAX:
        raise RowError(name, "must be between 0 and 9999999999.99")
    if d != d.quantize(Decimal("0.01")):
        raise RowError(name, "at most 2 decimals")
    return d.quantize(Decimal("0.01"))


def integer(row: dict[str, Any], name: str, *, lo: int, hi: int, default: int, out: str | None = None) -> int:
    value = row.get(name)
    if type(value) is str and value.isascii() and value.isdigit() and len(value) < 16 and lo <= (n := int(value)) <= hi:
        return n  # plain digits within range: the common case, without the Decimal round trip
    if blank(value):
        return default
    if isinstance(value, bool):
        raise RowError(out or name, "not an integer")
    try:
        d = Decimal(str(value).strip())
        if not d.is_finite() or d != d.to_integral_value():
            raise InvalidOperation
    except InvalidOperation:
        raise RowError(out or name, "not an integer") from None
    if not lo <= d <= hi:
        raise RowError(out or name, f"must be between {lo} and {hi}")
    return int(d)


def moment(row: dict[str, Any], name: str, *, required: bool = False) -> datetime | None:
    """ISO 8601 (a naive time is Asia/Shanghai's)."""
    value = row.get(name)
    if blank(value):
        if required:
            raise RowError(name, "required")
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        s = value.strip()
        if s.endswith("Z"):
            s = s[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(s.replace("/", "-"))
        except ValueError:
            raise RowError(name, "not an ISO 8601 time") from None
    else:
        raise RowError(name, "not an ISO 8601 time")
    if timezone.is_naive(dt):
        dt = dt.replace(tzinfo=SHANGHAI)
    if not DATE_MIN <= dt < DATE_MAX:
        raise RowError(name, "out of range")
    return dt


def day(row: dict[str, Any], name: str) -> date | None:
    value = row.get(name)
    if blank(value):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise RowError(name, "not a date (YYYY-MM-DD)")
    try:
        d = date.fromisoformat(value.strip().replace("/", "-")[:10])
    except ValueError:
        raise RowError(name, "not a date (YYYY-MM-DD)") from None
    if not date(1900, 1, 1) <= d <= date(2200, 1, 1):
        raise RowError(name, "out of range")
    return d


def json_object(row: dict[str, Any], name: str) -> dict[str, Any]:
    """An object (REST) or a JSON text holding one (files)."""
    value = row.get(name)
    if blank(value):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise RowError(name, "not valid JSON") from None
    if not isinstance(value, dict):
        raise RowError(name, "must be a JSON object")
    if len(json.dumps(value, ensure_ascii=False, default=str)) > MAX_JSON:
        raise RowError(name, f"too large (max {MAX_JSON} characters)")
    return value


def keys(row: dict[str, Any]) -> dict[str, str]:
    """The row's customer keys (normalised; at least one)."""
    out: dict[str, str] = {}
    for kind in KEY_KINDS:
        v = text(row, kind, 128 if kind != "phone" else 64)
        if not v:
            continue
        if kind == "phone":
            v = profile_services.normalise_phone(v)
            if not 5 <= len(v) <= 20:
                raise RowError("phone", "not a phone number")
        elif len(v) > KEY_LIMITS[kind]:
            raise RowError(kind, f"too long (max {KEY_LIMITS[kind]} characters)")
        out[kind] = v
    if not out:
        raise RowError(
            "keys", "at least one customer key is required (unionid, phone, member_no, external_userid, openid)"
        )
    return out


def order(row: dict[str, Any], default_source: str) -> dict[str, Any]:
    """A clean order (raises RowError)."""
    clean: dict[str, Any] = {
        "order_no": text(row, "order_no", 64, required=True),
        "source": text(row, "source", 32) or default_source,
        "keys": keys(row),
        "store_code": text(row, "store_code", 64),
        "guide_userid": text(row, "guide_userid", 64),
        "channel": text(row, "channel", 32),
        "paid_at": moment(row, "paid_at", required=True),
        "amount": money(row, "amount", required=True),
        "discount": money(row, "discount"),
    }
    status = text(row, "status", 16) or "paid"
    if status not in ORDER_STATUSES:
        raise RowError("status", "must be paid, part_refunded or refunded")
    refunded = money(row, "refunded_amount")
    if status == "refunded" and not refunded:
        refunded = clean["amount"]
    if refunded > clean["amount"]:
        raise RowError("refunded_amount", "more than the amount")
    clean["status"], clean["refunded_amount"] = status, refunded
    clean["items"] = items(row.get("items"))
    return clean


def items(value: object) -> list[dict[str, Any]]:
    if blank(value):
        return []
    if not isinstance(value, list):
        raise RowError("items", "must be a list")
    if len(value) > MAX_ITEMS:
        raise RowError("items", f"too many items (max {MAX_ITEMS})")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise RowError(f"items[{i}]", "must be an object")
        try:
            out.append(
                {
                    "sku": text(item, "sku", 64),
                    "name": text(item, "name", 128),
                    "category": text(item, "category", 64),
                    "brand": text(item, "brand", 64),
                    "quantity": integer(item, "quantity", lo=0, hi=1_000_000, default=1),
                    "price": money(item, "price"),
                }
            )
        except RowError as e:  # named after the item only when it fails (no f-strings per good item)
            raise RowError(f"items[{i}].{e.field}", e.message) from None
    return out


def event(row: dict[str, Any], default_source: str) -> dict[str, Any]:
    code = text(row, "type", 32, required=True)
    if not TYPE_CODE.match(code):
        raise RowError("type", "must be [a-z0-9_], 1 to 32 characters")
    return {
        "event_id": text(row, "event_id", 64, required=True),
        "source": text(row, "source", 32) or default_source,
        "keys": keys(row),
        "type": code,
        "at": moment(row, "at", required=True),
        "props": json_object(row, "props"),
    }


def member(row: dict[str, Any], custom_fields: dict[str, Any]) -> dict[str, Any]:
    """A clean member row for ``profiles.services.upsert_members``. Custom values come as
    ``custom`` (an object) or ``custom.<key>`` entries (file columns)."""
    member_no = text(row, "member_no", 64, required=True)
    row_keys = keys({**row, "member_no": member_no})
    fields: dict[str, Any] = {}
    for name, limit, out in (("name", 128, "name"), ("level", 32, "member_level"), ("join_store", 64, "join_store")):
        if not blank(row.get(name)):
            fields[out] = text(row, name, limit)
    if not blank(row.get("gender")):
        g = GENDERS.get(str(row["gender"]).strip().lower())
        if g is None:
            raise RowError("gender", "must be 0/1/2 (unknown/male/female)")
        fields["gender"] = g
    if not blank(row.get("points")):
        fields["points"] = integer(row, "points", lo=-(10**15), hi=10**15, default=0)
    if not blank(row.get("birthday")):
        fields["birthday"] = day(row, "birthday")
    if not blank(row.get("joined_at")):
        fields["member_joined_at"] = moment(row, "joined_at")
    custom = _custom(row, custom_fields)
    return {"keys": row_keys, "fields": fields, "attributes": json_object(row, "attributes"), "custom": custom}


def _custom(row: dict[str, Any], custom_fields: dict[str, Any]) -> dict[str, Any]:
    given = row.get("custom")
    if given is not None and not isinstance(given, dict):
        raise RowError("custom", "must be an object")
    custom_in = dict(given or {})
    custom_in.update({k[7:]: v for k, v in row.items() if k.startswith("custom.")})
    custom: dict[str, Any] = {}
    for key, value in custom_in.items():
        f = custom_fields.get(key)
        if f is None:
            raise RowError(f"custom.{key}"[:80], "no such custom field")
        if blank(value):
            continue  # an empty cell leaves the value alone
        try:
            custom[key] = profile_services.clean_custom_value(f, value)
        except ValueError as e:
            raise RowError(f"custom.{key}", str(e)) from None
    return custom
