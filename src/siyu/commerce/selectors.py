"""Reads of the commerce app (scoped by the viewer's DataScope)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

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
