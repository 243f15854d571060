"""Broadcasts (群发): mass messages to customers or groups, and Moments (朋友圈) tasks.

A broadcast is composed (content + audience), estimated, then executed in three resumable steps:

1. **plan** — one ``Recipient`` row per target (customer external_userid or group chat_id), unique
   per broadcast, written in chunks of the audience whose cursor commits with the rows. A target
   that will not be sent to is planned ``skipped`` with the reason (lost relation, receive cap).
2. **batch** — per sender, the planned rows are cut into ``Batch`` rows of at most WeCom's
   per-call limit (10,000 customers / 2,000 groups per add_msg_template).
3. **send** — one add_msg_template per batch; the batch is marked ``sending`` before the call and
   reconciled against get_groupmsg_list_v2 if the process died before recording the msgid.

Results are synced into the rows (per batch = per employee task; per recipient). ``Receipt`` is our
ledger of what was actually received, which the receive caps are counted from (as WeCom does).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Broadcast(models.Model):
    class Kind(models.TextChoices):
        CUSTOMER = "customer", _("客户群发")
        GROUP = "group", _("客户群群发")
        MOMENT = "moment", _("朋友圈")

    class Status(models.TextChoices):
        DRAFT = "draft", _("草稿")
        SCHEDULED = "scheduled", _("定时")
        PLANNING = "planning", _("准备中")
        SENDING = "sending", _("发送中")
        SENT = "sent", _("已下发")
        CANCELLED = "cancelled", _("已取消")
        FAILED = "failed", _("失败")

    # the older names, kept for callers
    CUSTOMER, GROUP, MOMENT = Kind.CUSTOMER, Kind.GROUP, Kind.MOMENT
    KINDS = Kind.choices
    DRAFT, SCHEDULED, PLANNING, SENDING = Status.DRAFT, Status.SCHEDULED, Status.PLANNING, Status.SENDING
    SENT, CANCELLED, FAILED = Status.SENT, Status.CANCELLED, Status.FAILED
    STATUS = Status.choices
    RUNNING = (Status.SCHEDULED, Status.PLANNING, Status.SENDING)

    kind = models.CharField(_("类型"), max_length=10, choices=Kind.choices, default=Kind.CUSTOMER)
    name = models.CharField(_("名称"), max_length=100)
    status = models.CharField(_("状态"), max_length=10, choices=Status.choices, default=Status.DRAFT, db_index=True)
    text = models.TextField(_("文本"), blank=True, default="")
    attachments = models.JSONField(default=list, blank=True)
    audience = models.JSONField(default=dict, blank=True)
    send_at = models.DateTimeField(_("发送时间"), null=True, blank=True)  # None = now
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    # execution state
    phase = models.CharField(max_length=10, default="plan")  # plan | batch | send | sync | done
    plan_cursor = models.BigIntegerField(default=0)  # last audience key planned
    lease_owner = models.CharField(max_length=64, blank=True, default="")
    lease_until = models.FloatField(default=0)
    # Moments: the job and the moment
    jobid = models.CharField(max_length=64, blank=True, default="")
    moment_id = models.CharField(max_length=64, blank=True, default="")
    error = models.TextField(blank=True, default="")
    totals = models.JSONField(default=dict, blank=True)  # funnel counters, refreshed by sync

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.name


class Media(models.Model):
    """An uploaded attachment file; its WeCom media_id lives 3 days and is re-uploaded before use."""

    KINDS = [("image", _("图片")), ("video", _("视频")), ("file", _("文件"))]
    kind = models.CharField(max_length=8, choices=KINDS)
    name = models.CharField(max_length=128)
    content_type = models.CharField(max_length=100, blank=True, default="")
    data = models.BinaryField()
    size = models.IntegerField(default=0)
    media_id = models.CharField(max_length=128, blank=True, default="")
    uploaded_at = models.FloatField(default=0)
    # Moments need media/upload_attachment (attachment_type 1): a separate media_id
    moment_media_id = models.CharField(max_length=128, blank=True, default="")
    moment_uploaded_at = models.FloatField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


class Batch(models.Model):
    """One add_msg_template call (customer/group) — one sender's task; for Moments, one employee's
    task in the moment. ``status`` is our call's state; ``task_status`` WeCom's (0 not sent / 2 sent;
    Moments: publish_status 0/1 mapped to 0/2)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("待创建")
        SENDING = "sending", _("创建中")
        SENT = "sent", _("已下发")
        FAILED = "failed", _("失败")

    PENDING, SENDING, SENT, FAILED = Status.PENDING, Status.SENDING, Status.SENT, Status.FAILED  # older names
    STATUS = Status.choices

    broadcast = models.ForeignKey(Broadcast, on_delete=models.CASCADE, related_name="batches")
    employee = models.ForeignKey("org.Employee", null=True, on_delete=models.SET_NULL, related_name="+")
    userid = models.CharField(max_length=64)
    seq = models.IntegerField(default=0)
    size = models.IntegerField(default=0)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    msgid = models.CharField(max_length=64, blank=True, default="", db_index=True)
    send_started_at = models.FloatField(null=True, blank=True)
    first_target = models.CharField(max_length=64, blank=True, default="")
    # the batch's recipients: this sender's non-skipped rows with lo_id ≤ id ≤ hi_id (no per-row
    # batch write for a million rows); Moments tasks use Recipient.batch instead
    lo_id = models.BigIntegerField(null=True, blank=True)
    hi_id = models.BigIntegerField(null=True, blank=True)
    task_status = models.IntegerField(default=0)
    task_send_time = models.IntegerField(null=True, blank=True)
    results_synced = models.BooleanField(default=False)  # per-recipient results read after sending
    error = models.TextField(blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["broadcast", "userid", "seq"], name="bc_batch_seq")]

    def __str__(self) -> str:
        return f"batch {self.seq} of broadcast {self.broadcast_id} ({self.userid})"

    def rows(self) -> models.QuerySet[Recipient]:
        if self.lo_id is None:
            return Recipient.objects.filter(batch=self)
        return Recipient.objects.filter(
            broadcast_id=self.broadcast_id, employee_id=self.employee_id, id__gte=self.lo_id, id__lte=self.hi_id
        ).exclude(state=Recipient.SKIPPED)


