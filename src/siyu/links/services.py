"""Trackable links: minting, resolving a click, storing it, and publishing clicks as profile events.

A short code is the link's id in base 62 followed by a 6-character signature (HMAC of the id with
the installation's secret key): a guessed or altered code is refused before any database read, and
nobody can enumerate other guides' links. A click is answered with a redirect only once it is
committed (``core.groupcommit``: one transaction per burst), so a stored click is never lost; a
recurring timer turns new clicks into ``link_clicked`` events on the customer's profile (idempotent
on the click's id: a crash between the two steps only repeats an event that is then unchanged).
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections import OrderedDict
from typing import Any

from django.db import connection
from django.utils import timezone
from django.utils.crypto import salted_hmac

from siyu.commerce import services as commerce_services
from siyu.core.groupcommit import GroupWriter
from siyu.links.models import Click, Link

logger = logging.getLogger("siyu.links")

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
SIG_LEN = 6
PATH = "/l/"
EVENT_TYPE = "link_clicked"
EVENT_SOURCE = "siyu_links"
PUBLISH_BATCH = 1000


def _b62(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 62)
        out = ALPHABET[r] + out
        if n == 0:
            return out


def _from_b62(text: str) -> int | None:
    n = 0
    for ch in text:
        i = ALPHABET.find(ch)
        if i < 0:
            return None
        n = n * 62 + i
    return n


def _signature(link_id: int, salt: str = "siyu.links") -> str:
    digest = salted_hmac(salt, str(link_id), algorithm="sha256").digest()
    return _b62(int.from_bytes(digest[:8], "big")).rjust(SIG_LEN, "0")[:SIG_LEN]


def code_of(link_id: int) -> str:
    return _b62(link_id) + _signature(link_id)


def _decode(code: str, salt: str) -> int | None:
    """The id a signed code names, None for a code that is malformed or not signed by us."""
    if not (SIG_LEN < len(code) <= 24):
        return None
    pk = _from_b62(code[:-SIG_LEN])
    if not pk:
        return None
    return pk if hmac.compare_digest(code[-SIG_LEN:], _signature(pk, salt)) else None


def link_id_of(code: str) -> int | None:
    return _decode(code, "siyu.links")


IMAGE_PATH = "/lm/"


def image_path(media_pk: int) -> str:
    """A public, unguessable address of a stored image (a link card's cover: the customer's WeChat
    fetches it, without a console session)."""
    return IMAGE_PATH + _b62(media_pk) + _signature(media_pk, "siyu.links.image")


def image_of(code: str) -> int | None:
    return _decode(code, "siyu.links.image")


def make_link(
    target: str,
    *,
    employee_userid: str,
    external_userid: str = "",
    chat_id: str = "",
    material_id: int | None = None,
    title: str = "",
) -> str:
    """A new short link for one send; returns its path (``/l/<code>``), to be made absolute."""
    link = Link.objects.create(
        target=target,
        material_id=material_id,
        title=title[:64],
        employee_userid=employee_userid[:64],
        external_userid=external_userid[:64],
        chat_id=chat_id[:64],
        created_at=timezone.now(),
    )
    return PATH + code_of(link.id)


# --- a click ----------------------------------------------------------------------------------------------
_TARGETS: OrderedDict[int, str] = OrderedDict()
_TARGETS_MAX = 100_000
_targets_lock = threading.Lock()


def cached_target(link_id: int) -> str | None:
    """The link's target if this process has read it before (no database access)."""
    with _targets_lock:
        return _TARGETS.get(link_id)


def target_of(link_id: int) -> str | None:
    """The link's target (cached in the process: a link never changes)."""
    hit = cached_target(link_id)
    if hit is not None:
        return hit
    found = Link.objects.filter(id=link_id).values_list("target", flat=True).first()
    if found is not None:
        with _targets_lock:
            _TARGETS[link_id] = found
            if len(_TARGETS) > _TARGETS_MAX:
                _TARGETS.popitem(last=False)
    return found


def _insert_clicks(rows: list[Click]) -> None:
    q = connection.ops.quote_name
    table = q(Click._meta.db_table)
    sql = (
        f"INSERT INTO {table} ({q('link_id')}, {q('at')}, {q('user_agent')}, {q('published')}) VALUES (%s, %s, %s, %s)"
    )
    at_field = Click._meta.get_field("at")
    with connection.cursor() as cur:
        cur.executemany(
            sql,
            [(r.link_id, at_field.get_db_prep_save(r.at, connection), r.user_agent, False) for r in rows],
        )


clicks: GroupWriter[Click] = GroupWriter(_insert_clicks, "link-clicks")


def new_click(link_id: int, user_agent: str) -> Click:
    return Click(link_id=link_id, at=timezone.now(), user_agent=user_agent[:255])


def record_click(link_id: int, user_agent: str) -> None:
    """Store a click; returns once it is committed."""
    clicks.store(new_click(link_id, user_agent))


# --- clicks become profile events ------------------------------------------------------------------------
def publish_clicks(limit: int = PUBLISH_BATCH) -> int:
    """Turn up to ``limit`` new clicks into ``link_clicked`` events on the customers' profiles
    (clicks on links sent to a group have no one customer: they are only counted)."""
    rows = list(Click.objects.filter(published=False).order_by("id")[:limit])
    if not rows:
        return 0
    links = {link.id: link for link in Link.objects.filter(id__in={c.link_id for c in rows})}
    events: list[dict[str, Any]] = []
    for c in rows:
        link = links.get(c.link_id)
        if link is None or not link.external_userid:
            continue
        events.append(
            {
                "event_id": f"click-{c.id}",
                "type": EVENT_TYPE,
                "external_userid": link.external_userid,
                "at": c.at.isoformat(),
                "props": {
                    "title": link.title,
                    "url": link.target[:512],
                    "material_id": link.material_id,
                    "employee": link.employee_userid,
                },
            }
        )
    if events:
        result = commerce_services.ingest_events(events, source=EVENT_SOURCE, via="links")
        if result.failed:
            logger.warning("link clicks not published: %s", result.as_dict().get("errors"))
    Click.objects.filter(id__in=[c.id for c in rows]).update(published=True)
    return len(rows)
