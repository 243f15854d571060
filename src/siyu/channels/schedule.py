"""Recomputing every code's staff when time changes it: at each slot edge, skip-verify window
edge and at midnight (daily caps reset). One ``Timer`` (kind ``channels.recompute``) is due at
the next such instant; when it fires, the recompute (which calls WeCom) runs after the timer's
transaction commits, then the next timer is scheduled. ``ensure_scheduled`` runs when a worker
starts and whenever a code's schedule changes (idempotent: one pending timer per key)."""

from __future__ import annotations

import logging
import time

from django.db import transaction

from siyu.channels import services
from siyu.core import timers

logger = logging.getLogger("siyu.channels")

KIND = "channels.recompute"


def ensure_scheduled() -> None:
    at = services.next_boundary()
    timers.schedule(KIND, at.timestamp(), {"at": at.timestamp()}, key=f"{KIND}:{int(at.timestamp())}")


def ensure_reconcile_scheduled() -> None:
    """The recurring reconciliation of welcome rows left pending by a crash, due at the next
    minute boundary: every worker start and the timer's own rescheduling name the same slot, so
    there is never more than one pending."""
    every = services.WELCOME_RECONCILE_EVERY_S
    slot = int(time.time() // every) + 1
    timers.schedule(services.WELCOME_RECONCILE_KIND, slot * every, {}, key=f"{services.WELCOME_RECONCILE_KIND}:{slot}")


@timers.handler(services.WELCOME_RECONCILE_KIND)
def reconcile_welcomes(payload: dict) -> None:
    services.reconcile_welcomes()
    transaction.on_commit(ensure_reconcile_scheduled)  # once this timer has freed its key


def _after_commit(at: float | None) -> None:
    try:
        services.recompute_all(at)
    finally:
        ensure_scheduled()


@timers.handler(KIND)
def run(payload: dict) -> None:
    at = float(payload.get("at") or 0) or None
    transaction.on_commit(lambda: _after_commit(at))


@timers.handler(services.DECORATE_KIND)
def decorate_fallback(payload: dict) -> None:
    """The durable fallback of an add's decoration (the process that took it died)."""
    add_id = int(payload.get("add") or 0)

    def run_it():
        try:
            services.decorate_add(add_id)
        except Exception:
            logger.exception("decorating channel add %s failed", add_id)
            timers.schedule(services.DECORATE_KIND, time.time() + 300, {"add": add_id}, key=f"chdec:{add_id}")

    transaction.on_commit(run_it)
