"""Which customers each rule selects at a moment, with the period that makes a task unique.

Rules read the customer data in bulk (numpy arrays, a few queries per rule), so that a morning's
run over a million customers takes seconds:

- browsed: browsed (or added to the cart) at least ``hours`` ago, within the day before that, and
  no order since; one task per browse day.
- repurchase: a customer's own cycle is the mean interval between their orders; due once
  ``fraction`` of it has passed since the last order (within a week of that moment); one task per
  last order (a purchase cycle).
- birthday: birthday in ``days_before`` days; one task per year.
- points: a ``points_expiring`` event (from the brand's membership system: ``props.expire_at``)
  whose points expire within ``days_before`` days; one task per expiry date.
- dormant: the last order ``days`` ago (within a week of that day); one task per last order.
- newcomer: a relation added 1, 3 or 7 (``days``) days ago; one task per day of follow-up, for the
  guide who added them.
- followup: a guide's follow-up record whose next contact is today; one task per record, theirs.
- campaign: a saved segment (within its creator's scope) or a list of customers; one task each.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.utils import timezone

from siyu.accounts.selectors import DataScope
from siyu.commerce import selectors as commerce_selectors
from siyu.customers import selectors as customer_selectors
from siyu.guidetasks.models import FollowUp
from siyu.insights import selectors as insight_selectors
from siyu.org import selectors as org_selectors
from siyu.profiles import selectors as profile_selectors
from siyu.segments import selectors as segment_selectors
from siyu.segments import services as segment_services

DAY = 86400
WINDOW_S = 7 * DAY  # a rule that missed its moment (a night the worker was down) catches up this long

DEFAULTS: dict[str, dict[str, Any]] = {
    "browsed": {"hours": 24, "types": ["browse_product", "add_to_cart"]},
    "repurchase": {"fraction": 0.83, "min_cycle_days": 7},
    "birthday": {"days_before": 3},
    "points": {"days_before": 7},
    "dormant": {"days": 90},
    "newcomer": {"days": [1, 3, 7]},
    "followup": {},
    "campaign": {},
}


@dataclass
class Found:
    """Persons (or customers) a rule selects, each with its period (and, for some, the guide)."""

    persons: list[int] = field(default_factory=list)
    person_periods: list[str] = field(default_factory=list)
    customers: list[int] = field(default_factory=list)
    customer_periods: list[str] = field(default_factory=list)
    customer_employees: list[int] = field(default_factory=list)  # -1: the latest relation's guide


def params_of(kind: str, params: dict[str, Any] | None) -> dict[str, Any]:
    out = dict(DEFAULTS.get(kind, {}))
    out.update(params or {})
    return out


def _local_date(ts: float) -> dt.date:
    return timezone.localtime(dt.datetime.fromtimestamp(ts, tz=dt.UTC)).date()


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time()))


def _persons_of_profiles(profile_ids: Iterable[int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for person, cluster in profile_selectors.clusters(profile_ids).items():
        for pid in cluster:
            out[pid] = person
    return out


# --- the rules ---------------------------------------------------------------------------------------------
def browsed(now: dt.datetime, p: dict[str, Any]) -> Found:
    end = now - dt.timedelta(hours=float(p["hours"]))
    start = end - dt.timedelta(days=1)
    types = list(commerce_selectors.event_type_ids(p["types"]).values())
    rows = list(
        commerce_selectors.events().filter(type_id__in=types, at__gte=start, at__lt=end).values_list("profile_id", "at")
    )
    if not rows:
        return Found()
    person_of = _persons_of_profiles({pid for pid, _ in rows})
    first_browse: dict[int, dt.datetime] = {}
    for pid, at in rows:
        person = person_of.get(pid)
        if person is not None and (person not in first_browse or at < first_browse[person]):
            first_browse[person] = at
    cluster_of = {pid: person_of[pid] for pid in person_of}
    bought: set[int] = set()
    for pid, paid_at in (
        commerce_selectors.orders()
        .filter(profile_id__in=list(cluster_of), paid_at__gte=start)
        .values_list("profile_id", "paid_at")
    ):
        person = cluster_of.get(pid)
        if person is not None and paid_at >= first_browse.get(person, paid_at):
            bought.add(person)
    day = timezone.localtime(end).date().isoformat()
    persons = sorted(set(first_browse) - bought)
    return Found(persons=persons, person_periods=[f"b{day}"] * len(persons))


def metrics_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(person, first order, last order (epoch seconds), orders) of persons with an order."""
    rows = (
        insight_selectors.metrics()
        .filter(last_order_at__isnull=False)
        .values_list("profile_id", "first_order_at", "last_order_at", "orders_total")
    )
    persons, firsts, lasts, counts = [], [], [], []
    for pid, first, last, n in rows.iterator(chunk_size=50_000):
        if last is None:
            continue
        persons.append(pid)
        firsts.append((first or last).timestamp())
        lasts.append(last.timestamp())
        counts.append(n or 0)
    return (
        np.array(persons, dtype=np.int64),
        np.array(firsts, dtype=np.float64),
        np.array(lasts, dtype=np.float64),
        np.array(counts, dtype=np.int64),
    )


