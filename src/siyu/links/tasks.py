"""The recurring timer that publishes new clicks as profile events (kind ``links.publish``)."""

from __future__ import annotations

from typing import Any

from siyu.core import timers
from siyu.links import services

KIND = "links.publish"


def _step(state: dict[str, Any]) -> dict[str, Any]:
    return {"more": services.publish_clicks()}


# a click shows on the profile (and feeds segments, tasks) within about two seconds
ensure_scheduled = timers.walk(KIND, _step, every_s=2.0, busy_s=0.2, batch=services.PUBLISH_BATCH)
