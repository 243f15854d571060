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
from siyu.guidetasks import selectors as task_selectors
from siyu.links import selectors as link_selectors
from siyu.materials import selectors as material_selectors
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


def _rates() -> tuple[Decimal, dict[str, dict[str, Decimal]]]:
    default = Decimal(0)
    by: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for r in CommissionRule.objects.all():
        if r.scope == CommissionRule.Scope.DEFAULT:
            default = r.percent
        else:
            by[r.scope][r.value] = r.percent
    return default, by


def commissions(rows: list[Attribution], month: dt.date | None = None) -> dict[int, Decimal]:
    """Each order's commission: per item, the category's percent, else the guide's tier's (their
    tier in ``month``), else the store's, else the default, on the item's share of the order's net
    amount (an order without items: on the net)."""
    default, by = _rates()
    categories, stores = by["category"], by["store"]
    tier_of = tiers(month) if by["tier"] and month is not None else {}
    items: dict[int, list[tuple[str, Decimal]]] = defaultdict(list)
    for oid, category, price, qty in (
        commerce_selectors.order_items()
        .filter(order_id__in=[r.order_id for r in rows])
        .values_list("order_id", "category", "price", "quantity")
    ):
        items[oid].append((category, Decimal(price) * qty))
    out: dict[int, Decimal] = {}
    for r in rows:
        tier_rate = by["tier"].get(tier_of.get(r.guide_userid, ""))
        store_rate = tier_rate if tier_rate is not None else stores.get(r.store, default)
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
    com = commissions(rows, month)
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
    com = commissions(rows, month)
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


# --- guides' results: the leaderboard and the A/B/C tiers ---------------------------------------------
# A guide's score is the weighted mean of their percentile among the guides shown: revenue
# attributed (net) 40 %, tasks done on time 30 %, new customers 15 %, link clicks 15 %. The top
# fifth are tier A, the next half B, the rest C.
WEIGHTS = {"net": 0.4, "on_time_rate": 0.3, "new_customers": 0.15, "clicks": 0.15}
TIER_A, TIER_B = 0.2, 0.7  # cumulative shares: A the top 20 %, B up to 70 %, C the rest


def _percentiles(values: list[float]) -> list[float]:
    if not values:
        return []
    order = sorted(values)
    n = len(values)
    return [(sum(1 for v in order if v < x) + 0.5 * sum(1 for v in order if v == x)) / n for x in values]


def leaderboard(scope: DataScope, month: dt.date, department_id: int | None = None) -> list[dict[str, Any]]:
    """Every guide in the viewer's scope (or in ``department_id`` and below: a store, a region) with
    their month's results, score and tier, best first."""
    start, end = month_bounds(month)
    employees = org_selectors.visible_employees(scope).filter(
        contact_enabled=True, status=org_selectors.Employee.Status.ACTIVE
    )
    if department_id is not None:
        employees = employees.filter(id__in=org_selectors.employee_ids_in_subtree(department_id))
    guides = dict(employees.values_list("userid", "name"))
    if not guides:
        return []
    userids = list(guides)
    homes = org_selectors.home_departments(employees.values_list("id", flat=True))
    home_of = {u: homes.get(eid) for eid, u in employees.values_list("id", "userid")}
    stores = org_selectors.department_names(d for d in home_of.values() if d)
    tasks = task_selectors.done_counts_between(start, end, userids)
    sends = material_selectors.uses_between(start, end, userids)
    clicks = link_selectors.clicks_by_employee_between(start, end, userids)
    adds = customer_selectors.adds_by_employee_between(start, end)
    rows = list(Attribution.objects.filter(paid_at__gte=start, paid_at__lt=end, guide_userid__in=userids))
    repeat = _repeat_orders(rows)
    sales: dict[str, dict[str, Any]] = defaultdict(lambda: {"orders": 0, "net": Decimal(0), "repeat": 0})
    for r in rows:
        s = sales[r.guide_userid]
        s["orders"] += 1
        s["net"] += Decimal(r.amount) - Decimal(r.refunded)
        s["repeat"] += r.order_id in repeat
    out = []
    for u in userids:
        t = tasks.get(u, {"total": 0, "done": 0, "on_time": 0})
        s = sales[u]
        out.append(
            {
                "userid": u,
                "name": guides[u] or u,
                "store": stores.get(home_of.get(u) or 0, ""),
                "new_customers": adds.get(u, 0),
                "tasks": t["total"],
                "tasks_on_time": t["on_time"],
                "on_time_rate": (t["on_time"] / t["total"]) if t["total"] else 0.0,
                "sends": sends.get(u, 0),
                "clicks": clicks.get(u, 0),
                "orders": s["orders"],
                "net": s["net"],
                "repurchase_rate": (s["repeat"] / s["orders"]) if s["orders"] else 0.0,
            }
        )
    score = [0.0] * len(out)
    for key, weight in WEIGHTS.items():
        for i, p in enumerate(_percentiles([float(row[key]) for row in out])):
            score[i] += weight * p
    for row, sc in zip(out, score, strict=True):
        row["score"] = round(sc * 100, 1)
    out.sort(key=lambda row: (-row["score"], -row["net"], row["name"]))
    n = len(out)
    a_n = max(1, round(n * TIER_A))
    b_n = max(a_n, round(n * TIER_B))
    for i, row in enumerate(out):
        row["rank"] = i + 1
        row["tier"] = "A" if i < a_n else ("B" if i < b_n else "C")
    return out


def _repeat_orders(rows: list[Attribution]) -> set[int]:
    """Of these attributed orders, those whose customer had ordered before (a repurchase)."""
    if not rows:
        return set()
    orders = {
        o["id"]: o
        for o in commerce_selectors.orders()
        .filter(id__in=[r.order_id for r in rows])
        .values("id", "profile_id", "paid_at")
    }
    earlier = set(
        commerce_selectors.orders()
        .filter(
            profile_id__in={o["profile_id"] for o in orders.values()},
            paid_at__lt=max(o["paid_at"] for o in orders.values()),
        )
        .values_list("profile_id", "paid_at")
    )
    first: dict[int, Any] = {}
    for pid, paid in earlier:
        first[pid] = min(first.get(pid, paid), paid)
    return {oid for oid, o in orders.items() if o["profile_id"] in first and first[o["profile_id"]] < o["paid_at"]}


def tiers(month: dt.date) -> dict[str, str]:
    """Each guide's tier for the month (from every guide's results)."""
    return {r["userid"]: r["tier"] for r in leaderboard(DataScope(everything=True), month)}
