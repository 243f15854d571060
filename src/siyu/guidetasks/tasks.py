"""Timers of guide tasks: the morning's generation (06:00), the guides' summary (08:30) and the
escalation of overdue tasks (hourly). A timer enqueues the work as a background task (it makes
WeCom calls and long writes: never inside the timer's transaction) and schedules its next run;
a worker that starts with none pending schedules them."""

from __future__ import annotations

import datetime as dt
import time

from django.db import transaction
from django.utils import timezone
from django_tasks import task

from siyu.core import timers
from siyu.guidetasks import services

GENERATE, SUMMARY, ESCALATE = "guidetasks.generate", "guidetasks.summary", "guidetasks.escalate"
ESCALATE_EVERY_S = 3600


def _next_at(at: dt.time) -> float:
    local = timezone.localtime()
    day = local.date() if local.time() < at else local.date() + dt.timedelta(days=1)
    return timezone.make_aware(dt.datetime.combine(day, at)).timestamp()


def ensure_scheduled() -> None:
    if timers.due_at(GENERATE) is None:
        timers.schedule(GENERATE, _next_at(services.MORNING), {}, key=GENERATE)
    if timers.due_at(SUMMARY) is None:
        timers.schedule(SUMMARY, _next_at(services.SUMMARY_AT), {}, key=SUMMARY)
    if timers.due_at(ESCALATE) is None:
        timers.schedule(ESCALATE, time.time() + ESCALATE_EVERY_S, {}, key=ESCALATE)


@task()
def generate_now() -> dict:
    return {str(k): v for k, v in services.generate().items()}


@task()
def generate_rule(rule_id: int) -> dict:
    return {str(k): v for k, v in services.generate(rule_ids=[rule_id]).items()}


@task()
def summaries_now() -> int:
    return services.send_summaries()


@task()
def escalate_now() -> int:
    return services.escalate_overdue()


def _then(kind: str, at: float) -> None:
    transaction.on_commit(lambda: timers.schedule(kind, at, {}, key=kind))


@timers.handler(GENERATE)
def on_generate(payload: dict) -> None:
    generate_now.enqueue()
    _then(GENERATE, _next_at(services.MORNING))


@timers.handler(SUMMARY)
def on_summary(payload: dict) -> None:
    summaries_now.enqueue()
    _then(SUMMARY, _next_at(services.SUMMARY_AT))


@timers.handler(ESCALATE)
def on_escalate(payload: dict) -> None:
    escalate_now.enqueue()
    _then(ESCALATE, time.time() + ESCALATE_EVERY_S)
