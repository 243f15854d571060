"""The nightly reconciliation: a full sync every night at 03:00 China time.

A timer (siyu.core.timers) of kind ``customers.nightly_sync`` is due at the next 03:00; when
it fires it enqueues the ``nightly_sync`` task (the timer handler runs inside a transaction, and
a full sync calls WeCom, so the sync itself runs as a background task) and schedules the next
night's timer. Each night's timer has its own key (``nightly-sync:<date>``), so scheduling is
idempotent: ``ensure_scheduled`` runs every time a worker starts and adds nothing when the timer
is already pending.

The run's reconciliation (relations WeCom no longer lists, groups dismissed unheard, tags and
employees gone) is in its ``SyncRun.counts`` and shown on the sync page.
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone
from django_tasks import task

from siyu.core import timers
from siyu.sync.models import SyncRun
from siyu.sync.services import FullSync, SyncBusy, claim

logger = logging.getLogger("siyu.sync")

# the kind keeps the name it had in the customers app: pending timers in existing databases keep it
KIND = "customers.nightly_sync"
CHINA = ZoneInfo("Asia/Shanghai")
RUN_AT = time(3, 0)  # 03:00 China time, when the corp is quiet


def next_run_at(after: datetime | None = None) -> datetime:
    """The first 03:00 China time strictly after ``after`` (now by default)."""
    after = (after or timezone.now()).astimezone(CHINA)
    at = datetime.combine(after.date(), RUN_AT, tzinfo=CHINA)
    if at <= after:
        at = datetime.combine(after.date() + timedelta(days=1), RUN_AT, tzinfo=CHINA)
    return at


def key_for(at: datetime) -> str:
    return f"nightly-sync:{at.astimezone(CHINA).date().isoformat()}"


def schedule_after(after: datetime | None = None):
    """Schedule the nightly timer for the next 03:00 after ``after``; None if already pending."""
    at = next_run_at(after)
    return timers.schedule(KIND, at.timestamp(), {"at": at.timestamp()}, key=key_for(at))


def ensure_scheduled() -> None:
    """Called when a worker starts: make sure the next night's timer exists (idempotent)."""
    if schedule_after() is not None:
        logger.info("nightly sync scheduled for %s", next_run_at().isoformat())


@timers.handler(KIND)
def on_nightly_timer(payload: dict) -> None:
    """Due: enqueue tonight's full sync and schedule tomorrow's timer."""
    nightly_sync.enqueue()
    due = datetime.fromtimestamp(float(payload.get("at") or timezone.now().timestamp()), tz=CHINA)
    schedule_after(max(due, timezone.now()))


@task(queue_name="sync")
def nightly_sync() -> dict:
    """The nightly full sync (resumes an interrupted run rather than starting over); the run is
    marked ``state.trigger = "nightly"`` for the sync page."""
    try:
        run = claim()
    except SyncBusy as e:
        return {"busy": str(e)}
    run.state.setdefault("trigger", "nightly")
    SyncRun.objects.filter(id=run.id).update(state=run.state)
    run = FullSync(run).execute()
    return {"run": run.id, "status": run.status, "counts": run.counts}
