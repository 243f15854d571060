"""Reads of the commerce app (scoped by the viewer's DataScope)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from siyu.commerce.models import Event, EventType, Order, OrderItem

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


# the built-in event types' names (the migration may store an empty label)
BUILTIN_EVENT_LABELS: dict[str, object] = {
    "browse_product": _("浏览商品"),
    "add_to_cart": _("加入购物车"),
    "coupon_claimed": _("领取优惠券"),
    "coupon_redeemed": _("核销优惠券"),
    "link_clicked": _("点击链接"),
    "store_visit": _("到店"),
    "points_change": _("积分变动"),
}


# --- for the segment builder (added by part E, segments console) ----------------------------------
def event_type_choices() -> list[tuple[str, str]]:
    """Every event type (built-in first, then custom ones by code): (code, label)."""
    out = {k: str(v) for k, v in BUILTIN_EVENT_LABELS.items()}
    for code, label in EventType.objects.order_by("-builtin", "code").values_list("code", "label"):
        if code not in BUILTIN_EVENT_LABELS:  # a built-in type's name is ours (translated)
            out[code] = label or code
    return list(out.items())
