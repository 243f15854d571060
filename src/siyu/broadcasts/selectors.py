"""Reading broadcasts: the scoped list, detail tables and export rows."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Count, Q, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from siyu.accounts.selectors import DataScope
from siyu.broadcasts.models import Batch, Broadcast, Media, Recipient
from siyu.broadcasts.services import sync_timer_key
from siyu.core import timers
from siyu.customers import selectors as customer_selectors
from siyu.groups import selectors as group_selectors
from siyu.org import selectors as org_selectors
from siyu.segments import selectors as segment_selectors
from siyu.wecom import errcodes


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
            pending=Count("id", filter=Q(state__in=(Recipient.PLANNED, Recipient.DELIVERED))),
            declined=Count("id", filter=Q(state=Recipient.DECLINED)),
        )
        .order_by("-total")
    )
    final = bool((b.totals or {}).get("final"))
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
                "waiting": bool(bts) and not confirmed,
                "ended": final and bool(bts) and not confirmed,
                "call_failed": bool(bts) and all(x.status == Batch.FAILED for x in bts),
                "error": next((error_text(x.error) for x in bts if x.status == Batch.FAILED and x.error), None),
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
    "not_friend": gettext_noop("已不是好友（企业微信未发出）"),
    "over_quota": gettext_noop("客户已达群发接收上限（企业微信未发出）"),
    "employee_unselected": gettext_noop("员工发送时未选择该客户"),
    "task_ended": gettext_noop("员工在任务结束前未发送"),
    "not_visible": gettext_noop("发表后不可见（上限或已非好友）"),
    "tag_failed": gettext_noop("未能为其打上本次朋友圈的分群标签（企业微信拒绝）"),
    "dismissed": gettext_noop("群已解散"),
    "no_owner": gettext_noop("群主未知"),
}


def reason_label(code: str) -> str:
    """A skip/failure reason in words; a WeCom refusal (``errcode:N``) through the errcode table."""
    if not code:
        return ""
    label = REASONS.get(code)
    if label:
        return _(label)
    if code.startswith("errcode:"):
        try:
            return errcodes.sentence(int(code.split(":", 1)[1]))
        except ValueError:
            pass
    return _("其他原因")


def failed_reasons(b: Broadcast) -> list[dict[str, Any]]:
    """The targets WeCom did not deliver, by reason in words (largest first)."""
    by = (b.totals or {}).get("failed_by_reason") or {}
    return [{"reason": k, "label": reason_label(k), "n": n} for k, n in sorted(by.items(), key=lambda kv: -kv[1])]


def error_text(stored: str) -> dict[str, Any] | None:
    """A stored error of a broadcast or batch, for the page: the errcode's meaning and what to
    do (the raw code as secondary text); None when there is no error."""
    if not stored:
        return None
    code = errcodes.code_in(stored)
    if code is None and "WeCom" not in stored:
        return {"code": None, "meaning": _("发送过程中出现内部错误"), "action": _("请查看系统日志，必要时联系管理员。")}
    return errcodes.explain(code)


def is_final(b: Broadcast, now: float | None = None) -> bool:
    """Whether ``b``'s page can stop refreshing: nothing about it changes any more."""
    if b.status in (Broadcast.DRAFT, Broadcast.CANCELLED, Broadcast.FAILED):
        return True
    if b.status != Broadcast.SENT:
        return False
    if (b.totals or {}).get("final"):
        return True
    # sent before results were followed live (no final mark): final once the follow-up window ended
    now = time.time() if now is None else now
    return b.sent_at is not None and b.sent_at.timestamp() + settings.SIYU_BROADCAST_SYNC_FOR_S <= now


