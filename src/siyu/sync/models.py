"""The full sync's runs (cross-domain: org, tags, customers, groups).

``SyncRun`` was the customers app's until the sync became its own app; it keeps its table
(``customers_syncrun``) so existing databases keep their runs (see migrations/0001_initial.py).
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class SyncRun(models.Model):
    """One full sync of the corp (org, tags, customers, groups): resumable after a crash.

    ``state`` holds the phase's cursors (per userid batch of batch/get_by_user, the group list and
    how far the group details got); every page's writes and its new cursor commit together.
    """

    class Status(models.TextChoices):
        RUNNING = "running", _("进行中")
        DONE = "done", _("完成")
        FAILED = "failed", _("中断")
        ABANDONED = "abandoned", _("已放弃")

    RUNNING, DONE, FAILED, ABANDONED = Status.RUNNING, Status.DONE, Status.FAILED, Status.ABANDONED
    PHASES = ["org", "tags", "customers", "groups", "reconcile", "done"]

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING, db_index=True)
    phase = models.CharField(max_length=12, default="org")
    state = models.JSONField(default=dict)
    counts = models.JSONField(default=dict)
    totals = models.JSONField(default=dict)  # estimates for progress
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    owner = models.CharField(max_length=128, blank=True, default="")  # host:pid of the process running it
    resumes = models.IntegerField(default=0)
    error = models.TextField(blank=True, default="")

    class Meta:
        db_table = "customers_syncrun"  # the table it had in the customers app
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"sync run {self.pk} [{self.status}, {self.phase}]"
