"""The month's attribution report: orders, net revenue and commission per guide and per store,
within the viewer's data scope (a store manager sees their store's guides)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from siyu.accounts.selectors import DataScope
from siyu.attribution.models import Attribution, CommissionRule
from siyu.commerce import selectors as commerce_selectors
from siyu.customers import selectors as customer_selectors
from siyu.org import selectors as org_selectors

CENT = Decimal("0.01")


def month_bounds(month: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = timezone.make_aware(dt.datetime(month.year, month.month, 1))
    nxt = dt.date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    return start, timezone.make_aware(dt.datetime(nxt.year, nxt.month, 1))


def _scoped(scope: DataScope, month: dt.date) -> QuerySet[Attribution]:
    start, end = month_bounds(month)
    qs = Attribution.objects.filter(paid_at__gte=start, paid_at__lt=end)
    if not scope.everything:
        ids = org_selectors.employee_ids_for_scope(scope) or set()
        qs = qs.filter(guide_userid__in=list(org_selectors.employee_userids(ids).values()))
    return qs


def rules() -> list[CommissionRule]:
    return list(CommissionRule.objects.order_by("scope", "value"))


def _rates() -> tuple[Decimal, dict[str, Decimal], dict[str, Decimal]]:
    default, stores, categories = Decimal(0), {}, {}
    for r in CommissionRule.objects.all():
        if r.scope == CommissionRule.Scope.DEFAULT:
            default = r.percent
        elif r.scope == CommissionRule.Scope.STORE:
            stores[r.value] = r.percent
        else:
            categories[r.value] = r.percent
    return default, stores, categories


def commissions(rows: list[Attribution]) -> dict[int, Decimal]:
    """Each order's commission: per item, the category's percent, else the store's, else the
    default, on the item's share of the order's net amount (an order without items: on the net)."""
    default, stores, categories = _rates()
    items: dict[int, list[tuple[str, Decimal]]] = defaultdict(list)
    for oid, category, price, qty in (
        commerce_selectors.order_items()
        .filter(order_id__in=[r.order_id for r in rows])
        .values_list("order_id", "category", "price", "quantity")
    ):
        items[oid].append((category, Decimal(price) * qty))
    out: dict[int, Decimal] = {}
    for r in rows:
        store_rate = stores.get(r.store, default)
        net = Decimal(r.amount) - Decimal(r.refunded)
        lines = items.get(r.order_id) or [("", Decimal(r.amount))]
        gross = sum((g for _, g in lines), Decimal(0))
        total = Decimal(0)
        for category, g in lines:
            share = (net * g / gross) if gross else Decimal(0)
            total += share * categories.get(category, store_rate) / 100
        out[r.order_id] = total.quantize(CENT)
    return out


def report(scope: DataScope, month: dt.date) -> dict[str, Any]:
    rows = list(_scoped(scope, month))
    com = commissions(rows)
    by_guide: dict[str, dict[str, Any]] = {}
    by_store: dict[str, dict[str, Any]] = {}
    reasons: dict[str, int] = defaultdict(int)
    depts = org_selectors.department_names({r.department_id for r in rows if r.department_id})
    for r in rows:
        reasons[r.reason] += 1
        net = Decimal(r.amount) - Decimal(r.refunded)
        store = r.store or depts.get(r.department_id or 0, "")
        for key, table in ((r.guide_userid, by_guide), (store, by_store)):
            t = table.setdefault(
                key,
                {
                    "key": key,
                    "orders": 0,
                    "amount": Decimal(0),
                    "refunded": Decimal(0),
                    "net": Decimal(0),
                    "commission": Decimal(0),
                },
            )
            t["orders"] += 1
            t["amount"] += Decimal(r.amount)
            t["refunded"] += Decimal(r.refunded)
            t["net"] += net
            t["commission"] += com[r.order_id]
    names = org_selectors.names_by_userid(k for k in by_guide if k)
    guides = sorted(by_guide.values(), key=lambda t: (-t["net"], t["key"]))
    for g in guides:
        g["name"] = names.get(g["key"]) or g["key"]
    labels = dict(Attribution.Reason.choices)
    return {
        "month": month,
        "guides": guides,
        "stores": sorted(by_store.values(), key=lambda t: (-t["net"], t["key"])),
        "reasons": [
            {"reason": str(labels.get(k, k)), "n": n} for k, n in sorted(reasons.items(), key=lambda kv: -kv[1])
        ],
        "orders": len(rows),
        "net": sum((Decimal(r.amount) - Decimal(r.refunded) for r in rows), Decimal(0)),
        "commission": sum(com.values(), Decimal(0)),
    }


def export_rows(scope: DataScope, month: dt.date) -> list[list[Any]]:
    """One row per attributed order (the report's detail), for the CSV."""
    rows = list(_scoped(scope, month).order_by("paid_at", "order_id"))
    com = commissions(rows)
    names = org_selectors.names_by_userid({r.guide_userid for r in rows if r.guide_userid})
    order_nos = dict(
        commerce_selectors.orders().filter(id__in=[r.order_id for r in rows]).values_list("id", "order_no")
    )
    channels = customer_selectors.channel_names({r.channel for r in rows if r.channel})
    labels = dict(Attribution.Reason.choices)
    return [
        [
            order_nos.get(r.order_id, ""),
            timezone.localtime(r.paid_at).strftime("%Y-%m-%d %H:%M"),
            names.get(r.guide_userid, r.guide_userid),
            r.guide_userid,
            r.store,
            channels.get(r.channel, r.channel),
            str(labels.get(r.reason, r.reason)),
            str(r.amount),
            str(r.refunded),
            str(Decimal(r.amount) - Decimal(r.refunded)),
            str(com[r.order_id]),
        ]
        for r in rows
    ]
