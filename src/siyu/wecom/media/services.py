"""Stored media and their WeCom media ids.

An operator uploads a file once (``store``); a message that needs it asks ``media_id(pk)`` (or
``media_id(pk, moment=True)`` for Moments) and gets an id WeCom accepts now:

- media/upload (temporary media) for welcome messages, group welcome templates and mass messages;
  media/upload_attachment with attachment_type 1 for Moments (contract part 2 §6.1, §6.2,
  add_moment_task accepts only the latter);
- an id lives 3 days (rule R17): it is re-uploaded on use once it is within ``MARGIN_S`` of its
  expiry, and a recurring timer (``REFRESH_KIND``) re-uploads ahead of time the ids of media used
  in the last ``KEEP_FRESH_S``, so a welcome (20 s to answer, doc 92137) never waits for an upload;
- a caller that still gets 40007 (invalid media_id: WeCom forgot it early) calls ``forget(pk)``
  and asks again.

WeCom calls are made outside write transactions (each update is a single statement).
"""

from __future__ import annotations

import hashlib
import logging
import time

from django.db import transaction

from siyu.core import inputs, timers
from siyu.wecom import gateway
from siyu.wecom.models import StoredMedia

logger = logging.getLogger("siyu.wecom.media")

TTL_S = 3 * 24 * 3600  # media/upload doc: a temporary media id is valid 3 days
MARGIN_S = 3600  # on use: upload again when less than an hour is left
REFRESH_AHEAD_S = 12 * 3600  # the timer renews ids with less than this left
KEEP_FRESH_S = 30 * 24 * 3600  # ... of media a message used in the last 30 days
REFRESH_KIND = "wecom.media_refresh"
REFRESH_EVERY_S = 3600
KINDS = ("image", "video", "file")


class MediaError(ValueError):
    """A file WeCom would refuse (type, size, format); the text is for the operator."""


def store(kind: str, name: str, data: bytes, content_type: str = "", *, created_by: str = "") -> StoredMedia:
    """Keep an uploaded file (checked by content against WeCom's limits for ``kind``). The same
    bytes under the same name and kind are stored once."""
    if kind not in KINDS:
        raise MediaError("unsupported media kind")
    try:
        checked_type = inputs.check_media(kind, data, name, content_type)
    except inputs.MediaError as e:
        raise MediaError(str(e)) from None
    name = (name or kind).replace("/", "_").replace("\\", "_")[-128:]
    digest = hashlib.sha256(data).hexdigest()
    found = StoredMedia.objects.filter(kind=kind, sha256=digest, name=name).first()
    if found is not None:
        return found
    return StoredMedia.objects.create(
        kind=kind,
        name=name,
        content_type=checked_type,
        size=len(data),
        sha256=digest,
        data=data,
        created_by=created_by[:150],
    )


def _fresh(media_id: str, uploaded_at: float, now: float, margin: float) -> bool:
    return bool(media_id) and uploaded_at + TTL_S - margin > now


def media_id(pk: int, *, moment: bool = False, now: float | None = None) -> str:
    """A WeCom media id for stored media ``pk`` that is valid now: the cached one, or a new upload
    (media/upload; media/upload_attachment for Moments). StoredMedia.DoesNotExist for an unknown
    pk; gateway.WeComAPIError when WeCom refuses the upload."""
    now = time.time() if now is None else now
    m = StoredMedia.objects.defer("data").get(id=pk)
    StoredMedia.objects.filter(id=pk).update(last_used_at=now)
    if moment and _fresh(m.moment_media_id, m.moment_uploaded_at, now, MARGIN_S):
        return m.moment_media_id
    if not moment and _fresh(m.media_id, m.uploaded_at, now, MARGIN_S):
        return m.media_id
    return upload(pk, moment=moment, now=now)


def upload(pk: int, *, moment: bool = False, now: float | None = None) -> str:
    """Upload stored media ``pk`` to WeCom now and cache the id with its upload time."""
    now = time.time() if now is None else now
    m = StoredMedia.objects.get(id=pk)
    file = (m.name, bytes(m.data))
    if moment:
        res = gateway.contact().external_contact.upload_attachment(m.kind, 1, file)
        StoredMedia.objects.filter(id=pk).update(moment_media_id=res["media_id"], moment_uploaded_at=now)
    else:
        res = gateway.contact().media.upload(m.kind, file)
        StoredMedia.objects.filter(id=pk).update(media_id=res["media_id"], uploaded_at=now)
    return str(res["media_id"])


def forget(pk: int) -> None:
    """Drop the cached ids of ``pk`` (WeCom answered 40007 for one): the next use uploads again."""
    StoredMedia.objects.filter(id=pk).update(media_id="", uploaded_at=0, moment_media_id="", moment_uploaded_at=0)


def refresh_due(now: float | None = None, limit: int = 200) -> int:
    """Re-upload the ids of media in use (used in the last 30 days) that expire within 12 hours.
    Returns how many ids were renewed; a refusal is logged and left to the on-use re-upload."""
    now = time.time() if now is None else now
    in_use = StoredMedia.objects.filter(last_used_at__gte=now - KEEP_FRESH_S)
    cutoff = now - TTL_S + REFRESH_AHEAD_S  # uploaded before this: less than 12 h left
    jobs = [
        (pk, False) for pk in in_use.exclude(media_id="").filter(uploaded_at__lt=cutoff).values_list("id", flat=True)
    ]
    jobs += [
        (pk, True)
        for pk in in_use.exclude(moment_media_id="").filter(moment_uploaded_at__lt=cutoff).values_list("id", flat=True)
    ]
    n = 0
    for pk, moment in jobs[:limit]:
        try:
            upload(pk, moment=moment, now=now)
            n += 1
        except gateway.WeComAPIError as e:
            logger.warning("re-uploading media %s to WeCom failed: %s", pk, e.errcode)
    return n


def ensure_refresh_scheduled() -> None:
    """One pending refresh timer at the next hour boundary (worker start and the timer itself)."""
    slot = int(time.time() // REFRESH_EVERY_S) + 1
    timers.schedule(REFRESH_KIND, slot * REFRESH_EVERY_S, {}, key=f"{REFRESH_KIND}:{slot}")


@timers.handler(REFRESH_KIND)
def _refresh_timer(payload: dict[str, object]) -> None:
    def run() -> None:
        try:
            refresh_due()
        finally:
            ensure_refresh_scheduled()

    transaction.on_commit(run)  # WeCom calls outside the timer's transaction
