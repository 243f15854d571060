"""Reads for the console's overview: worker heartbeats."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from siyu.core.models import WorkerHeartbeat

# A worker beats every 5 s (siyu.core.worker.HEARTBEAT_S); three missed beats and more = offline.
ONLINE_WITHIN_S = 20
# Workers gone for longer than this are no longer listed.
FORGET_AFTER = timedelta(days=1)


def worker_heartbeats() -> list[dict[str, Any]]:
    now = timezone.now()
    rows = WorkerHeartbeat.objects.filter(last_seen__gte=now - FORGET_AFTER).order_by("-last_seen")[:20]
    return [
        {
            "worker": w,
            "online": (now - w.last_seen).total_seconds() <= ONLINE_WITHIN_S,
            "age_s": int((now - w.last_seen).total_seconds()),
        }
        for w in rows
    ]


def workers_online() -> int:
    return sum(1 for w in worker_heartbeats() if w["online"])
