"""Timers and background tasks of continuity (run by ``siyu worker``).

Timer handlers run inside a transaction, and WeCom is never called inside one, so each timer only
enqueues a task that does the calls:

- ``transfers.poll``: while customers are waiting, read the transfer results every 15 minutes
  (one pending timer, keyed); the poll task schedules the next one while anything still waits.
- ``transfers.churn_digest``: every day at the rule's hour (China time), the digest task.
- immediate churn alerts: the callback handler enqueues ``notify_churn`` with its event.
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone
from django_tasks import task

from siyu.core import timers
from siyu.transfers import services

logger = logging.getLogger("siyu.transfers")
CHINA = ZoneInfo("Asia/Shanghai")
DIGEST_KIND = "transfers.churn_digest"


@task()
def poll_transfers() -> dict:
    stats = services.poll()
    services.ensure_poll_scheduled()
    return stats


@task()
def notify_churn(ids: list[int]) -> int:
    return services.notify(ids)


@task()
def churn_digest() -> int:
    return services.send_digest()


@timers.handler(services.POLL_KIND)
def on_poll_timer(payload: dict) -> None:
    poll_transfers.enqueue()


def next_digest_at(after: datetime | None = None) -> datetime:
    hour = services.churn_rule().digest_hour % 24
    after = (after or timezone.now()).astimezone(CHINA)
    at = datetime.combine(after.date(), time(hour, 0), tzinfo=CHINA)
    if at <= after:
        at += timedelta(days=1)
    return at


def ensure_digest_scheduled(after: datetime | None = None) -> None:
    at = next_digest_at(after)
    timers.schedule(DIGEST_KIND, at.timestamp(), {"at": at.timestamp()}, key=f"churn-digest:{at.date().isoformat()}")


@timers.handler(DIGEST_KIND)
def on_digest_timer(payload: dict) -> None:
    churn_digest.enqueue()
    due = datetime.fromtimestamp(float(payload.get("at") or timezone.now().timestamp()), tz=CHINA)
    ensure_digest_scheduled(max(due, timezone.now()))


def on_worker_start() -> None:
    """Idempotent: the digest timer exists, and a poll is pending while anything waits."""
    ensure_digest_scheduled()
    services.ensure_poll_scheduled(delay_s=0)
