"""Reads of the guide's library: the console's lists and the sidebar's (visible to the member)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, TypeVar

from django.db.models import Count, Q, QuerySet

from siyu.materials.models import Category, Material, Script, Use
from siyu.materials.services import VARIABLES

T = TypeVar("T", Script, Material)


def categories(kind: str) -> list[Category]:
    return list(Category.objects.filter(kind=kind).order_by("-order", "name"))


def category_choices(kind: str) -> list[tuple[int, str]]:
    return [(c.id, c.name) for c in categories(kind)]


def _search(qs: QuerySet[T], q: str, fields: Iterable[str]) -> QuerySet[T]:
    q = q.strip()[:64]
    if not q:
        return qs
    cond = Q()
    for f in fields:
        cond |= Q(**{f"{f}__icontains": q})
    return qs.filter(cond)


def scripts(q: str = "", category_id: int | None = None, *, active_only: bool = False) -> QuerySet[Script]:
    qs = Script.objects.all()
    if active_only:
        qs = qs.filter(active=True)
    if category_id:
        qs = qs.filter(category_id=category_id)
    return _search(qs, q, ("title", "content")).order_by("-uses", "-id")


def materials(
    q: str = "", category_id: int | None = None, kind: str = "", *, active_only: bool = False
) -> QuerySet[Material]:
    qs = Material.objects.all()
    if active_only:
        qs = qs.filter(active=True)
    if category_id:
        qs = qs.filter(category_id=category_id)
    if kind:
        qs = qs.filter(kind=kind)
    return _search(qs, q, ("title", "description", "text", "tags")).order_by("-uses", "-id")


def visible(items: Iterable[T], lineage: set[int]) -> list[T]:
    """The items a member whose departments (with their ancestors) are ``lineage`` may use."""
    return [i for i in items if not i.departments or lineage.intersection(i.departments)]


def script_by_id(pk: int) -> Script | None:
    return Script.objects.filter(id=pk).first()


def material_by_id(pk: int) -> Material | None:
    return Material.objects.filter(id=pk).first()


def use_counts_by_employee(item: str, item_id: int) -> list[dict[str, Any]]:
    """How often each member sent this item (most first)."""
    return list(
        Use.objects.filter(item=item, item_id=item_id)
        .values("employee_userid")
        .annotate(n=Count("id"))
        .order_by("-n", "employee_userid")[:100]
    )


def uses_between(since: datetime, until: datetime, userids: Iterable[str] | None = None) -> dict[str, int]:
    """Sends per member in ``[since, until)`` (scripts and materials together)."""
    qs = Use.objects.filter(at__gte=since, at__lt=until)
    if userids is not None:
        qs = qs.filter(employee_userid__in=list(userids))
    return dict(qs.values("employee_userid").annotate(n=Count("id")).values_list("employee_userid", "n"))


def variables() -> tuple[str, ...]:
    return VARIABLES


def kind_choices() -> list[tuple[str, str]]:
    return [(k, str(label)) for k, label in Material.Kind.choices]
