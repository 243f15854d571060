"""The plain SQL compiler: a definition tree → a ``Q`` on the live profiles (the truth).

Each condition is a semi-join (``id IN (subquery)``) over the other apps' tables, read through
their selectors' querysets; NOT is ``NOT IN``, which is exact because no subquery yields NULL.
A WeCom customer belongs to the person its ``external_userid`` key's profile is, or is merged
into (``profiles.selectors.customer_persons``); orders, items and events to
``COALESCE(profile.merged_into_id, profile_id)``.

The meaning of each condition (the engine and the tests' brute force answer the same):

- tag any/all/none: corp tags on any follow relation (any status) of the person's customers;
- employee any/none: an *active* relation with one of the employees; department: with an employee
  of the departments' subtrees (any of the employee's departments);
- channel any/none: a relation (any status) added through one of the contact-way states;
- group any/none: a current stay (not left) of one of the person's customers in one of the groups,
  or in any group for ``[]``;
- relation: active = an active relation; lost = relations, none active; none = no WeCom customer;
- added_at: the person's first relation's ``added_at`` (the earliest of all), by local day / since
  ``now - N days``;
- profile.*: the live profile's own member data; birthday_within_days N: the birthday's month and
  day fall on one of the days today … today + N (a 29 February birthday counts on 1 March in
  other years);
- metrics (rfm_class, rfm.r/f/m, stage, value_band, value_score): the person's ``Metrics`` row; no
  row reads as r=f=m=0, no class, stage prospect, value 0, no band;
- orders: paid orders not fully refunded (``status != refunded``) of the cluster; amounts net of
  refunds, in cents; ``days`` = ``paid_at >= now - N days``; last_order_at is the latest such
  order (within_days: ≥ now - N days; before_days: a last order earlier than that; between: on
  those local days);
- bought: an item of such an order with the sku / category / brand, ``days`` as above;
- event: the number of events of the type, ``days`` = ``at >= now - N days``.

Dates are local days (``TIME_ZONE``) with both ends included. ``now`` is truncated to the second.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import connection
from django.db.models import BigIntegerField, Count, F, FloatField, Q, QuerySet, Sum, TextField
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, ExtractDay, ExtractMonth, Round
from django.utils import timezone

from siyu.accounts.selectors import DataScope
from siyu.commerce import selectors as commerce_selectors
from siyu.customers import selectors as customer_selectors
from siyu.groups import selectors as group_selectors
from siyu.insights import selectors as insight_selectors
from siyu.org import selectors as org_selectors
from siyu.profiles import selectors as profile_selectors
from siyu.segments.grammar import Cond, Group, Node

ACTIVE = customer_selectors.RelationStatus.ACTIVE
NOTHING = Q(pk__in=[])
EVERYTHING = Q(id__isnull=False)


# --- time ---------------------------------------------------------------------------------------
def normalise_now(now: datetime | None) -> datetime:
    now = now or timezone.now()
    if timezone.is_naive(now):
        now = timezone.make_aware(now, timezone.get_default_timezone())
    return now.replace(microsecond=0)


def day_start(d: date) -> datetime:
    """The first instant of a local day."""
    return timezone.make_aware(datetime.combine(d, time.min), timezone.get_default_timezone())


def local_today(now: datetime) -> date:
    return timezone.localtime(now, timezone.get_default_timezone()).date()


def birthday_days(now: datetime, days: int) -> set[int]:
    """month*100+day of the local days today … today + ``days``; 229 when 1 March is among them in
    a year without 29 February."""
    today = local_today(now)
    out: set[int] = set()
    for i in range(days + 1):
        d = today + timedelta(days=i)
        out.add(d.month * 100 + d.day)
        if d.month == 3 and d.day == 1:
            try:
                date(d.year, 2, 29)
            except ValueError:
                out.add(229)
    return out


# --- the compiled pieces ----------------------------------------------------------------------------
def _persons(customer_ids: Any) -> Q:
    return Q(id__in=profile_selectors.persons_of_customers(customer_ids))


def _person_of(qs: QuerySet[Any]) -> QuerySet[Any]:
    """A commerce queryset (orders, items, events) with its row's person."""
    return qs.annotate(person=Coalesce(F("profile__merged_into_id"), F("profile_id")))


def order_cents() -> Any:
    """An order's net amount in cents (amount less refunds), the same expression for the SQL count
    and for the engine's load."""
    return Cast(Round((F("amount") - F("refunded_amount")) * 100), BigIntegerField())


def valid_orders() -> QuerySet[Any]:
    return commerce_selectors.orders().exclude(status=commerce_selectors.ORDER_REFUNDED)


def _range_q(name: str, op: str, value: Any) -> Q:
    if op == "gte":
        return Q(**{f"{name}__gte": value})
    if op == "lte":
        return Q(**{f"{name}__lte": value})
    if op == "eq":
        return Q(**{name: value})
    low, high = value
    return Q(**{f"{name}__gte": low, f"{name}__lte": high})


