"""Shared infrastructure tables: worker heartbeats and timers (scheduled and delayed work)."""

from __future__ import annotations

from django.db import models


class WorkerHeartbeat(models.Model):
    worker_id = models.CharField(max_length=64, primary_key=True)
    hostname = models.CharField(max_length=128, blank=True, default="")
    pid = models.IntegerField(default=0)
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)
    processed = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.worker_id} ({self.hostname}:{self.pid})"


class Timer(models.Model):
    """A unit of scheduled work: a row, not an in-memory job, so millions of timers are cheap.

    ``kind`` names a handler registered with ``siyu.core.timers.handler``; ``key`` makes scheduling
    idempotent (one pending timer per key).
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        DONE = "done"  # ran, or was cancelled (``timers.cancel``)
        FAILED = "failed"

    kind = models.CharField(max_length=64)
    key = models.CharField(max_length=128, null=True, blank=True, unique=True)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    run_after = models.FloatField(db_index=True)  # unix time: due at, or leased until
    attempts = models.IntegerField(default=0)
    locked_by = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["status", "run_after", "id"], name="core_timer_due")]

    def __str__(self) -> str:
        return f"{self.kind} {self.key or self.pk} [{self.status}]"
