"""Reading the full sync's runs and the nightly schedule (the sync page and other apps)."""

from __future__ import annotations

from django_tasks_db.models import DBTaskResult

from siyu.core import timers
from siyu.sync.models import SyncRun
from siyu.sync.nightly import KIND as NIGHTLY_KIND

# the tasks that run a full sync; a stored task keeps its path, so renaming one strands it
SYNC_TASK_PATHS = ("siyu.sync.tasks.full_sync", "siyu.sync.nightly.nightly_sync")


def latest_run() -> SyncRun | None:
    return SyncRun.objects.order_by("-id").first()


def recent_runs(limit: int = 10) -> list[SyncRun]:
    return list(SyncRun.objects.order_by("-id")[:limit])


def queued_syncs() -> int:
    """Full syncs enqueued and not yet started."""
    return DBTaskResult.objects.filter(status="READY", task_path__in=SYNC_TASK_PATHS).count()


def next_nightly_at() -> float | None:
    """Unix time of the next pending nightly sync, None if none is scheduled."""
    return timers.next_due(NIGHTLY_KIND)