def range_test(op: str, value: Any) -> Callable[[Any], bool]:
    """The Python test of gte / lte / eq / between (the tests' brute force and zero checks)."""
    if op == "gte":
        return lambda n: n >= value
    if op == "lte":
        return lambda n: n <= value
    if op == "eq":
        return lambda n: n == value
    return lambda n: value[0] <= n <= value[1]


def _aggregate(per_person: QuerySet[Any], op: str, value: Any) -> Q:
    """Persons whose aggregate ``n`` passes the test; persons without rows have 0."""
    test = _range_q("n", op, value)
    if range_test(op, value)(0):
        return ~Q(id__in=per_person.exclude(test).values("person"))
    return Q(id__in=per_person.filter(test).values("person"))


def _metric(pred: Q, default_matches: bool) -> Q:
    rows = insight_selectors.metrics()
    if default_matches:
        return ~Q(id__in=rows.exclude(pred).values("profile_id"))
    return Q(id__in=rows.filter(pred).values("profile_id"))


def _first_added(lo: datetime, hi: datetime | None) -> Q:
    rel = customer_selectors.follow_relations()
    within = rel.filter(added_at__gte=lo) if hi is None else rel.filter(added_at__gte=lo, added_at__lt=hi)
    return _persons(within.values("customer_id")) & ~_persons(rel.filter(added_at__lt=lo).values("customer_id"))


def _profile_sub(qs: QuerySet[Any]) -> Q:
    return Q(id__in=qs.values("id"))


def _custom(c: Cond, now: datetime) -> Q:
    key = c.field[len("custom.") :]
    profiles = profile_selectors.all_profiles()
    text = profiles.alias(v=Cast(KT(f"custom__{key}"), TextField()))
    if c.op == "is_set":
        is_set = _profile_sub(text.filter(v__isnull=False).exclude(v=""))
        return is_set if c.value else ~is_set
    if c.custom_type == "text":
        if c.op == "eq":
            return _profile_sub(text.filter(v=c.value))
        return _profile_sub(text.filter(v__icontains=c.value))
    if c.custom_type == "number":
        number = profiles.alias(v=Cast(KT(f"custom__{key}"), FloatField())).filter(v__isnull=False)
        return _profile_sub(number.filter(_range_q("v", c.op, c.value)))
    if c.custom_type == "date":
        if c.op == "within_days":
            today = local_today(now)
            low, high = (today - timedelta(days=c.value)).isoformat(), today.isoformat()
        else:
            low, high = c.value[0].isoformat(), c.value[1].isoformat()
        return _profile_sub(text.filter(v__gte=low, v__lte=high))
    if c.custom_type == "choice":
        return _profile_sub(text.filter(v__in=list(c.value)))
    # multi: the JSON list holds one of / all of the values
    table = profiles.model._meta.db_table
    values = list(c.value)
    if connection.vendor == "postgresql":
        where = f'("{table}"."custom" -> %s) ' + ("?&" if c.op == "all" else "?|") + " %s"
        matched = _profile_sub(profiles.extra(where=[where], params=[key, values]))
    else:
        one = f'EXISTS (SELECT 1 FROM json_each("{table}"."custom", %s) WHERE json_each.value IN ({{marks}}))'
        path = '$."' + key + '"'
        if c.op == "all":
            wheres = [one.format(marks="%s") for _v in values]
            params: list[Any] = [p for v in values for p in (path, v)]
        else:
            wheres = [one.format(marks=", ".join(["%s"] * len(values)))]
            params = [path, *values]
        matched = _profile_sub(profiles.extra(where=wheres, params=params))
    return ~matched if c.op == "none" else matched


def cond_q(c: Cond, now: datetime) -> Q:
    q = _cond_q(c, now)
    return ~q if c.negate else q


