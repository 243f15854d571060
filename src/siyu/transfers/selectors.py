"""Reads of continuity, every one within the viewer's ``DataScope``: a handover or item is visible
when its handover or takeover employee is in scope; a churn event when its employee is."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, TypedDict

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from siyu.accounts.selectors import DataScope
from siyu.customers import selectors as customer_selectors
from siyu.groups import selectors as group_selectors
from siyu.org import selectors as org_selectors
from siyu.org.selectors import (
    EmployeeStatus,
    departments_for_scope,
    employee_ids_for_scope,
)
from siyu.transfers.models import ChurnEvent, GroupHandoverItem, Handover, HandoverItem
from siyu.wecom import gateway
from siyu.wecom.gateway import WeComAPIError

if TYPE_CHECKING:
    # model types, through the owners' public faces (their selectors import them)
    from siyu.customers.selectors import Customer
    from siyu.groups.selectors import GroupChat
    from siyu.org.selectors import Department, Employee


def _ids(scope: DataScope) -> set[int] | None:
    return employee_ids_for_scope(scope)


def employees_in_scope(scope: DataScope) -> QuerySet[Employee]:
    return org_selectors.visible_employees(scope)


def takeover_choices(scope: DataScope) -> QuerySet[Employee]:
    return (
        employees_in_scope(scope).filter(status=EmployeeStatus.ACTIVE, contact_enabled=True).order_by("name", "userid")
    )


def employee_by_userid(userid: str) -> Employee | None:
    return org_selectors.employee_by_userid(userid)


def employees_by_id(ids: Iterable[int]) -> list[Employee]:
    return sorted(org_selectors.employees_by_ids(list(ids)), key=lambda e: e.id)


def stores_in_scope(scope: DataScope) -> list[Department]:
    """The departments a resigned transfer may pick takeovers from: those the viewer may browse."""
    return list(departments_for_scope(scope))


def employee_in_scope(scope: DataScope, employee_id: int) -> Employee:
    emp = org_selectors.employee_by_id(employee_id)
    if emp is None:
        raise ObjectDoesNotExist(f"no employee {employee_id}")
    ids = _ids(scope)
    if ids is not None and emp.id not in ids:
        raise PermissionDenied
    return emp


# --- resigned: who left, and what they left behind -----------------------------------------------
def unassigned_from_wecom() -> dict[str, list[str]] | None:
    """get_unassigned_list: handover userid → customers WeCom lists as waiting for a new owner
    (None when WeCom cannot be read; the page then shows our own records)."""
    out: dict[str, list[str]] = {}
    try:
        for row in gateway.contact().external_contact.iter_unassigned():
            if row.get("handover_userid") and row.get("external_userid"):
                out.setdefault(row["handover_userid"], []).append(row["external_userid"])
    except WeComAPIError:
        return None
    return out


class DepartedRow(TypedDict):
    """One departed employee on the resigned page."""

    employee: Employee
    wecom_unassigned: int | None
    our_active: int
    waiting: int
    groups: int


def departed(scope: DataScope, wecom: dict[str, list[str]] | None) -> list[DepartedRow]:
    """Departed employees in scope with unassigned customers or groups: WeCom's list joined with
    our records (relations still active on a departed employee, groups they still own)."""
    emps = {e.userid: e for e in employees_in_scope(scope).filter(status=EmployeeStatus.LEFT)}
    ours = customer_selectors.active_relation_counts_by_userid(list(emps))
    waiting = Counter(
        HandoverItem.objects.filter(
            handover_userid__in=list(emps), kind=Handover.RESIGNED, status=HandoverItem.WAITING
        ).values_list("handover_userid", flat=True)
    )
    groups = group_selectors.unhanded_group_counts(list(emps))
    rows: list[DepartedRow] = []
    for uid, e in emps.items():
        listed = len(wecom.get(uid, [])) if wecom is not None else None
        if not (listed or ours.get(uid) or groups.get(uid)):
            continue
        rows.append(
            {
                "employee": e,
                "wecom_unassigned": listed,
                "our_active": ours.get(uid, 0) - waiting.get(uid, 0),
                "waiting": waiting.get(uid, 0),
                "groups": groups.get(uid, 0),
            }
        )
    rows.sort(key=lambda r: r["employee"].resigned_at or timezone.now(), reverse=True)
    return rows


def unassigned_of(employee: Employee, wecom: dict[str, list[str]] | None) -> list[str]:
    """The customers of a departed employee to hand over: WeCom's list when it could be read, plus
    relations our records still show active (not already waiting in a handover)."""
    waiting = set(
        HandoverItem.objects.filter(handover_userid=employee.userid, status=HandoverItem.WAITING).values_list(
            "external_userid", flat=True
        )
    )
    xs = list(wecom.get(employee.userid, [])) if wecom is not None else []
    seen = set(xs)
    for x in customer_selectors.active_customers_of(employee.id):
        if x not in seen and x not in waiting:
            xs.append(x)
            seen.add(x)
    return [x for x in xs if x not in waiting]


def groups_of(employee: Employee) -> list[GroupChat]:
    return group_selectors.unhanded_groups_of(employee.id)


# --- on-job transfer: which customers ------------------------------------------------------------
def onjob_customers(
    scope: DataScope, employee: Employee, filters: customer_selectors.CustomerFilters | None = None
) -> QuerySet[Customer]:
    """The customers an on-job transfer of ``employee`` may hand over: those with an active relation
    with them, within the viewer's scope (``filters``: the customer list's, narrowed further). The
    console's list and the API's check both read it, so neither can move a customer that is not the
    handover's or not the viewer's."""
    f = filters if filters is not None else customer_selectors.CustomerFilters()
    f.employee_id = employee.id  # the handover's own customers only
    return (
        customer_selectors.customer_queryset(scope, f)
        .filter(relations__employee=employee, relations__status=customer_selectors.RelationStatus.ACTIVE)
        .distinct()
    )


def onjob_selection(scope: DataScope, employee: Employee, external_userids: list[str]) -> tuple[list[str], list[str]]:
    """``external_userids`` (deduplicated, in order) split into those the on-job transfer of
    ``employee`` may hand over and the rest. The rest mixes unknown ids, other employees' customers
    and customers outside the scope on purpose: the caller learns nothing about who they are."""
    xs = list(dict.fromkeys(external_userids))
    ok = set(onjob_customers(scope, employee).filter(external_userid__in=xs).values_list("external_userid", flat=True))
    return [x for x in xs if x in ok], [x for x in xs if x not in ok]


def customers_visible(scope: DataScope, external_userids: list[str]) -> set[str]:
    """Which of ``external_userids`` are customers the viewer's scope may see."""
    xs = list(set(external_userids))
    return set(
        customer_selectors.customer_queryset(scope)
        .filter(external_userid__in=xs)
        .values_list("external_userid", flat=True)
    )


