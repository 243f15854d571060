"""The corp-tag mirror of a segment for a Moment (朋友圈) to a saved segment.

WeCom's Moments visibility is only employees (``sender_list``) and corp customer tags
(``external_contact_list.tag_list``, part 2 §2.1), so a Moment to a segment is sent as: a corp
tag made for this send (in the tag group Siyu manages, created through WeCom when missing), put
on every active relation of the planned members' WeCom customers with ``mark_tag``, then one
``add_moment_task`` with those relations' employees as senders and that tag as the only tag:
each sender's post is visible only to their customers carrying it (tags are per employee–customer
pair, part 1 §3.5), i.e. to the snapshot's customers.

The tagging runs in the broadcast's executor (the worker), after planning and before sending,
in chunks of customers whose progress is kept in the broadcast's audience (``audience["mirror"]``):
a killed worker's successor continues after the last chunk recorded (``mark_tag`` is idempotent).
The tag stays after the Moment is published: WeCom needs it for the post's visibility. A Moment
that never reached WeCom (it failed, or was cancelled, before add_moment_task) has its tag deleted
(``drop_unsent_tag``), so abandoned sends do not fill the corp's tags (WeCom caps them).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.accounts.selectors import DataScope
from siyu.broadcasts.models import Broadcast, Recipient
from siyu.customers import selectors as customer_selectors
from siyu.customers import services as customer_services
from siyu.customers.tags import selectors as tag_selectors
from siyu.customers.tags import services as tag_services
from siyu.org.selectors import EmployeeStatus

logger = logging.getLogger("siyu.broadcasts")
TAG_GROUP_NAME = "私域分群"  # the corp tag group Siyu manages for segments' Moments (a WeCom name: not translated)
TAG_NAME_MAX = 30  # corp tag names ≤ 30 characters (part 1 §3)
CHUNK = 200  # customers per mark_tag round (each active relation is one call)
KEPT_FAILURES = 50  # failures listed on the detail page (all are counted)
OPERATOR = "朋友圈分群"  # the timeline's operator for these tag changes
REASON = "tag_failed"  # a recipient none of whose relations could be tagged


def is_segment_moment(b: Broadcast) -> bool:
    return b.kind == Broadcast.MOMENT and (b.audience or {}).get("type") == "segment"


def tag_name(segment_name: str, taken: set[str], broadcast_id: int) -> str:
    """ "分群·<segment>·<MMDD HHmm>" within WeCom's 30 characters (the segment's name shortened);
    a name already in the group gets the broadcast's number, so no two sends share a tag."""
    stamp = timezone.localtime().strftime("%m%d %H%M")
    room = TAG_NAME_MAX - len(f"分群··{stamp}")
    seg = (segment_name or "").strip() or str(broadcast_id)
    name = f"分群·{seg[:room]}·{stamp}"
    if name not in taken:
        return name
    suffix = f"#{broadcast_id}"
    return f"分群·{seg[: max(1, room - len(suffix))]}·{stamp}{suffix}"[:TAG_NAME_MAX]


def _group_pk() -> int | None:
    return next((pk for pk, name in tag_selectors.group_choices() if name == TAG_GROUP_NAME), None)


def choose_tag_name(segment_name: str, broadcast_id: int) -> str:
    pk = _group_pk()
    found = tag_selectors.group_tags(pk) if pk is not None else None
    return tag_name(segment_name, set(found[1]) if found else set(), broadcast_id)


def ensure_tag(name: str) -> tuple[int, str]:
    """The tag ``name`` in Siyu's segment tag group, created through WeCom (with the group when it
    is missing): (row id, WeCom tag id). Calls WeCom: never inside a transaction. Creating it twice
    is harmless (a duplicate name in a group is created once, part 1 §3.2)."""
    pk = _group_pk()
    if pk is None:
        pk = tag_services.create_group(TAG_GROUP_NAME, [name]).pk
    by_name = tag_services.ensure_tags(pk, [name])
    if not by_name or name not in by_name:
        raise tag_services.TagChangeError(40068, _("企业微信未能创建本次朋友圈的标签"))
    row = by_name[name]
    return row, tag_selectors.wecom_tag_ids([row])[0]


