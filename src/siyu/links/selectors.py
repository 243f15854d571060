"""Reads of trackable links: clicks per material, per guide and per customer, within a scope."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count, Max, QuerySet

from siyu.accounts.selectors import DataScope
from siyu.links.models import Click, Link
from siyu.org import selectors as org_selectors


def _links(scope: DataScope) -> QuerySet[Link]:
    qs = Link.objects.all()
    if scope.everything:
        return qs
    ids = org_selectors.employee_ids_for_scope(scope) or set()
    userids = list(org_selectors.employee_userids(ids).values())
    return qs.filter(employee_userid__in=userids)


def _clicks(scope: DataScope, since: datetime | None) -> QuerySet[Click]:
    qs = Click.objects.filter(link_id__in=_links(scope).values("id"))
    return qs.filter(at__gte=since) if since else qs


def by_material(scope: DataScope, since: datetime | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Per material (by its title when sent): links sent, clicks, clicking customers."""
    links = _links(scope)
    if since:
        links = links.filter(created_at__gte=since)
    rows = {
        r["title"]: {"title": r["title"], "sent": r["n"], "clicks": 0, "customers": 0}
        for r in links.values("title").annotate(n=Count("id"))
    }
    for r in (
        _clicks(scope, since)
        .values("link__title")
        .annotate(n=Count("id"), people=Count("link__external_userid", distinct=True))
    ):
        row = rows.setdefault(r["link__title"], {"title": r["link__title"], "sent": 0, "clicks": 0, "customers": 0})
        row["clicks"], row["customers"] = r["n"], r["people"]
    return sorted(rows.values(), key=lambda r: (-r["clicks"], -r["sent"], r["title"]))[:limit]


def by_employee(scope: DataScope, since: datetime | None = None, limit: int = 100) -> list[dict[str, Any]]:
    links = _links(scope)
    if since:
        links = links.filter(created_at__gte=since)
    rows = {
        r["employee_userid"]: {"userid": r["employee_userid"], "sent": r["n"], "clicks": 0}
        for r in links.values("employee_userid").annotate(n=Count("id"))
    }
    for r in _clicks(scope, since).values("link__employee_userid").annotate(n=Count("id")):
        row = rows.setdefault(
            r["link__employee_userid"], {"userid": r["link__employee_userid"], "sent": 0, "clicks": 0}
        )
        row["clicks"] = r["n"]
    names = org_selectors.names_by_userid(rows)
    for row in rows.values():
        row["name"] = names.get(row["userid"]) or row["userid"]
    return sorted(rows.values(), key=lambda r: (-r["clicks"], -r["sent"], r["name"]))[:limit]


def recent_clickers(scope: DataScope, since: datetime | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Customers who clicked most recently: external_userid, clicks, last click, last title."""
    return list(
        _clicks(scope, since)
        .exclude(link__external_userid="")
        .values("link__external_userid")
        .annotate(n=Count("id"), last=Max("at"))
        .order_by("-last")[:limit]
    )


def clicks_by_employee_between(since: datetime, until: datetime, userids: list[str] | None = None) -> dict[str, int]:
    """Clicks on each member's links in ``[since, until)``."""
    qs = Click.objects.filter(at__gte=since, at__lt=until)
    if userids is not None:
        qs = qs.filter(link__employee_userid__in=userids)
    return dict(qs.values("link__employee_userid").annotate(n=Count("id")).values_list("link__employee_userid", "n"))


def clicks_of_customer(external_userid: str, limit: int = 20) -> list[dict[str, Any]]:
    rows = (
        Click.objects.filter(link__external_userid=external_userid)
        .order_by("-at")
        .values("at", "link__title", "link__target", "link__employee_userid")[:limit]
    )
    return [dict(r) for r in rows]


def clicks_of_customers(
    external_userids: list[str], since: datetime, until: datetime
) -> list[tuple[str, Any, str, int]]:
    """``(external_userid, at, employee_userid, link_id)`` of clicks on links sent to these
    customers in ``[since, until]``."""
    if not external_userids:
        return []
    rows = (
        Click.objects.filter(link__external_userid__in=external_userids, at__gte=since, at__lte=until)
        .values_list("link__external_userid", "at", "link__employee_userid", "link_id")
        .order_by("at")
    )
    return list(rows)
