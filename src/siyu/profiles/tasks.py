"""The incremental link of WeCom customers to profiles: one recurring timer (kind
``profiles.link``, one pending at a time under its key) walks the customers' id and updated_at
watermarks, carried in its payload from one run to the next. A worker that starts with no such
timer pending schedules one without a payload: its first run is the set-based backfill, which
catches up whatever was missed."""

from __future__ import annotations

import time

from django.db import transaction

from siyu.core import timers
from siyu.profiles import services

KIND = "profiles.link"
KEY = "profiles.link"
EVERY_S = 2.0  # new and changed customers are linked within about this long
BUSY_S = 0.2  # the next run when this one hit its batch size


def ensure_scheduled() -> None:
    if timers.due_at(KEY) is None:
        timers.schedule(KIND, time.time(), {}, key=KEY)


@timers.handler(KIND)
def link(payload: dict) -> None:
    state = services.link_step(payload)
    delay = BUSY_S if state.get("more", 0) >= services.LINK_BATCH else EVERY_S
    state.pop("more", None)
    transaction.on_commit(lambda: timers.schedule(KIND, time.time() + delay, state, key=KEY))
