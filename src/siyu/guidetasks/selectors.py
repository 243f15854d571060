"""Reads of guide tasks: a guide's list, a customer's open tasks, the console's board, a rule's
results; within the viewer's data scope."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from siyu.accounts.selectors import DataScope
from siyu.customers import selectors as customer_selectors
from siyu.guidetasks.models import FollowUp, Rule, Task
from siyu.materials import selectors as material_selectors
from siyu.org import selectors as org_selectors


def rules(scope: DataScope) -> QuerySet[Rule]:
    qs = Rule.objects.all()
    if not scope.everything:
        qs = qs.filter(department_id=scope.department_id) if scope.department_id else qs.none()
    return qs.order_by("-active", "kind", "-id")


def rule_for(scope: DataScope, pk: int) -> Rule | None:
    return rules(scope).filter(id=pk).first()


def rule_stats(rule_ids: list[int]) -> dict[int, dict[str, int]]:
    now = timezone.now()
    rows = (
        Task.objects.filter(rule_id__in=rule_ids)
        .values("rule_id")
        .annotate(
            total=Count("id"),
            done=Count("id", filter=Q(status=Task.Status.DONE)),
            open=Count("id", filter=Q(status=Task.Status.OPEN)),
            overdue=Count("id", filter=Q(status=Task.Status.OPEN, due_at__lt=now)),
        )
    )
    return {r["rule_id"]: r for r in rows}


def _scoped(scope: DataScope) -> QuerySet[Task]:
    qs = Task.objects.all()
    if scope.everything:
        return qs
    ids = org_selectors.employee_ids_for_scope(scope) or set()
    return qs.filter(employee_userid__in=list(org_selectors.employee_userids(ids).values()))


def board(scope: DataScope, *, status: str = "open", rule_id: int | None = None, limit: int = 200) -> list[Task]:
    qs = _scoped(scope)
    now = timezone.now()
    if status == "overdue":
        qs = qs.filter(status=Task.Status.OPEN, due_at__lt=now)
    elif status in Task.Status.values:
        qs = qs.filter(status=status)
    if rule_id:
        qs = qs.filter(rule_id=rule_id)
    tasks = list(qs.select_related("rule").order_by("due_at", "id")[:limit])
    _label(tasks)
    return tasks


def _label(tasks: list[Task]) -> None:
    """Names for a page: the customer, the guide, the suggested content."""
    customers = customer_selectors.customer_names(t.customer_id for t in tasks)
    guides = org_selectors.names_by_userid({t.employee_userid for t in tasks})
    scripts = {t.rule.script_id for t in tasks if t.rule.script_id}
    materials = {t.rule.material_id for t in tasks if t.rule.material_id}
    titles: dict[tuple[str, int], str] = {}
    for sid in scripts:
        s = material_selectors.script_by_id(sid)
        if s is not None:
            titles[("script", sid)] = s.title
    for mid in materials:
        m = material_selectors.material_by_id(mid)
        if m is not None:
            titles[("material", mid)] = m.title
    now = timezone.now()
    for t in tasks:
        t.customer_name = customers.get(t.customer_id) or ""
        t.guide_name = guides.get(t.employee_userid) or t.employee_userid
        t.suggestion = titles.get(("script", t.rule.script_id or 0)) or titles.get(
            ("material", t.rule.material_id or 0), ""
        )
        t.is_overdue = t.status == Task.Status.OPEN and t.due_at < now


def open_for_guide(userid: str, limit: int = 200) -> list[Task]:
    tasks = list(
        Task.objects.filter(employee_userid=userid, status=Task.Status.OPEN)
        .select_related("rule")
        .order_by("due_at", "id")[:limit]
    )
    _label(tasks)
    return tasks


def open_for_customer(userid: str, customer_id: int) -> list[Task]:
    tasks = list(
        Task.objects.filter(employee_userid=userid, customer_id=customer_id, status=Task.Status.OPEN)
        .select_related("rule")
        .order_by("due_at", "id")
    )
    _label(tasks)
    return tasks


def task_of_guide(userid: str, pk: int) -> Task | None:
    return Task.objects.filter(id=pk, employee_userid=userid).select_related("rule").first()


def outcome_choices() -> list[tuple[str, str]]:
    return [(k, str(v)) for k, v in Task.Outcome.choices if k != Task.Outcome.SENT]


def done_counts_between(since: Any, until: Any, userids: list[str] | None = None) -> dict[str, dict[str, int]]:
    """Per guide: tasks due in ``[since, until)``, how many were done, and done on time."""
    qs = Task.objects.filter(due_at__gte=since, due_at__lt=until).exclude(status=Task.Status.CANCELLED)
    if userids is not None:
        qs = qs.filter(employee_userid__in=userids)
    out: dict[str, dict[str, int]] = {}
    for r in qs.values("employee_userid").annotate(
        total=Count("id"),
        done=Count("id", filter=Q(status=Task.Status.DONE)),
        on_time=Count("id", filter=Q(status=Task.Status.DONE, done_at__lte=F("due_at"))),
    ):
        out[r["employee_userid"]] = {"total": r["total"], "done": r["done"], "on_time": r["on_time"]}
    return out


def followups_of(customer_id: int, scope: DataScope, limit: int = 20) -> list[FollowUp]:
    """A customer's follow-up records written by members of the viewer's scope (newest first)."""
    qs = FollowUp.objects.filter(customer_id=customer_id)
    if not scope.everything:
        ids = org_selectors.employee_ids_for_scope(scope) or set()
        qs = qs.filter(employee_id__in=sorted(ids))
    rows = list(qs.order_by("-created_at", "-id")[:limit])
    names = org_selectors.names_by_userid({f.employee_userid for f in rows})
    for f in rows:
        f.author = names.get(f.employee_userid) or f.employee_userid
    return rows