def progress(b: Broadcast, now: float | None = None) -> dict[str, Any]:
    """What the task pages say about ``b``: a status that means what it says (``code``, ``label``,
    ``tone`` for the pill), a one-line explanation, and whether the page keeps refreshing."""
    now = time.time() if now is None else now
    t = b.totals or {}
    moment = b.kind == Broadcast.MOMENT
    final = is_final(b, now)
    code, tone = b.status, ""
    if b.status == Broadcast.DRAFT:
        label, note = _("草稿"), _("尚未发送")
    elif b.status == Broadcast.SCHEDULED and b.send_at is not None and b.send_at.timestamp() > now:
        label = _("定时")
        note = _("将于 %(at)s 发送") % {"at": timezone.localtime(b.send_at).strftime("%Y-%m-%d %H:%M")}
    elif b.status in Broadcast.RUNNING:
        code, label, tone = "creating", _("创建中"), "pill-pending"
        note = _("正在向企业微信创建各员工的发送任务")
    elif b.status == Broadcast.SENT and not final:
        code, tone = "waiting", "pill-pending"
        label = _("等待员工发表") if moment else _("等待员工发送")
        note = _("%(done)s/%(all)s 位员工已发送，结果自动更新") % {
            "done": t.get("employees_confirmed", 0),
            "all": t.get("employees", 0),
        }
    elif b.status == Broadcast.SENT and t and not t.get("planned"):
        code, label, note = "empty", _("无可发送对象"), _("所有对象都被跳过（原因见下方）")
    elif b.status == Broadcast.SENT and t.get("planned") and not t.get("delivered") and final:
        code, label, tone = "refused", _("未能创建任务"), "pill-danger"
        note = _("企业微信没有接受任何员工的发送任务，原因见员工执行情况")
    elif b.status == Broadcast.SENT:
        everyone = t.get("employees", 0) and t.get("employees_confirmed", 0) >= t.get("employees", 0)
        code, tone = ("done", "pill-success") if everyone else ("ended", "")
        label = _("已完成") if everyone else _("已结束")
        note = _("%(done)s/%(all)s 位员工已发送，结果已是最终结果") % {
            "done": t.get("employees_confirmed", 0),
            "all": t.get("employees", 0),
        }
    elif b.status == Broadcast.CANCELLED:
        label, note = _("已取消"), _("未发送的员工不会再发送")
    else:
        code, label, tone, note = "failed", _("失败"), "pill-danger", _("创建任务失败，见下方错误说明")
    return {"code": code, "label": label, "tone": tone, "note": note, "live": not final}


def next_sync(b: Broadcast) -> datetime | None:
    """When the background sync reads ``b``'s results next (its pending timer), None when none is
    pending (final, not sent yet, or a worker has yet to schedule it)."""
    if b.status != Broadcast.SENT or is_final(b):
        return None
    due = timers.due_at(sync_timer_key(b.id))
    return datetime.fromtimestamp(due, tz=UTC) if due is not None else None


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


def segment_audience(b: Broadcast, scope: DataScope) -> dict[str, Any] | None:
    """A segment broadcast's audience for the estimate and the detail page: the segment's name and
    its counts — the snapshot's once planned (persons, WeCom customers, persons without WeCom),
    the live definition's before."""
    a = b.audience or {}
    if a.get("type") != "segment" or not a.get("segment_id"):
        return None
    seg_id = int(a["segment_id"])
    out: dict[str, Any] = {"id": seg_id, "name": segment_selectors.segment_name(seg_id), "frozen": False}
    snap = segment_selectors.snapshot_info(a.get("snapshot_id"))
    if snap is not None:
        out.update(frozen=True, persons=snap["persons"], customers=snap["customers"])
        out["without_wecom"] = snap["without_wecom"]
        out["at"] = snap["created_at"]
    else:
        out.update(segment_selectors.live_counts(seg_id, scope))
    if b.kind == Broadcast.MOMENT:
        # the corp tag made for this Moment and how many relations carry it (moment_tags)
        m = a.get("mirror") or {}
        ids = org_selectors.employee_ids({f.get("userid") or "" for f in m.get("failures") or []})
        names = org_selectors.employee_names(ids.values())
        out["moment"] = {
            "tag_name": m.get("tag_name") or "",
            "relations": int(m.get("relations") or 0),
            "tagged": int(m.get("tagged") or 0),
            "failed": int(m.get("failed") or 0),
            "failures": [
                {
                    **f,
                    "employee": names.get(ids.get(f.get("userid") or "", 0), ""),
                    "meaning": errcodes.meaning(f.get("errcode")),
                }
                for f in m.get("failures") or []
            ],
            "senders": len(m.get("senders") or []),
            "done": bool(m.get("done")),
            "tag_deleted": bool(m.get("tag_deleted")),
        }
    return out


def tagging_progress(b: Broadcast) -> dict[str, int] | None:
    """A Moment to a segment while its members' relations are being tagged (the worker's
    progress, refreshed by the page's live part); None otherwise."""
    a = b.audience or {}
    m = a.get("mirror") or {}
    if b.kind != Broadcast.MOMENT or a.get("type") != "segment" or b.status != Broadcast.PLANNING or m.get("done"):
        return None
    return {"tagged": int(m.get("tagged") or 0), "failed": int(m.get("failed") or 0)}
