"""Media (素材管理): temporary media, attachment resources, permanent images (part 2 §6).

- ``media/upload?type=image|voice|video|file`` — multipart field ``media``; every file > 5 bytes;
  image and voice ≤ 2 MB, video ≤ 10 MB, file ≤ 20 MB; the media_id is valid 3 days.
- ``media/upload_attachment?media_type=image|video|file&attachment_type=1|2`` — resources for
  Moments (1) and the product album (2); only these are accepted by add_moment_task.
- ``media/uploadimg`` — a permanent image URL (quota per day and per month).
- ``media/get`` — the bytes of a temporary media; 40007 once expired.

``check_media()`` is the one place other areas validate a media_id (welcome messages, mass
messages, app messages, Moments).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from urllib.parse import quote

from django.conf import settings
from django.http import HttpResponse

from siyu.wecom_sim import clock, rules
from siyu.wecom_sim.framework import SimRequest, WeComError, endpoint
from siyu.wecom_sim.models import Media

MEDIA_TYPES = ("image", "voice", "video", "file")
ATTACHMENT_MEDIA_TYPES = ("image", "video", "file")
KINDS = ("temp", "attachment", "image")

_CONTENT_TYPES = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "amr": "audio/amr",
    "mp4": "video/mp4",
}


def _sniff(data: bytes) -> str | None:
    """The format a file's first bytes announce, when it is one WeCom checks."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:5] == b"#!AMR":
        return "amr"
    if data[4:8] == b"ftyp":
        return "mp4"
    if data[:4] == b"GIF8":
        return "gif"
    if data[:4] == b"%PDF":
        return "pdf"
    return None


_FORMATS = {"image": {"jpeg", "png"}, "voice": {"amr"}, "video": {"mp4"}}
_EXTENSIONS = {"image": {"jpg", "jpeg", "png"}, "voice": {"amr"}, "video": {"mp4"}}


def _check_format(media_type: str, data: bytes, filename: str) -> None:
    """Images must be JPG/PNG, voice AMR, video MP4 (doc: 上传的媒体文件限制) → else 40004.

    The content decides when it has a recognisable signature; otherwise the file extension does
    (test fixtures and SDK examples often upload placeholder bytes named ``x.jpg``)."""
    allowed = _FORMATS.get(media_type)
    if allowed is None:  # file: anything
        return
    sniffed = _sniff(data)
    if sniffed is not None:
        if sniffed not in allowed:
            raise WeComError(40004)
        return
    ext = os.path.splitext(filename)[1].lower().lstrip(".")
    if ext not in _EXTENSIONS[media_type]:
        raise WeComError(40004)


def _max_bytes(media_type: str) -> int:
    r = rules.get()
    return {
        "image": r.media_image_max_bytes,
        "voice": r.media_voice_max_bytes,
        "video": r.media_video_max_bytes,
        "file": r.media_file_max_bytes,
    }[media_type]


def _read_upload(req: SimRequest, max_bytes: int) -> tuple[bytes, str]:
    """The multipart ``media`` part: 44001 when missing or empty, 40006 at ≤ 5 bytes, 45001 too big."""
    f = req.http.FILES.get("media") if req.http.method == "POST" else None
    if f is None:
        raise WeComError(44001)
    if f.size > max_bytes:
        raise WeComError(45001, f"media size out of limit ({max_bytes} bytes)")
    data = f.read()
    if not data:
        raise WeComError(44001)
    if len(data) <= rules.get().media_min_bytes:
        raise WeComError(40006, f"invalid file size: must be larger than {rules.get().media_min_bytes} bytes")
    name = f.name or "media"  # the multipart filename is the display name (doc)
    return data, name


def _new_media_id() -> str:
    # Shape of the doc's sample: "1G6nrLmr5EC3MMb_-zK1dDdzmd0p7cNliYu9V5w7o8K0".
    return str(secrets.randbelow(9) + 1) + secrets.token_urlsafe(33)[:43]


@endpoint("media/upload", methods=("POST",))
def upload(req: SimRequest) -> dict:
    media_type = req.query.get("type", "")
    if media_type not in MEDIA_TYPES:
        raise WeComError(40005)
    data, name = _read_upload(req, _max_bytes(media_type))
    _check_format(media_type, data, name)
    m = Media.objects.create(
        media_id=_new_media_id(),
        type=media_type,
        kind="temp",
        filename=name[:255],
        size=len(data),
        content=data,
        created_at=req.now,
    )
    # The doc's sample shows created_at as a string of digits (wechatpy's fixture has an int).
    return {"type": media_type, "media_id": m.media_id, "created_at": str(m.created_at)}


