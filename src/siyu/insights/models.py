"""Computed per profile: RFM, lifecycle stage and value score, with the operator's settings.

``Metrics`` is one row per (unmerged) profile, recomputed nightly in full and incrementally for
the profiles whose orders or events changed (within seconds). ``StageCount`` keeps the weekly
lifecycle counts and moves between stages, for the funnel's week-over-week view.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class RfmClass(models.TextChoices):
    IMPORTANT_VALUE = "important_value", _("重要价值")
    IMPORTANT_DEVELOP = "important_develop", _("重要发展")
    IMPORTANT_KEEP = "important_keep", _("重要保持")
    IMPORTANT_RETAIN = "important_retain", _("重要挽留")
    NORMAL_VALUE = "normal_value", _("一般价值")
    NORMAL_DEVELOP = "normal_develop", _("一般发展")
    NORMAL_KEEP = "normal_keep", _("一般保持")
    NORMAL_RETAIN = "normal_retain", _("一般挽留")


class Stage(models.TextChoices):
    PROSPECT = "prospect", _("潜在客户")
    NEW = "new", _("新客")
    REPEAT = "repeat", _("复购客")
    LOYAL = "loyal", _("忠诚客")
    DORMANT = "dormant", _("沉睡客")
    LOST = "lost", _("流失客")


class Metrics(models.Model):
    # no database constraint: its check (and the row lock it takes on the profile) at the commit
    # of a full recompute cost PostgreSQL a million lookups; the rows are written only for the
    # persons just read, and CASCADE is Django's (deleting a profile deletes its row)
    profile = models.OneToOneField(
        "profiles.Profile", primary_key=True, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    # within the RFM window, net of refunds (a fully refunded order does not count)
    orders = models.IntegerField(default=0)
    amount = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    # all time
    orders_total = models.IntegerField(default=0)
    amount_total = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    first_order_at = models.DateTimeField(null=True, blank=True)
    last_order_at = models.DateTimeField(null=True, blank=True)
    # 1–5; 0 = no order in the window
    r = models.SmallIntegerField(default=0)
    f = models.SmallIntegerField(default=0)
    m = models.SmallIntegerField(default=0)
    rfm_class = models.CharField(max_length=20, choices=RfmClass.choices, blank=True, default="")
    stage = models.CharField(max_length=10, choices=Stage.choices, default=Stage.PROSPECT)
    stage_since = models.DateTimeField(null=True, blank=True)
    value_score = models.SmallIntegerField(default=0)  # 0–100
    value_band = models.CharField(max_length=16, blank=True, default="")
    # the stage at the last weekly snapshot (StageCount), to count the moves of the week after it
    week_stage = models.CharField(max_length=10, blank=True, default="")
    computed_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["rfm_class"], name="ins_rfm_class"),
            models.Index(fields=["stage"], name="ins_stage"),
            models.Index(fields=["value_band"], name="ins_value_band"),
            models.Index(fields=["computed_at"], name="ins_computed"),
        ]

    def __str__(self) -> str:
        return f"metrics of profile {self.pk}"


class Settings(models.Model):
    """One row (pk 1): the operator's thresholds. Defaults are those of the issue."""

    window_days = models.IntegerField(default=365)
    # "quantile" (scores 1–5 by quintiles) or "thresholds" (the operator's cut points below)
    scoring = models.CharField(max_length=12, default="quantile")
    # {"r": [days...4 cut points], "f": [...], "m": [...]} when scoring = thresholds
    thresholds = models.JSONField(default=dict, blank=True)
    loyal_orders = models.IntegerField(default=4)
    loyal_days = models.IntegerField(default=30)
    dormant_days = models.IntegerField(default=180)
    lost_days = models.IntegerField(default=365)
    # value bands: [{"key": "high", "label": "高价值", "min": 80}, ...] (min score, highest first)
    value_bands = models.JSONField(default=list, blank=True)
    # mirror to WeCom corp tags: the tag group chosen (customers.TagGroup row id), or none
    mirror_tag_group_id = models.BigIntegerField(null=True, blank=True)
    mirror_enabled = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return "insight settings"


class StageCount(models.Model):
    """Weekly: how many profiles were in each stage, and how many moved from one stage to another
    since the week before (``from_stage`` = "" for the plain count)."""

    week = models.DateField()  # the Monday
    from_stage = models.CharField(max_length=10, blank=True, default="")
    stage = models.CharField(max_length=10)
    count = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["week", "from_stage", "stage"], name="ins_stage_week")]

    def __str__(self) -> str:
        return f"{self.week} {self.from_stage}->{self.stage}: {self.count}"


class Run(models.Model):
    """A full recompute (nightly, after a settings change, or asked for on the settings page),
    with its progress; the last finished one's ``params`` (cut points, averages, percentile grids)
    are those the incremental updates score with."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("排队中")
        RUNNING = "running", _("计算中")
        DONE = "done", _("已完成")
        FAILED = "failed", _("失败")

    trigger = models.CharField(max_length=16, default="nightly")  # nightly | manual | settings
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    progress = models.SmallIntegerField(default=0)  # percent
    persons = models.IntegerField(default=0)
    orders = models.IntegerField(default=0)
    params = models.JSONField(default=dict, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["status", "-id"], name="ins_run_status")]

    def __str__(self) -> str:
        return f"recompute {self.pk} ({self.status})"


class Cursor(models.Model):
    """One row (pk 1): how far the incremental updates have read (orders, profiles, customers by
    ``updated_at`` and id), and the mirror's last pass."""

    orders_at = models.DateTimeField(null=True, blank=True)
    orders_id = models.BigIntegerField(default=0)
    profiles_at = models.DateTimeField(null=True, blank=True)
    customers_at = models.DateTimeField(null=True, blank=True)
    mirror_at = models.DateTimeField(null=True, blank=True)
    mirror_id = models.BigIntegerField(default=0)  # ties on mirror_at: the last profile id mirrored
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return "insights cursor"


class Member(models.Model):
    """A profile merged into a person, as of that person's last recompute: an unmerge (which
    touches only the merged profile) then also recomputes the person it left."""

    profile_id = models.BigIntegerField(primary_key=True)
    person_id = models.BigIntegerField(db_index=True)

    def __str__(self) -> str:
        return f"{self.profile_id} in {self.person_id}"