class Recipient(models.Model):
    """One target of a broadcast, planned exactly once (unique per broadcast)."""

    class State(models.TextChoices):
        PLANNED = "planned", _("待发送")
        SKIPPED = "skipped", _("已跳过")
        DELIVERED = "delivered", _("待员工发送")  # the employee's task exists, not sent yet
        RECEIVED = "received", _("已送达")
        FAILED = "failed", _("未送达")  # WeCom refused it: not a friend, over the receive cap
        DECLINED = "declined", _("员工未发送")  # the employee left it out, or never sent the task

    # the older names, kept for callers
    PLANNED, SKIPPED, DELIVERED, RECEIVED, FAILED, DECLINED = (
        State.PLANNED,
        State.SKIPPED,
        State.DELIVERED,
        State.RECEIVED,
        State.FAILED,
        State.DECLINED,
    )
    STATES = State.choices

    # (the unique constraint's (broadcast, target) index serves broadcast lookups: no extra index)
    broadcast = models.ForeignKey(Broadcast, on_delete=models.CASCADE, related_name="recipients", db_index=False)
    target = models.CharField(max_length=64)  # external_userid or chat_id
    customer_id = models.BigIntegerField(null=True, blank=True)
    group_id = models.BigIntegerField(null=True, blank=True)
    employee_id = models.BigIntegerField(null=True, blank=True)  # sender (org.Employee id)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PLANNED)
    reason = models.CharField(max_length=32, blank=True, default="")
    # Moments only (customer/group batches are id ranges, Batch.rows); found through bc_rcpt_sender_state
    batch = models.ForeignKey(
        Batch, null=True, blank=True, on_delete=models.SET_NULL, related_name="recipients", db_index=False
    )
    received_at = models.IntegerField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["broadcast", "target"], name="bc_recipient_once")]
        indexes = [
            # state included: cutting a million planned rows into batches reads this index only
            models.Index(fields=["broadcast", "employee_id", "id", "state"], name="bc_rcpt_sender_state"),
        ]

    def __str__(self) -> str:
        return f"{self.target} in broadcast {self.broadcast_id}"


class Receipt(models.Model):
    """What a customer or a group actually received (status 1 / Moments delivered), with when: the
    receive caps are counted from here like WeCom counts them."""

    kind = models.CharField(max_length=8)  # single | group | moment
    target = models.CharField(max_length=64)
    at = models.IntegerField()
    broadcast = models.ForeignKey(Broadcast, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["broadcast", "target", "kind"], name="bc_receipt_once")]
        indexes = [models.Index(fields=["kind", "target", "at"], name="bc_receipt_cap")]

    def __str__(self) -> str:
        return f"{self.kind} receipt {self.target}"
