"""Reading broadcasts: the scoped list, detail tables and export rows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Count, Q, QuerySet
from django.http import Http404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from siyu.accounts.selectors import DataScope
from siyu.broadcasts.models import Batch, Broadcast, Media, Recipient
from siyu.customers import selectors as customer_selectors
from siyu.groups import selectors as group_selectors
from siyu.org import selectors as org_selectors


def broadcasts_for(user: User, scope: DataScope) -> QuerySet[Broadcast]:
    """Admins and operators see every broadcast; others the ones they created."""
    if scope.nothing:
        return Broadcast.objects.none()
    qs = Broadcast.objects.select_related("created_by")
    return qs if scope.everything else qs.filter(created_by=user)


def broadcast_for(user: User, scope: DataScope, pk: int) -> Broadcast:
    b = broadcasts_for(user, scope).filter(id=pk).first()
    if b is None:
        raise Http404("no such broadcast")
    return b


def _employee_ids(scope: DataScope) -> set[int] | None:
    return org_selectors.employee_ids_for_scope(scope)


def recipients(b: Broadcast, scope: DataScope, state: str = "", limit: int | None = 200) -> list[dict[str, Any]]:
    """Per-recipient rows (name escaped by the template), only senders in the viewer's scope."""
    qs = Recipient.objects.filter(broadcast=b).order_by("id")
    allowed = _employee_ids(scope)
    if allowed is not None:
        qs = qs.filter(employee_id__in=sorted(allowed))
    if state:
        qs = qs.filter(state=state)
    rows = list(qs[:limit] if limit else qs)
    names: dict[int, str] = {}
    if b.kind == Broadcast.GROUP:
        names = group_selectors.group_names(r.group_id for r in rows)
    else:
        names = customer_selectors.customer_names(r.customer_id for r in rows)
    emps = org_selectors.employee_names(r.employee_id for r in rows if r.employee_id is not None)
    return [
        {
            "r": r,
            "name": names.get((r.group_id if b.kind == Broadcast.GROUP else r.customer_id) or 0, ""),
            "employee": emps.get(r.employee_id or 0, ""),
            "state_label": r.get_state_display(),
            "reason_label": reason_label(r.reason),
        }
        for r in rows
    ]


def employee_table(b: Broadcast, scope: DataScope) -> list[dict[str, Any]]:
    """Per employee: recipients, confirmed (sent by the employee) or not, received, failed."""
    allowed = _employee_ids(scope)
    qs = Recipient.objects.filter(broadcast=b)
    if allowed is not None:
        qs = qs.filter(employee_id__in=sorted(allowed))
    rows = (
        qs.values("employee_id")
        .annotate(
            total=Count("id"),
            skipped=Count("id", filter=Q(state=Recipient.SKIPPED)),
            received=Count("id", filter=Q(state=Recipient.RECEIVED)),
            failed=Count("id", filter=Q(state=Recipient.FAILED)),
        )
        .order_by("-total")
    )
    batches: dict[int | None, list[Batch]] = {}
    for bt in Batch.objects.filter(broadcast=b):
        batches.setdefault(bt.employee_id, []).append(bt)
    emps = {e.id: e for e in org_selectors.employees_by_ids([r["employee_id"] for r in rows])}
    out = []
    for r in rows:
        bts = batches.get(r["employee_id"], [])
        e = emps.get(r["employee_id"])
        confirmed = bool(bts) and all(x.task_status == 2 for x in bts)
        out.append(
            {
                **r,
                "name": e.name if e else "",
                "userid": e.userid if e else "",
                "tasks": len(bts),
                "confirmed": confirmed,
                "pending": bool(bts) and not confirmed,
                "send_time": max((x.task_send_time or 0 for x in bts), default=0) or None,
            }
        )
    return out


REASONS = {
    "lost": gettext_noop("客户已流失（跟进关系已断开）"),
    "employee_inactive": gettext_noop("员工已离职或停用"),
    "cap:days_in_month": gettext_noop("已达本月接收上限（每月天数条）"),
    "cap:weekly_7": gettext_noop("已达本周接收上限（每周 7 条）"),
    "cap:daily_1": gettext_noop("已达今日接收上限（每天 1 条）"),
    "cap:monthly_4": gettext_noop("已达本月接收上限（每月 4 条）"),
    "cap:moment_daily": gettext_noop("已达朋友圈每日可见上限"),
    "cap:moment_monthly": gettext_noop("已达朋友圈每月可见上限"),
    "not_friend": gettext_noop("已不是好友"),
    "over_quota": gettext_noop("已达接收上限（企业微信拒绝）"),
    "not_visible": gettext_noop("发表后不可见（上限或已非好友）"),
    "dismissed": gettext_noop("群已解散"),
    "no_owner": gettext_noop("群主未知"),
}


def reason_label(code: str) -> str:
    if not code:
        return ""
    label = REASONS.get(code)
    return _(label) if label else code


def funnel(b: Broadcast) -> dict[str, Any]:
    """An ECharts option (data only) for planned → delivered to employees → confirmed → received."""
    t = b.totals or {}
    steps = [
        (_("计划"), t.get("planned", 0)),
        (_("已下发给员工"), t.get("delivered", 0)),
        (_("员工已确认"), t.get("confirmed", 0)),
        (_("客户已收到") if b.kind != Broadcast.GROUP else _("群已收到"), t.get("received", 0)),
    ]
    return {
        "tooltip": {"trigger": "item", "formatter": "{b}: {c}"},
        "series": [
            {
                "type": "funnel",
                "sort": "none",
                "left": "10%",
                "width": "80%",
                "minSize": "8%",
                "gap": 2,
                "label": {"show": True, "position": "inside", "formatter": "{b}: {c}"},
                "data": [{"name": str(n), "value": v} for n, v in steps],
            }
        ],
    }


def attachment_labels(attachments: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [
        {"type": a.get("type", ""), "label": a.get("name") or a.get("title") or a.get("url") or ""}
        for a in attachments or []
    ]


def composer_choices(scope: DataScope) -> dict[str, Any]:
    """What the composer offers: the customer filter's choices plus the group tags."""
    return {**customer_selectors.filter_choices(scope), "group_tags": group_selectors.group_tags()}


def existing_media_ids(ids: Iterable[int]) -> set[int]:
    """Those of ``ids`` that are uploaded media rows."""
    return set(Media.objects.filter(id__in=list(ids)).values_list("id", flat=True))


def running_count(scope: DataScope) -> int | None:
    """The overview's pending work: mass messages scheduled or being sent (admins and operators,
    who see every broadcast; None for the other roles, who see only their own)."""
    if not scope.everything:
        return None
    return Broadcast.objects.filter(status__in=Broadcast.RUNNING).count()
