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
from typing import Any, TypeVar

from django.db import connection, models, transaction
from django.db.models import F

# a queue table: ``status``, ``run_after``, ``locked_by`` and ``attempts`` columns
M = TypeVar("M", bound=models.Model)


def claim(
    model: type[M], worker_id: str, limit: int, lease_s: float, first: dict[str, Any] | None = None, **filters: Any
) -> list[M]:
    """Lease up to ``limit`` ready rows (oldest first) matching ``filters``.

    ``first``: extra filters of a lane served before the others (e.g. ``{"priority__gt": 0}``):
    its rows are taken first, and the rest of ``limit`` is filled in id order. Two small
    queries instead of one ``ORDER BY priority DESC, id``, which would sort the whole backlog.
    """
    now = time.time()
    with transaction.atomic():
        ids: list[int] = []
        for lane in ([first] if first else []) + [None]:
            qs = model._default_manager.filter(status="pending", run_after__lte=now, **filters, **(lane or {}))
            if ids:
                qs = qs.exclude(id__in=ids)
            qs = qs.order_by("id")
            if connection.features.has_select_for_update_skip_locked:
                qs = qs.select_for_update(skip_locked=True)
            ids += list(qs.values_list("id", flat=True)[: limit - len(ids)])
            if len(ids) >= limit:
                break
        if not ids:
            return []
        model._default_manager.filter(id__in=ids).update(
            run_after=now + lease_s, locked_by=worker_id, attempts=F("attempts") + 1
        )
    order = {pk: i for i, pk in enumerate(ids)}
    return sorted(model._default_manager.filter(id__in=ids), key=lambda r: order[r.pk])


def still_ours(model: type[models.Model], row: models.Model, worker_id: str) -> bool:
    """Inside the finishing transaction: is the row still leased to us (and not done elsewhere)?"""
    qs = model._default_manager.filter(id=row.pk, locked_by=worker_id, status="pending")
    if connection.features.has_select_for_update:
        qs = qs.select_for_update()
    return bool(qs.exists())


def still_ours_ids(model: type[models.Model], ids: list[int], worker_id: str) -> set[int]:
    """``still_ours`` for many rows at once (one query; row locks on PostgreSQL)."""
    qs = model._default_manager.filter(id__in=ids, locked_by=worker_id, status="pending")
    if connection.features.has_select_for_update:
        qs = qs.select_for_update()
    return set(qs.values_list("id", flat=True))


def backoff_s(attempts: int, base: float = 2.0, cap: float = 600.0) -> float:
    return min(cap, base * (2.0 ** max(0, attempts - 1)))
