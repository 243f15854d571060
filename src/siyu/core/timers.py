"""Scheduled and delayed work in the ``Timer`` table, run by ``siyu worker``."""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from typing import Any, TypedDict

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from siyu.core import queue
from siyu.core.models import Timer

logger = logging.getLogger("siyu.timers")
Payload = dict[str, Any]
Handler = Callable[[Payload], None]
HANDLERS: dict[str, Handler] = {}
# polling timers (a tick every few seconds that usually finds nothing): their runs are not work
# for the worker's idle detection (``siyu worker --exit-when-idle``)
QUIET: set[str] = set()
MAX_ATTEMPTS = 8
# finished timers are kept a day (to read what ran), then purged by the worker (``purge_done``):
# frequent ticks (the CDP's 2-second link and recompute steps) would otherwise pile up rows
KEEP_DONE_S = 24 * 3600


def _plain_error_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()[:2000]


# How a failed timer's error is stored. The gateway installs its redacting version at start-up
# (``siyu.wecom``'s ``ready``: stored errors never carry a WeCom token); the kernel does not import it.
error_text: Callable[[BaseException], str] = _plain_error_text


def describe_errors_with(fn: Callable[[BaseException], str]) -> None:
    global error_text
    error_text = fn


def handler(kind: str, *, quiet: bool = False) -> Callable[[Handler], Handler]:
    """Register ``fn(payload)`` for timers of ``kind``; it runs inside the finishing transaction.
    ``quiet``: a polling tick, not counted as work by ``run_due``."""

    def wrap(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        if quiet:
            QUIET.add(kind)
        return fn

    return wrap


def walk(
    kind: str, step: Callable[[Payload], Payload], *, every_s: float, busy_s: float, batch: int
) -> Callable[[], None]:
    """Register a recurring walk: one pending timer (key ``kind``) whose payload carries the walk's
    state from run to run. ``step(state)`` does one batch and returns the next state with ``more``:
    how many items it took (the next run comes after ``busy_s`` when that reached ``batch``, else
    after ``every_s``). Returns the ``ensure_scheduled`` to call when a worker starts."""

    def run(payload: Payload) -> None:
        state = dict(step(payload))
        delay = busy_s if state.pop("more", 0) >= batch else every_s
        transaction.on_commit(lambda: schedule(kind, time.time() + delay, state, key=kind))

    handler(kind, quiet=True)(run)

    def ensure_scheduled() -> None:
        if due_at(kind) is None:
            schedule(kind, time.time(), {}, key=kind)

    return ensure_scheduled


def schedule(kind: str, at: float, payload: Payload | None = None, key: str | None = None) -> Timer | None:
    """Schedule ``kind`` at unix time ``at``; with ``key``, at most one pending timer per key."""
    try:
        with transaction.atomic():
            return Timer.objects.create(kind=kind, key=key, payload=payload or {}, run_after=at)
    except IntegrityError:
        return None


def cancel(key: str) -> bool:
    """Cancel the pending timer of ``key`` (marked done, its key freed); False if none was."""
    n = Timer.objects.filter(key=key, status=Timer.Status.PENDING).update(
        status=Timer.Status.DONE, key=None, finished_at=timezone.now()
    )
    return n > 0


def reschedule(key: str, at: float) -> bool:
    """Move the pending timer of ``key`` to unix time ``at``; False if none is pending."""
    return Timer.objects.filter(key=key, status=Timer.Status.PENDING).update(run_after=at) > 0


def due_at(key: str) -> float | None:
    """Unix time the pending timer of ``key`` is due (or leased until), None if none is pending."""
    return Timer.objects.filter(key=key, status=Timer.Status.PENDING).values_list("run_after", flat=True).first()


def next_due(kind: str) -> float | None:
    """Unix time the next pending timer of ``kind`` is due (or leased until), None if none is."""
    return (
        Timer.objects.filter(kind=kind, status=Timer.Status.PENDING)
        .order_by("run_after")
        .values_list("run_after", flat=True)
        .first()
    )


class PendingTimer(TypedDict):
    key: str | None
    run_after: float
    payload: Payload


def pending(kind: str) -> list[PendingTimer]:
    """The pending timers of ``kind``, soonest first: ``{"key", "run_after", "payload"}`` each."""
    return list(
        Timer.objects.filter(kind=kind, status=Timer.Status.PENDING)
        .order_by("run_after", "id")
        .values("key", "run_after", "payload")
    )


def run_due(worker_id: str, limit: int = 100) -> int:
    """Run the due timers; answers how many ran, not counting the quiet (polling) ones."""
    rows = queue.claim(Timer, worker_id, limit, settings.SIYU_WORKER_LEASE_S)
    done = 0
    for row in rows:
        fn = HANDLERS.get(row.kind)
        try:
            with transaction.atomic():
                if not queue.still_ours(Timer, row, worker_id):
                    continue
                if fn is None:
                    raise LookupError(f"no timer handler for {row.kind!r}")
                fn(row.payload)
                # a finished timer frees its key so the same key can be scheduled again
                Timer.objects.filter(id=row.id).update(
                    status=Timer.Status.DONE, key=None, finished_at=timezone.now(), error=""
                )
            done += row.kind not in QUIET
        except Exception as exc:  # noqa: BLE001 - any handler failure is recorded on the timer and retried
            detail = error_text(exc)
            if row.attempts >= MAX_ATTEMPTS:
                Timer.objects.filter(id=row.id).update(
                    status=Timer.Status.FAILED, error=detail, finished_at=timezone.now()
                )
            else:
                Timer.objects.filter(id=row.id).update(
                    run_after=time.time() + queue.backoff_s(row.attempts), error=detail
                )
            logger.warning("timer %s (%s) failed: %s", row.id, row.kind, detail)
    return done


def purge_done(keep_s: float = KEEP_DONE_S, limit: int = 10_000) -> int:
    """Delete at most ``limit`` done timers due more than ``keep_s`` ago (one range of the due
    index); failed ones stay for an operator to read."""
    ids = list(
        Timer.objects.filter(status=Timer.Status.DONE, run_after__lt=time.time() - keep_s)
        .order_by("status", "run_after", "id")
        .values_list("id", flat=True)[:limit]
    )
    return Timer.objects.filter(id__in=ids).delete()[0] if ids else 0
