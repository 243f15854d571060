"""Background work of the insights app: the full recompute (django-tasks, run by the worker) and
the timers: the incremental update every ``TICK_S`` seconds and the nightly full run."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone
from django_tasks import task

from siyu.core import timers
from siyu.insights import services
from siyu.insights.models import Run

logger = logging.getLogger("siyu.insights")

TICK_KIND = "insights.tick"
MIRROR_KIND = "insights.mirror"
MIRROR_EVERY_S = 30.0
NIGHTLY_KIND = "insights.nightly"
TICK_S = 2.0
CHINA = ZoneInfo("Asia/Shanghai")
NIGHTLY_AT = dtime(3, 30)  # after the nightly sync (03:00), when the corp is quiet


@task()
def full_recompute_task(run_id: int) -> dict[str, Any]:
    run = services.run_full(run_id)
    return {"run": run_id, "status": run.status if run else "missing"}


def ensure_tick() -> None:
    """The next incremental tick (one pending timer per slot: idempotent)."""
    slot = int(time.time() // TICK_S) + 1
    timers.schedule(TICK_KIND, slot * TICK_S, {}, key=f"{TICK_KIND}:{slot}")


@timers.handler(TICK_KIND)
def on_tick(payload: dict[str, Any]) -> None:
    try:
        services.tick()
    finally:
        transaction.on_commit(ensure_tick)  # once this timer has freed its key


def ensure_mirror(delay: float = MIRROR_EVERY_S) -> None:
    """The next mirror pass (one pending timer per slot)."""
    slot = int((time.time() + delay) // 2.0)
    timers.schedule(MIRROR_KIND, slot * 2.0, {}, key=f"{MIRROR_KIND}:{slot}")


def _mirror_after_commit() -> None:
    busy = False
    try:
        out = services.mirror_pass()
        busy = out is not None and out.persons >= services.MIRROR_BATCH
    except Exception:
        logger.exception("mirror to WeCom tags failed")
    finally:
        ensure_mirror(2.0 if busy else MIRROR_EVERY_S)


@timers.handler(MIRROR_KIND)
def on_mirror(payload: dict[str, Any]) -> None:
    """Re-tag changed persons' customers (WeCom calls: after the timer's transaction commits)."""
    transaction.on_commit(_mirror_after_commit)


def next_nightly(after: datetime | None = None) -> datetime:
    after = (after or timezone.now()).astimezone(CHINA)
    at = datetime.combine(after.date(), NIGHTLY_AT, tzinfo=CHINA)
    if at <= after:
        at += timedelta(days=1)
    return at


def ensure_nightly(after: datetime | None = None) -> None:
    at = next_nightly(after)
    timers.schedule(
        NIGHTLY_KIND, at.timestamp(), {"at": at.timestamp()}, key=f"insights-nightly:{at.date().isoformat()}"
    )


@timers.handler(NIGHTLY_KIND)
def on_nightly(payload: dict[str, Any]) -> None:
    services.start_full_run("nightly")
    due = datetime.fromtimestamp(float(payload.get("at") or timezone.now().timestamp()), tz=CHINA)
    ensure_nightly(max(due, timezone.now()))


def on_worker_start() -> None:
    """Timers scheduled; a first full run when none has ever finished (a new install), and the
    unfinished run of a killed worker queued again."""
    ensure_tick()
    ensure_nightly()
    ensure_mirror()
    stale = timezone.now() - timedelta(seconds=services.RUN_STALE_S)
    for run_id in Run.objects.filter(
        status__in=(Run.Status.QUEUED, Run.Status.RUNNING), updated_at__lt=stale
    ).values_list("id", flat=True):
        Run.objects.filter(id=run_id).update(status=Run.Status.QUEUED, updated_at=timezone.now())
        full_recompute_task.enqueue(run_id)
    if not Run.objects.filter(status=Run.Status.DONE).exists() and services.running_run() is None:
        services.start_full_run("first")
