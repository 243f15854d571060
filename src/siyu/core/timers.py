"""Scheduled and delayed work in the ``Timer`` table, run by ``siyu worker``."""

from __future__ import annotations

import logging
import time
from typing import Callable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from siyu.core import queue
from siyu.core.models import Timer
from siyu.wecom.redaction import error_text  # stored errors never carry a WeCom token

logger = logging.getLogger("siyu.timers")
HANDLERS: dict[str, Callable[[dict], None]] = {}
MAX_ATTEMPTS = 8


def handler(kind: str):
    """Register ``fn(payload)`` for timers of ``kind``; it runs inside the finishing transaction."""

    def wrap(fn: Callable[[dict], None]) -> Callable[[dict], None]:
        HANDLERS[kind] = fn
        return fn

    return wrap


def schedule(kind: str, at: float, payload: dict | None = None, key: str | None = None) -> Timer | None:
    """Schedule ``kind`` at unix time ``at``; with ``key``, at most one pending timer per key."""
    try:
        with transaction.atomic():
            return Timer.objects.create(kind=kind, key=key, payload=payload or {}, run_after=at)
    except IntegrityError:
        return None


def run_due(worker_id: str, limit: int = 100) -> int:
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
                Timer.objects.filter(id=row.id).update(status="done", key=None, finished_at=timezone.now(), error="")
            done += 1
        except Exception as exc:
            detail = error_text(exc)
            if row.attempts >= MAX_ATTEMPTS:
                Timer.objects.filter(id=row.id).update(status="failed", error=detail, finished_at=timezone.now())
            else:
                Timer.objects.filter(id=row.id).update(run_after=time.time() + queue.backoff_s(row.attempts), error=detail)
            logger.warning("timer %s (%s) failed: %s", row.id, row.kind, detail)
    return done
