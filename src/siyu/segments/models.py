"""Saved segments: a definition (the JSON grammar of ``segments.grammar``), its count over time,
and the member snapshots taken when a send is planned.

Profiles are the unit: a segment counts people. A send reaches the WeCom customers of its members
(``SnapshotMember.customer``), those without a WeCom relation are counted apart.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Segment(models.Model):
    name = models.CharField(_("名称"), max_length=64)
    description = models.CharField(_("说明"), max_length=255, blank=True, default="")
    definition = models.JSONField(default=dict)
    # the last count, for lists (the live one comes from the engine)
    count = models.IntegerField(default=0)
    counted_at = models.DateTimeField(null=True, blank=True)
    archived = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["archived", "-updated_at"], name="seg_recent")]

    def __str__(self) -> str:
        return self.name


class SegmentCount(models.Model):
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="counts")
    at = models.DateTimeField()
    count = models.IntegerField()

    class Meta:
        indexes = [models.Index(fields=["segment", "-at"], name="seg_count_at")]

    def __str__(self) -> str:
        return f"{self.segment_id}: {self.count} at {self.at}"


class Snapshot(models.Model):
    """The members of a segment at one moment (a send's audience is frozen when it is planned)."""

    segment = models.ForeignKey(Segment, null=True, on_delete=models.SET_NULL, related_name="snapshots")
    definition = models.JSONField(default=dict)
    purpose = models.CharField(max_length=32, blank=True, default="")  # e.g. "broadcast:12"
    profiles = models.IntegerField(default=0)
    customers = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"snapshot {self.pk} ({self.purpose})"


class SnapshotMember(models.Model):
    snapshot = models.ForeignKey(Snapshot, on_delete=models.CASCADE, related_name="members")
    profile_id = models.BigIntegerField()
    customer = models.ForeignKey(
        "customers.Customer", null=True, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )

    class Meta:
        indexes = [models.Index(fields=["snapshot", "customer"], name="seg_snap_member")]

    def __str__(self) -> str:
        return f"profile {self.profile_id} in snapshot {self.snapshot_id}"
