"""A brute-force Python evaluation of segment definitions over the whole database (the third
opinion next to the SQL compiler and the engine): every table read into dicts, every person
tested one by one with the meanings documented in ``siyu.segments.sqlcompile``."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from siyu.accounts.selectors import DataScope
from siyu.commerce.models import Event, EventType, Order, OrderItem
from siyu.customers.models import FollowRelation, FollowTag
from siyu.groups.models import GroupMember
from siyu.insights.models import Metrics
from siyu.org.models import Department, Employee, EmployeeDepartment
from siyu.profiles.models import Profile, ProfileKey
from siyu.segments.grammar import Cond, Node

TZ = timezone.get_default_timezone()


def _start(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=TZ)


def _test(op: str, v: Any, n: Any) -> bool:
    if op == "gte":
        return n >= v
    if op == "lte":
        return n <= v
    if op == "eq":
        return n == v
    return v[0] <= n <= v[1]


class Brute:
    def __init__(self, now: datetime):
        self.now = now.replace(microsecond=0)
        self.profiles = {p.id: p for p in Profile.objects.all()}
        self.person = {pid: (p.merged_into_id or pid) for pid, p in self.profiles.items()}
        self.customers: dict[int, set[int]] = defaultdict(set)
        for k in ProfileKey.objects.filter(kind="external_userid", customer__isnull=False):
            self.customers[self.person[k.profile_id]].add(k.customer_id)
        self.relations: dict[int, list[FollowRelation]] = defaultdict(list)
        for r in FollowRelation.objects.all():
            self.relations[r.customer_id].append(r)
        self.tags: dict[int, set[int]] = defaultdict(set)
        for ft in FollowTag.objects.all():
            self.tags[ft.customer_id].add(ft.tag_id)
        self.stays: dict[int, set[int]] = defaultdict(set)
        for gm in GroupMember.objects.filter(customer__isnull=False, left_at__isnull=True):
            self.stays[gm.customer_id].add(gm.group_id)
        self.metrics = {m.profile_id: m for m in Metrics.objects.all()}
        self.orders: dict[int, list[Order]] = defaultdict(list)
        for o in Order.objects.all():
            self.orders[self.person[o.profile_id]].append(o)
        self.items: dict[int, list[OrderItem]] = defaultdict(list)
        for i in OrderItem.objects.select_related("order"):
            self.items[self.person[i.profile_id]].append(i)
        self.types = dict(EventType.objects.values_list("code", "id"))
        self.events: dict[int, list[Event]] = defaultdict(list)
        for e in Event.objects.all():
            self.events[self.person[e.profile_id]].append(e)
        self.paths = dict(Department.objects.values_list("id", "path"))
        self.emp_depts: dict[int, set[int]] = defaultdict(set)
        for ed in EmployeeDepartment.objects.all():
            self.emp_depts[ed.employee_id].add(ed.department_id)
        self.userids = dict(Employee.objects.values_list("userid", "id"))

    def rels(self, p: int) -> list[FollowRelation]:
        return [r for c in self.customers[p] for r in self.relations[c]]

    def universe(self, scope: DataScope) -> list[int]:
        live = [pid for pid, p in self.profiles.items() if p.merged_into_id is None]
        if scope.everything:
            return live
        if scope.nothing:
            return []
        if scope.department_id is not None:
            employees = self.subtree_employees([scope.department_id])
        else:
            employees = {self.userids[scope.wecom_userid]} if scope.wecom_userid in self.userids else set()
        return [p for p in live if any(r.employee_id in employees for r in self.rels(p))]

    def subtree_employees(self, departments: list[int]) -> set[int]:
        roots = [self.paths[d] for d in departments if d in self.paths]
        inside = {d for d, path in self.paths.items() if any(path.startswith(r) for r in roots)}
        return {e for e, ds in self.emp_depts.items() if ds & inside}

    def count(self, node: Node, scope: DataScope) -> int:
        return sum(1 for p in self.universe(scope) if self.test(node, p))

    def test(self, node: Node, p: int) -> bool:
        if isinstance(node, Cond):
            got = self.cond(node, p)
        elif node.op == "and":
            got = all(self.test(i, p) for i in node.items)
        else:
            got = any(self.test(i, p) for i in node.items)
        return not got if node.negate else got

    def valid_orders(self, p: int, since: datetime | None = None) -> list[Order]:
        return [o for o in self.orders[p] if o.status != "refunded" and (since is None or o.paid_at >= since)]

    def cond(self, c: Cond, p: int) -> bool:  # noqa: C901
        f, op, v = c.field, c.op, c.value
        since = self.now - timedelta(days=c.days) if c.days else None
        prof = self.profiles[p]
        if f == "tag":
            have = set().union(*(self.tags[cu] for cu in self.customers[p]))
            if op == "any":
                return bool(have & set(v))
            if op == "all":
                return set(v) <= have
            return not have & set(v)
        if f in ("employee", "department"):
            emps = set(v) if f == "employee" else self.subtree_employees(list(v))
            hit = any(r.status == "active" and r.employee_id in emps for r in self.rels(p))
            return hit if op == "any" else not hit
        if f == "channel":
            hit = any(r.state in v for r in self.rels(p))
            return hit if op == "any" else not hit
        if f == "group":
            groups = set().union(*(self.stays[cu] for cu in self.customers[p]))
            hit = bool(groups & set(v)) if v else bool(groups)
            return hit if op == "any" else not hit
        if f == "relation":
            rels = self.rels(p)
            if v == "active":
                return any(r.status == "active" for r in rels)
            if v == "lost":
                return bool(rels) and not any(r.status == "active" for r in rels)
            return not self.customers[p]
        if f == "added_at":
            rels = self.rels(p)
            if not rels:
                return False
            first = min(r.added_at for r in rels)
            if op == "within_days":
                return first >= self.now - timedelta(days=v)
            return _start(v[0]) <= first < _start(v[1] + timedelta(days=1))
        if f.startswith("profile."):
            name = f[len("profile.") :]
            if name in ("member_level", "join_store", "gender"):
                return getattr(prof, name) in v
            if name == "points":
                return _test(op, v, prof.points)
            value = getattr(prof, name)
            if op == "is_set":
                return (value is not None) == v
            if op == "birthday_within_days":
                if value is None:
                    return False
                today = self.now.astimezone(TZ).date()
                for i in range(v + 1):
                    d = today + timedelta(days=i)
                    if (d.month, d.day) == (value.month, value.day):
                        return True
                    if (value.month, value.day) == (2, 29) and (d.month, d.day) == (3, 1):
                        try:
                            date(d.year, 2, 29)
                        except ValueError:
                            return True
                return False
            if value is None:
                return False
            if name == "birthday":
                return v[0] <= value <= v[1]
            return _start(v[0]) <= value < _start(v[1] + timedelta(days=1))
        if f.startswith("custom."):
            return self.custom(c, prof.custom or {})
        m = self.metrics.get(p)
        if f == "rfm_class":
            return m is not None and m.rfm_class in v
        if f in ("rfm.r", "rfm.f", "rfm.m"):
            return (getattr(m, f[-1]) if m else 0) in v
        if f == "stage":
            return (m.stage if m else "prospect") in v
        if f == "value_band":
            return m is not None and m.value_band in v
        if f == "value_score":
            return _test(op, v, m.value_score if m else 0)
        if f == "bought":
            return any(
                getattr(i, op) in v and i.order.status != "refunded" and (since is None or i.paid_at >= since)
                for i in self.items[p]
            )
        if f == "order_count":
            return _test(op, v, len(self.valid_orders(p, since)))
        if f == "amount_spent":
            cents = sum(
                int(((o.amount - o.refunded_amount) * 100).to_integral_value()) for o in self.valid_orders(p, since)
            )
            return _test(op, v, cents)
        if f == "last_order_at":
            orders = self.valid_orders(p)
            if not orders:
                return False
            last = max(o.paid_at for o in orders)
            if op == "within_days":
                return last >= self.now - timedelta(days=v)
            if op == "before_days":
                return last < self.now - timedelta(days=v)
            return _start(v[0]) <= last < _start(v[1] + timedelta(days=1))
        if f == "event":
            tid = self.types.get(c.type)
            n = sum(1 for e in self.events[p] if e.type_id == tid and (since is None or e.at >= since))
            return _test(op, v, n)
        raise AssertionError(f)

    def custom(self, c: Cond, values: dict[str, Any]) -> bool:
        key = c.field[len("custom.") :]
        value = values.get(key)
        if c.op == "is_set":
            return (value is not None and value != "") == c.value
        if c.custom_type == "multi":
            have = set(value) if isinstance(value, list) else set()
            if c.op == "any":
                return bool(have & set(c.value))
            if c.op == "all":
                return set(c.value) <= have
            return not have & set(c.value)
        if value is None:
            return False
        if c.custom_type == "text":
            return value == c.value if c.op == "eq" else c.value.lower() in str(value).lower()
        if c.custom_type == "number":
            return _test(c.op, c.value, float(value))
        if c.custom_type == "date":
            if c.op == "within_days":
                today = self.now.astimezone(TZ).date()
                return (today - timedelta(days=c.value)).isoformat() <= value <= today.isoformat()
            return c.value[0].isoformat() <= value <= c.value[1].isoformat()
        return value in c.value  # choice


def decimal_cents(d: Decimal) -> int:
    return int((d * 100).to_integral_value())