@endpoint("media/upload_attachment", methods=("POST",))
def upload_attachment(req: SimRequest) -> dict:
    media_type = req.query.get("media_type", "")
    if media_type not in ATTACHMENT_MEDIA_TYPES:
        raise WeComError(40005)
    try:
        attachment_type = int(req.query.get("attachment_type", ""))
    except ValueError:
        raise WeComError(40058, "invalid attachment_type") from None
    if attachment_type not in (1, 2):
        raise WeComError(40058, "invalid attachment_type")
    data, name = _read_upload(req, rules.get().attachment_max_bytes)
    _check_format(media_type, data, name)
    m = Media.objects.create(
        media_id=_new_media_id(),
        type=media_type,
        kind="attachment",
        attachment_type=attachment_type,
        filename=name[:255],
        size=len(data),
        content=data,
        created_at=req.now,
    )
    return {"type": media_type, "media_id": m.media_id, "created_at": str(m.created_at)}


def uploadimg_url(media: Media) -> str:
    corp_num = int(hashlib.sha1(settings.SIM_CORP_ID.encode()).hexdigest()[:8], 16)
    return f"https://p.qpic.cn/pic_wework/{corp_num}/{media.media_id[4:]}/0"


@endpoint("media/uploadimg", methods=("POST",))
def uploadimg(req: SimRequest) -> dict:
    r = rules.get()
    # Quota per corp (doc 90454: 1,000 a day, 3,000 a month); a breach is a frequency limit → 45009.
    images = Media.objects.filter(kind="image")
    if (
        r.uploadimg_daily_cap
        and images.filter(created_at__gte=clock.day_start(req.now)).count() >= r.uploadimg_daily_cap
    ):
        raise WeComError(45009, "api freq out of limit: uploadimg daily quota reached")
    if (
        r.uploadimg_monthly_cap
        and images.filter(created_at__gte=clock.month_start(req.now)).count() >= r.uploadimg_monthly_cap
    ):
        raise WeComError(45009, "api freq out of limit: uploadimg monthly quota reached")
    data, name = _read_upload(req, r.media_image_max_bytes)
    _check_format("image", data, name)
    m = Media.objects.create(
        media_id="img_" + hashlib.sha1(data + secrets.token_bytes(8)).hexdigest() + secrets.token_hex(4),
        type="image",
        kind="image",
        filename=name[:255],
        size=len(data),
        content=data,
        created_at=req.now,
    )
    # The doc's sample answers errmsg "" here; the envelope says "ok" like every other call.
    return {"url": uploadimg_url(m)}


def check_media(media_id: str | None, now: int, kind: str | None = None) -> Media:
    """The media behind ``media_id``, or WeComError(40007) when it is unknown or expired.

    ``kind`` narrows what is acceptable: a media type ("image", "voice", "video", "file") or where
    it was uploaded ("temp" = media/upload, "attachment" = media/upload_attachment). Permanent
    images from media/uploadimg have a URL, not a usable media_id.
    """
    if not media_id or not isinstance(media_id, str):
        raise WeComError(40007)
    m = Media.objects.filter(media_id=media_id).defer("content").first()
    if m is None or m.kind == "image":
        raise WeComError(40007)
    if m.created_at + rules.get().media_ttl_s <= now:
        raise WeComError(40007)
    if kind in MEDIA_TYPES and m.type != kind:
        raise WeComError(40007, f"invalid media_id: not a {kind}")
    if kind in ("temp", "attachment") and m.kind != kind:
        raise WeComError(40007, f"invalid media_id: not uploaded as {kind}")
    return m


@endpoint("media/get", methods=("GET",))
def get(req: SimRequest):
    media_id = req.query.get("media_id")
    if not media_id:
        raise WeComError(41006)
    m = check_media(media_id, req.now)
    m = Media.objects.get(media_id=m.media_id)
    data = bytes(m.content or b"")
    ctype = _CONTENT_TYPES.get(_sniff(data) or "", "application/octet-stream")
    resp = HttpResponse(data, content_type=ctype)
    name = m.filename or m.media_id
    try:
        name.encode("latin-1")
        resp["Content-disposition"] = f'attachment; filename="{name}"'
    except UnicodeEncodeError:
        resp["Content-disposition"] = f"attachment; filename*=UTF-8''{quote(name)}"
    resp["Content-Length"] = str(len(data))
    return resp