# --- handovers ------------------------------------------------------------------------------------
def handovers(scope: DataScope) -> QuerySet[Handover]:
    qs = Handover.objects.select_related("handover", "created_by").order_by("-id")
    ids = _ids(scope)
    if ids is not None:
        qs = qs.filter(
            Q(handover_id__in=ids) | Q(items__takeover_id__in=ids) | Q(group_items__new_owner_id__in=ids)
        ).distinct()
    return qs


def handover_in_scope(scope: DataScope, handover_id: int) -> Handover:
    h = Handover.objects.select_related("handover").filter(id=handover_id).first()
    if h is None:
        raise Handover.DoesNotExist
    if not handovers(scope).filter(id=h.id).exists():
        raise PermissionDenied
    return h


def status_counts(h: Handover, scope: DataScope | None = None) -> dict[str, int]:
    qs = items(scope, h) if scope is not None else h.items.all()
    counts = {k: 0 for k, _ in HandoverItem.STATUS}
    for row in qs.order_by().values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    counts["total"] = sum(counts.values())
    return counts


def takeover_counts(h: Handover, scope: DataScope | None = None) -> list[dict[str, Any]]:
    qs = items(scope, h) if scope is not None else h.items.all()
    rows: dict[int, dict[str, Any]] = {}
    for r in qs.order_by().values("takeover_id", "takeover__name", "takeover_userid", "status").annotate(n=Count("id")):
        row = rows.setdefault(
            r["takeover_id"],
            {"name": r["takeover__name"] or r["takeover_userid"], "userid": r["takeover_userid"], "total": 0},
        )
        row[r["status"]] = r["n"]
        row["total"] += r["n"]
    return list(rows.values())


