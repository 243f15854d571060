"""Reads of the commerce app.

A person's orders and events are those of every profile in their cluster (docs/cdp.md: keys,
orders and events never move; a person is a live profile and the profiles merged into it), so the
readers take ``cluster_ids`` (``profiles.selectors.cluster_ids``) or a person id, matched in SQL
as ``profile_id = P OR profile.merged_into_id = P``.

The import pages are for admins and operators (the views check the role): no data scope applies.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Prefetch, Q, QuerySet
from django.utils.translation import gettext_lazy as _

from siyu.commerce.models import Event, EventType, ImportJob, Order, OrderItem
from siyu.profiles import services as profile_services

# the built-in event types' names in the viewer's language (the stored label is the Chinese one)
BUILTIN_LABELS = {
    "browse_product": _("浏览商品"),
    "add_to_cart": _("加入购物车"),
    "coupon_claimed": _("领取优惠券"),
    "coupon_redeemed": _("核销优惠券"),
    "link_clicked": _("点击链接"),
    "store_visit": _("到店"),
    "points_change": _("积分变动"),
}
SECTION_ORDERS = 20  # orders shown in the profile page's section
SECTION_EVENTS = 50


def _person_q(person_id: int) -> Q:
    return Q(profile_id=person_id) | Q(profile__merged_into_id=person_id)


def encode_cursor(at: datetime, pk: int) -> str:
    raw = json.dumps([at.isoformat(), pk], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[datetime, int] | None:
    """(time, id) from a cursor, or None for junk."""
    try:
        at, pk = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(pk, int) or not isinstance(at, str):
            return None
        return datetime.fromisoformat(at), pk
    except (ValueError, TypeError):
        return None


@dataclass
class OrderPage:
    items: list[Order]
    next_cursor: str | None


def orders_page(
    *, person_id: int | None = None, cluster_ids: Sequence[int] | None = None, after: str = "", limit: int = 50
) -> OrderPage:
    """A person's orders, newest paid first, with their items (``order.items.all()`` prefetched);
    ``after`` is the previous page's ``next_cursor``."""
    qs: QuerySet[Order] = Order.objects.all()
    if cluster_ids is not None:
        qs = qs.filter(profile_id__in=list(cluster_ids))
    elif person_id is not None:
        person = profile_services.person_ids([person_id]).get(person_id, person_id)
        qs = qs.filter(_person_q(person))
    seek = decode_cursor(after) if after else None
    if seek is not None:
        at, pk = seek
        qs = qs.filter(Q(paid_at__lt=at) | Q(paid_at=at, id__lt=pk))
    rows = list(
        qs.order_by("-paid_at", "-id").prefetch_related(Prefetch("items", queryset=OrderItem.objects.order_by("id")))[
            : limit + 1
        ]
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return OrderPage(rows, encode_cursor(rows[-1].paid_at, rows[-1].id) if more and rows else None)


def events_of(cluster_ids: Sequence[int], *, limit: int = SECTION_EVENTS) -> list[dict[str, Any]]:
    """A person's latest events (newest first) with their type's label."""
    types = {pk: (code, label) for pk, code, label in EventType.objects.values_list("id", "code", "label")}
    out = []
    for e in Event.objects.filter(profile_id__in=list(cluster_ids)).order_by("-at", "-id")[:limit]:
        code, label = types.get(e.type_id, ("", ""))
        out.append(
            {
                "at": e.at,
                "code": code,
                "label": BUILTIN_LABELS.get(code) or label or code,
                "props": e.props,
                "source": e.source,
            }
        )
    return out


def orders_section(person_id: int, cluster_ids: list[int], viewer: Any) -> dict[str, Any] | None:
    """The profile page's orders section (``commerce/section_orders.html``)."""
    page = orders_page(cluster_ids=cluster_ids, limit=SECTION_ORDERS)
    total = Order.objects.filter(profile_id__in=cluster_ids).count() if page.next_cursor else len(page.items)
    return {"orders": page.items, "total": total, "more": page.next_cursor is not None}


def events_section(person_id: int, cluster_ids: list[int], viewer: Any) -> dict[str, Any] | None:
    """The profile page's events timeline (``commerce/section_events.html``)."""
    return {"events": events_of(cluster_ids)}


def event_types() -> list[EventType]:
    return list(EventType.objects.order_by("-builtin", "code"))


# --- import jobs -----------------------------------------------------------------------------------


def recent_jobs(limit: int = 20) -> list[ImportJob]:
    return list(ImportJob.objects.select_related("created_by").order_by("-created_at", "-id")[:limit])


def import_job(job_id: int) -> ImportJob | None:
    return ImportJob.objects.filter(id=job_id).first()


# --- for the segment engine (added by part D) ------------------------------------------------------
# statuses, for readers that filter on them
ORDER_REFUNDED = Order.Status.REFUNDED


def orders() -> QuerySet[Order]:
    """Every order (each with ``profile_id``, ``paid_at``, ``amount``, ``refunded_amount``, ``status``)."""
    return Order.objects.all()


def order_items() -> QuerySet[OrderItem]:
    """Every order item (repeating its order's ``profile_id`` and ``paid_at``)."""
    return OrderItem.objects.all()


def events() -> QuerySet[Event]:
    """Every behaviour event (``type_id``, ``profile_id``, ``at``)."""
    return Event.objects.all()


def event_type_ids(codes: Iterable[str] | None = None) -> dict[str, int]:
    """Event type row ids by code (all types when ``codes`` is None)."""
    qs = EventType.objects.all()
    if codes is not None:
        qs = qs.filter(code__in=list(codes))
    return dict(qs.values_list("code", "id"))


# --- for the segment builder (added by part E, segments console) ----------------------------------
def event_type_choices() -> list[tuple[str, str]]:
    """Every event type (built-in first, then custom ones by code): (code, label)."""
    out = {k: str(v) for k, v in BUILTIN_LABELS.items()}
    for code, label in EventType.objects.order_by("-builtin", "code").values_list("code", "label"):
        if code not in BUILTIN_LABELS:  # a built-in type's name is ours (translated)
            out[code] = label or code
    return list(out.items())