def _next_customers(b: Broadcast, after: int, limit: int) -> list[int]:
    """The next planned (not skipped) customers of the broadcast, by customer id."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT customer_id FROM broadcasts_recipient WHERE broadcast_id = %s AND state = %s"
            " AND customer_id > %s ORDER BY customer_id LIMIT %s",
            [b.id, Recipient.PLANNED, after, limit],
        )
        return [int(r[0]) for r in cur.fetchall()]


def tag_members(
    b: Broadcast,
    scope: DataScope,
    senders: set[int] | None,
    save: Callable[[dict[str, Any]], None],
    chunk: int = CHUNK,
) -> dict[str, Any]:
    """Tag every active relation (of an active employee among ``senders``, in ``scope``) of the
    planned customers with the mirror's tag, ``CHUNK`` customers at a time; ``save`` records the
    progress after each chunk. A customer none of whose relations could be tagged cannot see the
    Moment: its recipient row is skipped with ``tag_failed`` (counted with the other skips).
    Answers the mirror's state."""
    m: dict[str, Any] = b.audience["mirror"]
    while True:
        ids = _next_customers(b, int(m.get("cursor") or 0), chunk)
        if not ids:
            break
        rels = [
            r
            for r in customer_selectors.relations_for_tagging(scope, ids)
            if r.employee.status == EmployeeStatus.ACTIVE and (senders is None or r.employee_id in senders)
        ]
        result = customer_services.bulk_mark_tags(
            rels, add_tag_pks=[int(m["tag_id"])], remove_tag_pks=[], operator=OPERATOR
        )
        failed = {(f.customer_id, f.userid) for f in result.failures}
        ok = [r for r in rels if (r.customer_id, r.employee.userid) not in failed]
        senders_ok = set(m.get("senders") or []) | {r.employee.userid for r in ok}
        m["senders"] = sorted(senders_ok)
        m["relations"] = int(m.get("relations") or 0) + result.relations
        m["tagged"] = int(m.get("tagged") or 0) + result.succeeded
        m["failed"] = int(m.get("failed") or 0) + len(result.failures)
        kept = list(m.get("failures") or [])
        for f in result.failures[: max(0, KEPT_FAILURES - len(kept))]:
            kept.append({"customer": f.customer_name, "userid": f.userid, "errcode": f.errcode, "errmsg": f.errmsg})
        m["failures"] = kept
        reached = {r.customer_id for r in ok}
        unreached = [c for c in ids if c not in reached]
        if unreached:
            Recipient.objects.filter(broadcast_id=b.id, customer_id__in=unreached, state=Recipient.PLANNED).update(
                state=Recipient.SKIPPED, reason=REASON
            )
        m["cursor"] = ids[-1]
        save(b.audience)
    m["done"] = True
    save(b.audience)
    return m


def drop_unsent_tag(b: Broadcast) -> bool:
    """Delete the tag of a Moment to a segment that never reached WeCom (no add_moment_task job):
    nothing can be visible through it. Calls WeCom: never inside a transaction. A failure is
    logged and the tag stays (the detail page says so). Answers whether it was deleted."""
    b.refresh_from_db()
    m = (b.audience or {}).get("mirror") or {}
    if not is_segment_moment(b) or b.jobid or b.moment_id or not m.get("tag_wecom_id") or m.get("tag_deleted"):
        return False
    try:
        tag_services.delete_tag(str(m["tag_wecom_id"]))
    except tag_services.TagChangeError as e:
        logger.warning("broadcast %s: its Moment's tag could not be deleted: %s", b.id, e)
        return False
    audience = {**b.audience, "mirror": {**m, "tag_deleted": True}}
    Broadcast.objects.filter(id=b.id).update(audience=audience)
    b.audience = audience
    return True