def items(scope: DataScope, h: Handover | None = None, status: str = "", q: str = "") -> QuerySet[HandoverItem]:
    qs = HandoverItem.objects.select_related("customer", "takeover").order_by("id")
    if h is not None:
        qs = qs.filter(handover=h)
    ids = _ids(scope)
    if ids is not None:
        handover_ids = set(org_selectors.employee_userids(ids).values())
        qs = qs.filter(Q(takeover_id__in=ids) | Q(handover_userid__in=handover_ids))
    if status:
        qs = qs.filter(status=status)
    if q:
        qs = qs.filter(Q(customer__name__icontains=q) | Q(external_userid=q))
    return qs


def group_items(scope: DataScope, h: Handover) -> QuerySet[GroupHandoverItem]:
    qs = h.group_items.select_related("group", "new_owner").order_by("id")
    ids = _ids(scope)
    if ids is not None and h.handover_id not in ids:
        qs = qs.filter(new_owner_id__in=ids)
    return qs


def remaining(item: HandoverItem, now: datetime | None = None) -> timedelta | None:
    """The 24 h clock of a waiting item: time left until the automatic takeover (None if over)."""
    if item.status != HandoverItem.WAITING or item.due_at is None:
        return None
    left = item.due_at - (now or timezone.now())
    return left if left.total_seconds() > 0 else None


# --- churn ------------------------------------------------------------------------------------------
@dataclass
class ChurnFilters:
    kind: str = ""
    employee_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    notify_status: str = ""
    q: str = ""


def churn(scope: DataScope, f: ChurnFilters | None = None) -> QuerySet[ChurnEvent]:
    f = f or ChurnFilters()
    qs = ChurnEvent.objects.select_related("customer", "employee").order_by("-at", "-id")
    ids = _ids(scope)
    if ids is not None:
        qs = qs.filter(employee_id__in=ids)
    if f.kind:
        qs = qs.filter(kind=f.kind)
    if f.employee_id:
        qs = qs.filter(employee_id=f.employee_id)
    if f.date_from:
        qs = qs.filter(at__gte=timezone.make_aware(datetime.combine(f.date_from, time.min)))
    if f.date_to:
        qs = qs.filter(at__lt=timezone.make_aware(datetime.combine(f.date_to, time.max)))
    if f.notify_status:
        qs = qs.filter(notify_status=f.notify_status)
    if f.q:
        qs = qs.filter(Q(customer__name__icontains=f.q) | Q(external_userid=f.q))
    return qs


# --- dashboard ----------------------------------------------------------------------------------------
def waiting_count(scope: DataScope) -> int | None:
    """Customers waiting for their takeover (the 24 h run), within scope; None before any handover."""
    if not HandoverItem.objects.exists():
        return None
    return items(scope, status=HandoverItem.WAITING).count()


def churn_today(scope: DataScope) -> int | None:
    if not ChurnEvent.objects.exists():
        return None
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    return churn(scope).filter(at__gte=start).count()


# --- the pre-check's refusals, for the page ------------------------------------------------------------
def refusal_rows(refused: dict[str, Any]) -> list[dict[str, Any]]:
    """The customers a handover will not send (``services.Precheck.refused``: external_userid →
    ``Refusal``), with their names, the reason in words and the errcode as secondary text."""
    ids = customer_selectors.customer_ids_by_external(list(refused))
    names = customer_selectors.customer_names(ids.values())
    return [
        {
            "external_userid": x,
            "customer_id": ids.get(x),
            "name": names.get(ids.get(x) or 0, ""),
            "reason": why.reason,
            "errcode": why.errcode,
        }
        for x, why in refused.items()
    ]


def manager_names(events: Iterable[ChurnEvent]) -> dict[str, str]:
    """Manager account → name for the churn page's manager column."""
    return org_selectors.names_by_userid({e.manager_userid for e in events if e.manager_userid})
