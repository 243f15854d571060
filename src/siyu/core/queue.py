"""Leased work queues in our own tables (callback inbox, timers).

A worker claims ready rows by pushing ``run_after`` past a lease and stamping ``locked_by``; the
rows stay ``pending``. The work and the ``done`` mark are committed in one transaction that
first re-checks the lease is still ours, so each row's effects happen exactly once. A worker
that dies leaves its rows pending; they become ready again when the lease runs out.
On PostgreSQL claims use ``SELECT ... FOR UPDATE SKIP LOCKED`` so any number of workers share
the queue; on SQLite the IMMEDIATE transaction serialises claims.
"""

from __future__ import annotations

import time

from django.db import connection, models, transaction
from django.db.models import F


def claim(model: type[models.Model], worker_id: str, limit: int, lease_s: float, **filters) -> list:
    now = time.time()
    with transaction.atomic():
        qs = model.objects.filter(status="pending", run_after__lte=now, **filters).order_by("id")
        if connection.features.has_select_for_update_skip_locked:
            qs = qs.select_for_update(skip_locked=True)
        ids = list(qs.values_list("id", flat=True)[:limit])
        if not ids:
            return []
        model.objects.filter(id__in=ids).update(run_after=now + lease_s, locked_by=worker_id, attempts=F("attempts") + 1)
    return list(model.objects.filter(id__in=ids).order_by("id"))


def still_ours(model: type[models.Model], row, worker_id: str) -> bool:
    """Inside the finishing transaction: is the row still leased to us (and not done elsewhere)?"""
    qs = model.objects.filter(id=row.id, locked_by=worker_id, status="pending")
    if connection.features.has_select_for_update:
        qs = qs.select_for_update()
    return qs.exists()


def backoff_s(attempts: int, base: float = 2.0, cap: float = 600.0) -> float:
    return min(cap, base * (2 ** max(0, attempts - 1)))