def _with_last_order(persons: np.ndarray, lasts: np.ndarray, mask: np.ndarray, prefix: str) -> Found:
    chosen = persons[mask]
    days = lasts[mask]
    return Found(persons=chosen.tolist(), person_periods=[f"{prefix}{_local_date(t).isoformat()}" for t in days])


def repurchase(now: dt.datetime, p: dict[str, Any], arrays: tuple[np.ndarray, ...]) -> Found:
    persons, firsts, lasts, counts = arrays
    t = now.timestamp()
    with np.errstate(divide="ignore", invalid="ignore"):
        cycle = np.where(counts >= 2, (lasts - firsts) / np.maximum(counts - 1, 1), 0.0)
    due = lasts + float(p["fraction"]) * cycle
    mask = (counts >= 2) & (cycle >= float(p["min_cycle_days"]) * DAY) & (due <= t) & (t < due + WINDOW_S)
    mask &= t < lasts + cycle  # the cycle has not run out: past it, the dormant rule takes over
    return _with_last_order(persons, lasts, mask, "r")


def dormant(now: dt.datetime, p: dict[str, Any], arrays: tuple[np.ndarray, ...]) -> Found:
    persons, _firsts, lasts, _counts = arrays
    edge = now.timestamp() - float(p["days"]) * DAY
    return _with_last_order(persons, lasts, (lasts <= edge) & (lasts > edge - WINDOW_S), "d")


def birthday(now: dt.datetime, p: dict[str, Any]) -> Found:
    target = timezone.localtime(now).date() + dt.timedelta(days=int(p["days_before"]))
    days = [(target.month, target.day)]
    if (target.month, target.day) == (2, 28) and not _leap(target.year):
        days.append((2, 29))  # born on 29 February: celebrated on the 28th in a common year
    persons: list[int] = []
    for month, day in days:
        persons += list(
            profile_selectors.all_profiles()
            .filter(merged_into__isnull=True, birthday__month=month, birthday__day=day)
            .values_list("id", flat=True)
        )
    return Found(persons=persons, person_periods=[f"y{target.year}"] * len(persons))


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def points(now: dt.datetime, p: dict[str, Any]) -> Found:
    today = timezone.localtime(now).date()
    last = today + dt.timedelta(days=int(p["days_before"]))
    types = list(commerce_selectors.event_type_ids(["points_expiring"]).values())
    if not types:
        return Found()
    rows = (
        commerce_selectors.events()
        .filter(type_id__in=types, at__gte=now - dt.timedelta(days=120), at__lte=now)
        .values_list("profile_id", "props")
    )
    expiring: dict[int, str] = {}
    for pid, props in rows:
        raw = str((props or {}).get("expire_at") or "")[:10] if isinstance(props, dict) else ""
        try:
            day = dt.date.fromisoformat(raw)
        except ValueError:
            continue
        if today <= day <= last:
            expiring[pid] = min(expiring.get(pid, raw), raw)
    person_of = _persons_of_profiles(expiring)
    by_person: dict[int, str] = {}
    for pid, day_text in expiring.items():
        person = person_of.get(pid)
        if person is not None:
            by_person[person] = min(by_person.get(person, day_text), day_text)
    persons = sorted(by_person)
    return Found(persons=persons, person_periods=[f"p{by_person[x]}" for x in persons])


