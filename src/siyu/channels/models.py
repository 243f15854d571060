"""Acquisition: channel QR codes (渠道活码), store codes (门店活码), welcome messages, group QR codes
(群活码) and the per-add records behind channel analytics.

A channel code is backed by one WeCom contact way whose ``state`` is ``ch:<code id>``: the add
callback alone carries the channel, so attribution, welcome routing and tagging need no lookup
beyond our own row. Group codes use ``gq:<id>`` on their join way.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

STATE_PREFIX = "ch:"
GROUP_STATE_PREFIX = "gq:"


class ChannelCode(models.Model):
    CHANNEL, STORE = "channel", "store"
    KINDS = [(CHANNEL, _("渠道活码")), (STORE, _("门店活码"))]

    name = models.CharField(_("名称"), max_length=64)
    folder = models.CharField(_("分组"), max_length=64, blank=True, default="")
    kind = models.CharField(max_length=8, choices=KINDS, default=CHANNEL)
    # store codes: the store (department) whose guides the code routes to
    department_id = models.IntegerField(null=True, blank=True)
    # staff: primary employees (userids), backups used when every primary is capped or off duty
    users = models.JSONField(default=list, blank=True)
    backups = models.JSONField(default=list, blank=True)
    # [{"days": [0..6] (Monday = 0), "start": "09:00", "end": "18:00", "users": [userid, ...]}];
    # empty: every primary employee is always on duty. A slot without users means all primaries.
    schedule = models.JSONField(default=list, blank=True)
    daily_cap = models.PositiveIntegerField(_("每人每日上限"), default=0)  # 0 = no cap
    skip_verify = models.BooleanField(_("自动通过好友"), default=True)
    # "HH:MM" window during which skip_verify applies (empty: all day)
    skip_verify_start = models.CharField(max_length=5, blank=True, default="")
    skip_verify_end = models.CharField(max_length=5, blank=True, default="")
    tag_ids = models.JSONField(default=list, blank=True)  # WeCom corp tag ids applied on add
    remark_template = models.CharField(_("备注模板"), max_length=64, blank=True, default="")
    description_template = models.CharField(_("描述模板"), max_length=255, blank=True, default="")
    # {"text": "...", "attachments": [{"msgtype": "image", "image": {"file": "<stored name>"}}, ...]}
    welcome = models.JSONField(default=dict, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    poster_background = models.CharField(max_length=255, blank=True, default="")  # stored file name
    poster_text = models.CharField(max_length=64, blank=True, default="")
    # WeCom side
    config_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    qr_url = models.CharField(max_length=512, blank=True, default="")
    active_users = models.JSONField(default=list, blank=True)  # the `user` list last pushed to WeCom
    active_skip_verify = models.BooleanField(default=True)
    on_backup = models.BooleanField(default=False)
    recomputed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=512, blank=True, default="")
    enabled = models.BooleanField(default=True)
    created_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def state(self) -> str:
        return f"{STATE_PREFIX}{self.id}"


class ChannelAdd(models.Model):
    """One customer adding an employee through a code: attribution, caps and analytics."""

    code = models.ForeignKey(ChannelCode, on_delete=models.CASCADE, related_name="adds")
    userid = models.CharField(max_length=64)
    department_id = models.IntegerField(null=True, blank=True)  # the employee's main department
    external_userid = models.CharField(max_length=64)
    added_at = models.DateTimeField()
    day = models.DateField()  # local (settings.TIME_ZONE) day of the add: caps and analytics
    backup = models.BooleanField(default=False)  # the add landed on a backup employee
    lost_at = models.DateTimeField(null=True, blank=True)  # the customer deleted the employee
    decorated = models.BooleanField(default=False)  # tags and remark written (or tried) in WeCom
    tags_ok = models.BooleanField(default=False)
    remark_ok = models.BooleanField(default=False)
    error = models.CharField(max_length=512, blank=True, default="")

    class Meta:
        indexes = [
            models.Index(fields=["code", "day", "userid"], name="chadd_cap"),
            models.Index(fields=["userid", "external_userid"], name="chadd_pair"),
            models.Index(fields=["day"], name="chadd_day"),
        ]

    def __str__(self) -> str:
        return f"{self.external_userid} added {self.userid} by code {self.code_id}"


class WelcomeSend(models.Model):
    """A welcome message send, keyed by the add's welcome_code and recorded BEFORE calling WeCom:
    a second event carrying the same code (add_half → add_external, a redelivery, a crashed worker's
    retry) finds the row and does not send again. ``pending`` left behind by a crash means "maybe
    sent" and is never retried (WeCom would answer 41051 for a used code anyway); once the code's
    20 s window is long past, ``services.reconcile_welcomes`` marks such a row ``unknown``."""

    class Status(models.TextChoices):
        PENDING = "pending", _("发送中")
        SENT = "sent", _("已发送")
        FAILED = "failed", _("失败")
        SKIPPED = "skipped", _("未发送")
        UNKNOWN = "unknown", _("未知")

    # the older names, kept for callers
    PENDING, SENT, FAILED, SKIPPED, UNKNOWN = Status.PENDING, Status.SENT, Status.FAILED, Status.SKIPPED, Status.UNKNOWN
    STATUS = Status.choices

    welcome_code = models.CharField(max_length=64, unique=True)
    code = models.ForeignKey(ChannelCode, null=True, blank=True, on_delete=models.SET_NULL, related_name="welcomes")
    userid = models.CharField(max_length=64)
    external_userid = models.CharField(max_length=64)
    source = models.CharField(max_length=16, default="channel")  # channel | employee | department
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    errcode = models.IntegerField(null=True, blank=True)
    error = models.CharField(max_length=512, blank=True, default="")
    event_at = models.FloatField(default=0)  # the add event's CreateTime
    started_at = models.FloatField(default=0)
    sent_at = models.FloatField(null=True, blank=True)
    payload = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [models.Index(fields=["code", "status"], name="chwelcome_code")]

    def __str__(self) -> str:
        return f"welcome from {self.userid} to {self.external_userid}"  # never the welcome code


class DefaultWelcome(models.Model):
    """A welcome for adds not through a channel code (or a code without its own welcome): per
    employee, else per department."""

    userid = models.CharField(max_length=64, blank=True, default="")
    department_id = models.IntegerField(null=True, blank=True)
    welcome = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"default welcome for {self.userid or f'department {self.department_id}'}"


class MediaCache(models.Model):
    """media/upload results: a temporary media_id is valid 3 days; re-uploaded when expired."""

    file = models.CharField(max_length=255)
    media_type = models.CharField(max_length=8, default="image")
    media_id = models.CharField(max_length=128)
    uploaded_at = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["file", "media_type"], name="chmedia_file")]

    def __str__(self) -> str:
        return f"{self.media_type} {self.file}"


class GroupWelcomeTemplate(models.Model):
    """A group welcome template (入群欢迎语素材, ``group_welcome_template/*``, doc 92366): text plus
    at most one attachment (image, link, mini-program, file or video), kept in WeCom's library
    (≤ 100 per corp) under ``template_id``. ``attachment`` has the welcome editor's stored shape
    (``channels.attachments``); its media is uploaded to WeCom when the template is written."""

    name = models.CharField(_("名称"), max_length=64)
    text = models.TextField(_("欢迎语"), blank=True, default="")
    attachment = models.JSONField(default=dict, blank=True)
    notify = models.BooleanField(_("通知成员"), default=True)
    template_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    last_error = models.CharField(max_length=512, blank=True, default="")
    created_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.name


class GroupCode(models.Model):
    """A group QR code (群活码): one join way over up to 5 customer groups."""

    MAX_CHATS = 5

    name = models.CharField(_("名称"), max_length=64)
    chat_ids = models.JSONField(default=list, blank=True)
    auto_create = models.BooleanField(_("群满自动建群"), default=True)
    owner_userid = models.CharField(max_length=64, blank=True, default="")  # who is asked to create the next group
    group_name_prefix = models.CharField(max_length=32, blank=True, default="")
    welcome_text = models.CharField(max_length=1000, blank=True, default="")
    template_id = models.CharField(max_length=64, blank=True, default="")
    # the group welcome template the code uses (its WeCom id is copied into template_id)
    welcome_template = models.ForeignKey(
        GroupWelcomeTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="group_codes"
    )
    config_id = models.CharField(max_length=64, blank=True, default="")
    qr_url = models.CharField(max_length=512, blank=True, default="")
    joins = models.PositiveIntegerField(default=0)
    per_chat_joins = models.JSONField(default=dict, blank=True)  # chat_id → members who joined by this code
    waiting_new_group = models.BooleanField(default=False)
    last_error = models.CharField(max_length=512, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def state(self) -> str:
        return f"{GROUP_STATE_PREFIX}{self.id}"
