"""The recurring timer that publishes new clicks as profile events (kind ``links.publish``)."""

from __future__ import annotations

import time

from django.db import transaction

from siyu.core import timers
from siyu.links import services

KIND = "links.publish"
KEY = "links.publish"
EVERY_S = 2.0  # a click shows on the profile (and feeds segments, tasks) within about this long
BUSY_S = 0.2


def ensure_scheduled() -> None:
    if timers.due_at(KEY) is None:
        timers.schedule(KIND, time.time(), {}, key=KEY)


@timers.handler(KIND, quiet=True)
def publish(payload: dict) -> None:
    n = services.publish_clicks()
    delay = BUSY_S if n >= services.PUBLISH_BATCH else EVERY_S
    transaction.on_commit(lambda: timers.schedule(KIND, time.time() + delay, {}, key=KEY))