def newcomer(now: dt.datetime, p: dict[str, Any]) -> Found:
    today = timezone.localtime(now).date()
    out = Found()
    for d in sorted({int(x) for x in p["days"]}):
        day = today - dt.timedelta(days=d)
        rows = (
            customer_selectors.follow_relations()
            .filter(status="active", added_at__gte=_day_start(day), added_at__lt=_day_start(day + dt.timedelta(days=1)))
            .values_list("customer_id", "employee_id")
        )
        for cid, eid in rows:
            out.customers.append(cid)
            out.customer_periods.append(f"n{d}-{day.isoformat()}")
            out.customer_employees.append(eid)
    return out


def followups(now: dt.datetime) -> Found:
    """Follow-up records whose next contact is today (or was in the last week, if a run was missed)."""
    today = timezone.localtime(now).date()
    out = Found()
    for fid, cid, eid in FollowUp.objects.filter(
        next_at__lte=today, next_at__gt=today - dt.timedelta(days=7)
    ).values_list("id", "customer_id", "employee_id"):
        out.customers.append(cid)
        out.customer_periods.append(f"f{fid}")
        out.customer_employees.append(eid)
    return out


def campaign(rule: Any, scope: DataScope) -> Found:
    if rule.customer_ids:
        ids = [int(c) for c in rule.customer_ids]
        return Found(customers=ids, customer_periods=["c"] * len(ids), customer_employees=[-1] * len(ids))
    if rule.segment_id:
        segment = segment_selectors.segment(rule.segment_id)
        if segment is None:
            return Found()
        persons = segment_services.person_ids(segment.definition, scope)
        return Found(persons=list(persons), person_periods=["c"] * len(persons))
    return Found()


# --- customers and their guides -------------------------------------------------------------------------------
class Audience:
    """Read once per run: each person's WeCom customers, each customer's guide (their most recent
    active relation), and each guide's account and store."""

    def __init__(self) -> None:
        pairs = np.array(list(_person_customers()), dtype=np.int64).reshape(-1, 2)
        order = np.argsort(pairs[:, 0], kind="stable") if len(pairs) else np.zeros(0, dtype=np.int64)
        self.by_person = pairs[order, 0] if len(pairs) else np.zeros(0, dtype=np.int64)
        self.customer_of_person = pairs[order, 1] if len(pairs) else np.zeros(0, dtype=np.int64)
        self.guide: dict[int, int] = dict(
            customer_selectors.follow_relations()
            .filter(status="active")
            .order_by("customer_id", "added_at", "id")
            .values_list("customer_id", "employee_id")
            .iterator(chunk_size=100_000)
        )
        homes = org_selectors.home_departments()
        self.employees: dict[int, tuple[str, int | None]] = {
            eid: (userid, homes.get(eid))
            for eid, userid in org_selectors.active_employees().values_list("id", "userid")
        }

    def guides_among(self, employee_ids: set[int]) -> dict[int, int]:
        """Each customer's most recent active relation with one of ``employee_ids`` (a store
        manager's campaign asks their own store's guide)."""
        return dict(
            customer_selectors.follow_relations()
            .filter(status="active", employee_id__in=sorted(employee_ids))
            .order_by("customer_id", "added_at", "id")
            .values_list("customer_id", "employee_id")
        )

    def customers_of(self, persons: list[int], periods: list[str]) -> tuple[list[int], list[str]]:
        if not persons or not len(self.by_person):
            return [], []
        ps = np.array(persons, dtype=np.int64)
        lo = np.searchsorted(self.by_person, ps, side="left")
        hi = np.searchsorted(self.by_person, ps, side="right")
        counts = hi - lo
        if not counts.any():
            return [], []
        idx = np.concatenate([np.arange(a, b) for a, b in zip(lo[counts > 0], hi[counts > 0], strict=True)])
        customers = self.customer_of_person[idx].tolist()
        out_periods = [periods[i] for i, n in enumerate(counts.tolist()) for _ in range(n)]
        return customers, out_periods

    def guide_of(self, customer_id: int, employee_id: int = -1) -> tuple[str, int | None] | None:
        eid = self.guide.get(customer_id) if employee_id < 0 else employee_id
        return self.employees.get(eid) if eid is not None else None


def _person_customers() -> Iterable[tuple[int, int]]:
    """(person, customer) of every WeCom customer with a profile."""
    return ((r["person"], r["customer_id"]) for r in profile_selectors.customer_persons().iterator(chunk_size=100_000))