def _cond_q(c: Cond, now: datetime) -> Q:  # noqa: C901 - one branch per field of the grammar
    f, op, v = c.field, c.op, c.value
    rel = customer_selectors.follow_relations()
    since = now - timedelta(days=c.days) if c.days else None
    if f == "tag":
        tags = customer_selectors.follow_tags()
        if op == "all":
            q = _persons(tags.filter(tag_id=v[0]).values("customer_id"))
            for t in v[1:]:
                q &= _persons(tags.filter(tag_id=t).values("customer_id"))
            return q
        anyq = _persons(tags.filter(tag_id__in=list(v)).values("customer_id"))
        return ~anyq if op == "none" else anyq
    if f in ("employee", "department"):
        employees = set(v) if f == "employee" else set().union(*(org_selectors.employee_ids_in_subtree(d) for d in v))
        anyq = (
            _persons(rel.filter(status=ACTIVE, employee_id__in=sorted(employees)).values("customer_id"))
            if employees
            else NOTHING
        )
        return ~anyq if op == "none" else anyq
    if f == "channel":
        anyq = _persons(rel.filter(state__in=list(v)).values("customer_id"))
        return ~anyq if op == "none" else anyq
    if f == "group":
        stays = group_selectors.current_customer_stays()
        if v:
            stays = stays.filter(group_id__in=list(v))
        anyq = _persons(stays.values("customer_id"))
        return ~anyq if op == "none" else anyq
    if f == "relation":
        active = _persons(rel.filter(status=ACTIVE).values("customer_id"))
        if v == "active":
            return active
        if v == "lost":
            return _persons(rel.values("customer_id")) & ~active
        return ~Q(id__in=profile_selectors.customer_persons().values("person"))  # type: ignore[misc]
    if f == "added_at":
        if op == "within_days":
            return _first_added(now - timedelta(days=v), None)
        return _first_added(day_start(v[0]), day_start(v[1] + timedelta(days=1)))
    if f.startswith("profile."):
        return _profile_field(f[len("profile.") :], op, v, now)
    if f.startswith("custom."):
        return _custom(c, now)
    if f == "rfm_class":
        return _metric(Q(rfm_class__in=list(v)), False)
    if f in ("rfm.r", "rfm.f", "rfm.m"):
        return _metric(Q(**{f"{f[-1]}__in": list(v)}), 0 in v)
    if f == "stage":
        return _metric(Q(stage__in=list(v)), "prospect" in v)
    if f == "value_band":
        return _metric(Q(value_band__in=list(v)), False)
    if f == "value_score":
        return _metric(_range_q("value_score", op, v), range_test(op, v)(0))
    if f == "bought":
        items = commerce_selectors.order_items().filter(**{f"{op}__in": list(v)})
        items = items.exclude(order__status=commerce_selectors.ORDER_REFUNDED)
        if since is not None:
            items = items.filter(paid_at__gte=since)
        return Q(id__in=_person_of(items).values("person"))
    if f in ("order_count", "amount_spent"):
        orders = valid_orders()
        if since is not None:
            orders = orders.filter(paid_at__gte=since)
        n = Count("id") if f == "order_count" else Sum(order_cents())
        return _aggregate(_person_of(orders).values("person").annotate(n=n), op, v)
    if f == "last_order_at":
        orders = valid_orders()
        if op == "within_days":
            return Q(id__in=_person_of(orders.filter(paid_at__gte=now - timedelta(days=v))).values("person"))
        if op == "before_days":
            cut = now - timedelta(days=v)
        else:
            cut = day_start(v[1] + timedelta(days=1))
            orders_in = orders.filter(paid_at__gte=day_start(v[0]), paid_at__lt=cut)
            return Q(id__in=_person_of(orders_in).values("person")) & ~Q(
                id__in=_person_of(orders.filter(paid_at__gte=cut)).values("person")
            )
        return Q(id__in=_person_of(orders).values("person")) & ~Q(
            id__in=_person_of(orders.filter(paid_at__gte=cut)).values("person")
        )
    if f == "event":
        type_id = commerce_selectors.event_type_ids([c.type]).get(c.type)
        if type_id is None:
            return EVERYTHING if range_test(op, v)(0) else NOTHING
        events = commerce_selectors.events().filter(type_id=type_id)
        if since is not None:
            events = events.filter(at__gte=since)
        return _aggregate(_person_of(events).values("person").annotate(n=Count("id")), op, v)
    raise ValueError(f"unknown field {f}")  # pragma: no cover - the grammar refuses it


def _profile_field(name: str, op: str, v: Any, now: datetime) -> Q:
    if name in ("member_level", "join_store", "gender"):
        return Q(**{f"{name}__in": list(v)})
    if name == "points":
        return _range_q("points", op, v)
    if op == "is_set":
        return Q(**{f"{name}__isnull": not v})
    if op == "birthday_within_days":
        days = sorted(birthday_days(now, v))
        profiles = profile_selectors.all_profiles().filter(birthday__isnull=False)
        profiles = profiles.alias(mmdd=ExtractMonth("birthday") * 100 + ExtractDay("birthday"))
        return _profile_sub(profiles.filter(mmdd__in=days))
    if name == "birthday":
        return Q(birthday__gte=v[0], birthday__lte=v[1])
    return Q(member_joined_at__gte=day_start(v[0]), member_joined_at__lt=day_start(v[1] + timedelta(days=1)))


def node_q(node: Node, now: datetime) -> Q:
    """The ``Q`` on profiles of a tree (no universe: AND it with the scoped persons)."""
    if isinstance(node, Cond):
        return cond_q(node, now)
    assert isinstance(node, Group)
    if node.op == "and":
        q = EVERYTHING
        for item in node.items:
            q = node_q(item, now) if q is EVERYTHING else q & node_q(item, now)
    else:
        q = NOTHING
        for item in node.items:
            q = node_q(item, now) if q is NOTHING else q | node_q(item, now)
    return ~q if node.negate else q


def matching(node: Node, scope: DataScope, now: datetime | None = None) -> QuerySet[Any]:
    """The persons in ``scope`` that ``node`` selects (a queryset of live profiles)."""
    return profile_selectors.person_queryset(scope).filter(node_q(node, normalise_now(now)))


def sql_count(node: Node, scope: DataScope, now: datetime | None = None) -> int:
    return matching(node, scope, now).count()


def sql_person_ids(node: Node, scope: DataScope, now: datetime | None = None) -> list[int]:
    return sorted(matching(node, scope, now).values_list("id", flat=True))
