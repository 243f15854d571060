"""设置 › 数据同步: the latest full sync runs with their progress and what the reconciliation
corrected, a "sync now" button (enqueues the ``full_sync`` task the worker runs) and the next
nightly run. Admin only. The status panel refreshes itself with htmx while a run is under way."""

from __future__ import annotations

from datetime import UTC, datetime

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from siyu.accounts.permissions import ADMIN_ONLY, role_required
from siyu.sync import selectors
from siyu.sync.models import SyncRun
from siyu.sync.tasks import full_sync

PHASE_LABELS = {
    "org": gettext_lazy("组织架构"),
    "tags": gettext_lazy("客户标签"),
    "customers": gettext_lazy("客户"),
    "groups": gettext_lazy("客户群"),
    "reconcile": gettext_lazy("对账"),
    "done": gettext_lazy("完成"),
}
# share of the whole run each phase stands for, for the overall progress bar
PHASE_WEIGHT = {"org": 5, "tags": 5, "customers": 60, "groups": 25, "reconcile": 5}
COUNT_LABELS = [
    ("departments", gettext_lazy("部门")),
    ("employees", gettext_lazy("员工")),
    ("tag_groups", gettext_lazy("标签组")),
    ("tags", gettext_lazy("标签")),
    ("customers", gettext_lazy("客户")),
    ("relations", gettext_lazy("跟进关系")),
    ("groups", gettext_lazy("客户群")),
    ("group_members", gettext_lazy("群成员")),
]
CORRECTION_LABELS = [
    ("reconciled_relations", gettext_lazy("企业微信已不存在的跟进关系，标记为流失")),
    ("reconciled_groups", gettext_lazy("未收到解散通知的客户群，标记为已解散")),
    ("tags_deleted", gettext_lazy("企业微信已删除的标签")),
    ("employees_left", gettext_lazy("已离职或不可见的员工")),
    ("new_relations", gettext_lazy("本地缺少、已补齐的跟进关系")),
    ("group_joins", gettext_lazy("补记的入群记录")),
    ("group_leaves", gettext_lazy("补记的退群记录")),
]


def _ratio(done, total) -> int | None:
    try:
        return max(0, min(100, int(100 * int(done) / int(total)))) if total else None
    except (TypeError, ValueError):
        return None


def describe(run: SyncRun) -> dict:
    """A run as the page shows it: phase, per-phase progress, counts and corrections."""
    counts, totals, state = run.counts or {}, run.totals or {}, run.state or {}
    phases = list(PHASE_WEIGHT)
    current = run.phase if run.phase in phases else "done"
    idx = phases.index(current) if current in phases else len(phases)
    steps = []
    overall = 0.0
    for i, p in enumerate(phases):
        if run.status == SyncRun.DONE or i < idx:
            pct = 100
        elif i == idx:
            if p == "customers":
                pct = _ratio(counts.get("relations", 0), totals.get("relations")) or 0
            elif p == "groups":
                pct = _ratio((state.get("groups") or {}).get("done", 0), totals.get("groups")) or 0
            else:
                pct = 0
        else:
            pct = 0
        overall += PHASE_WEIGHT[p] * pct / 100
        steps.append(
            {
                "key": p,
                "label": PHASE_LABELS[p],
                "pct": pct,
                "current": i == idx and run.status != SyncRun.DONE,
            }
        )
    return {
        "run": run,
        "trigger": state.get("trigger", ""),
        "phase_label": PHASE_LABELS.get(run.phase, run.phase),
        "steps": steps,
        "overall": 100 if run.status == SyncRun.DONE else int(overall),
        "counts": [(label, counts[k]) for k, label in COUNT_LABELS if k in counts],
        "corrections": [(label, counts.get(k, 0)) for k, label in CORRECTION_LABELS if k in counts],
        "relations_total": totals.get("relations"),
        "groups_total": totals.get("groups"),
        "groups_done": (state.get("groups") or {}).get("done"),
    }


def _context() -> dict:
    runs = selectors.recent_runs(10)
    latest = describe(runs[0]) if runs else None
    next_at = selectors.next_nightly_at()
    queued = selectors.queued_syncs()
    return {
        "latest": latest,
        "runs": [describe(r) for r in runs],
        "queued": queued,
        "busy": bool(queued) or (latest is not None and latest["run"].status == SyncRun.RUNNING),
        "next_nightly": datetime.fromtimestamp(next_at, tz=UTC) if next_at is not None else None,
    }


@role_required(*ADMIN_ONLY)
def sync_page(request):
    return render(request, "sync/sync.html", _context())


@role_required(*ADMIN_ONLY)
def sync_status(request):
    """The status panel alone (htmx polls it while a run is queued or running)."""
    return render(request, "sync/_sync_status.html", _context())


@role_required(*ADMIN_ONLY)
@require_POST
def sync_now(request):
    if selectors.queued_syncs():
        messages.info(request, _("已有一次全量同步在排队，请等待它开始。"))
    else:
        full_sync.enqueue()
        messages.success(request, _("全量同步已加入队列，后台 worker 会立即开始执行。"))
    return redirect("sync:page")
