"""The walk over changed orders (new ones and refunds) that keeps their attribution current: one
recurring timer (``attribution.walk``) carrying its watermark from run to run."""

from __future__ import annotations

import time

from django.db import transaction

from siyu.attribution import services
from siyu.core import timers

KIND = KEY = "attribution.walk"
EVERY_S = 5.0
BUSY_S = 0.2


def ensure_scheduled() -> None:
    if timers.due_at(KEY) is None:
        timers.schedule(KIND, time.time(), {}, key=KEY)


@timers.handler(KIND, quiet=True)
def walk(payload: dict) -> None:
    state = services.step(payload)
    delay = BUSY_S if state.pop("more", 0) >= services.BATCH else EVERY_S
    transaction.on_commit(lambda: timers.schedule(KIND, time.time() + delay, state, key=KEY))
