"""Continuity (客户继承): handovers of customers and groups, and churn alerts.

A ``Handover`` is one operator action (a resigned or an on-job transfer). Each customer in it is a
``HandoverItem`` whose status follows WeCom: waiting (the 24 h run) → accepted / refused /
at capacity, or failed at once (a per-customer errcode, or refused by our own pre-checks before
WeCom was asked). Each group is a ``GroupHandoverItem`` (group transfers are immediate).

A ``ChurnEvent`` is one lost relation (del_follow_user / del_external_contact), with the manager
to tell and when they were told. ``ChurnRule`` (one row) says immediately or in a daily digest.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Handover(models.Model):
    class Kind(models.TextChoices):
        RESIGNED = "resigned", _("离职继承")
        ONJOB = "onjob", _("在职继承")

    class Strategy(models.TextChoices):
        SINGLE = "single", _("全部交给一人")
        COUNT = "count", _("按数量分配")
        STORE = "store", _("按门店分配")
        ROUND_ROBIN = "round_robin", _("轮流分配（带上限）")

    # the older names, kept for callers
    RESIGNED, ONJOB = Kind.RESIGNED, Kind.ONJOB
    KIND = Kind.choices
    STRATEGY = Strategy.choices

    kind = models.CharField(max_length=10, choices=Kind.choices)
    handover = models.ForeignKey("org.Employee", on_delete=models.PROTECT, related_name="handovers_given")
    strategy = models.CharField(max_length=16, choices=Strategy.choices, default=Strategy.SINGLE)
    message = models.CharField(_("转接提示语"), max_length=200, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    # Customers the plan could not place (every takeover at its cap), kept for the record.
    unplaced = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.kind} handover {self.pk} from employee {self.handover_id}"


class HandoverItem(models.Model):
    class Status(models.TextChoices):
        PLANNED = "planned", _("待提交")  # not yet sent to WeCom
        WAITING = "waiting", _("等待接替")  # WeCom: 2, the 24 h run
        ACCEPTED = "accepted", _("已接替")  # 1
        REFUSED = "refused", _("客户拒绝")  # 3
        AT_CAPACITY = "at_capacity", _("接替成员客户已达上限")  # 4: the takeover member was at their customer cap
        FAILED = "failed", _("失败")  # WeCom answered a per-customer errcode
        NOT_SENT = "not_sent", _("未提交")  # our pre-check: WeCom would refuse it, never sent

    # the older names, kept for callers
    PLANNED, WAITING, ACCEPTED = Status.PLANNED, Status.WAITING, Status.ACCEPTED
    REFUSED, AT_CAPACITY, FAILED, NOT_SENT = Status.REFUSED, Status.AT_CAPACITY, Status.FAILED, Status.NOT_SENT
    STATUS = Status.choices
    OPEN = (Status.PLANNED, Status.WAITING)

    handover = models.ForeignKey(Handover, on_delete=models.CASCADE, related_name="items")
    kind = models.CharField(max_length=10, choices=Handover.Kind.choices)
    customer = models.ForeignKey(
        "customers.Customer", null=True, blank=True, on_delete=models.SET_NULL, related_name="handover_items"
    )
    external_userid = models.CharField(max_length=64)
    handover_userid = models.CharField(max_length=64)
    takeover = models.ForeignKey("org.Employee", on_delete=models.PROTECT, related_name="handovers_taken")
    takeover_userid = models.CharField(max_length=64)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PLANNED)
    errcode = models.IntegerField(default=0)
    reason = models.CharField(max_length=255, blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)  # the automatic takeover (start + 24 h)
    finished_at = models.DateTimeField(null=True, blank=True)
    carried = models.BooleanField(default=False)  # remark/tags/history moved to the new relation
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["handover", "status"], name="xfer_item_handover"),
            models.Index(fields=["status", "handover_userid", "takeover_userid"], name="xfer_item_open"),
            models.Index(fields=["external_userid", "kind", "started_at"], name="xfer_item_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.external_userid} from {self.handover_userid} to {self.takeover_userid}"


class GroupHandoverItem(models.Model):
    class Status(models.TextChoices):
        DONE = "done", _("已转交")
        FAILED = "failed", _("失败")

    DONE, FAILED = Status.DONE, Status.FAILED  # the older names, kept for callers
    STATUS = Status.choices

    handover = models.ForeignKey(Handover, on_delete=models.CASCADE, related_name="group_items")
    chat_id = models.CharField(max_length=64)
    group = models.ForeignKey(
        "groups.GroupChat", null=True, blank=True, on_delete=models.SET_NULL, related_name="handover_items"
    )
    new_owner = models.ForeignKey("org.Employee", on_delete=models.PROTECT, related_name="groups_taken")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DONE)
    errcode = models.IntegerField(default=0)
    reason = models.CharField(max_length=255, blank=True, default="")
    at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"group {self.chat_id} to employee {self.new_owner_id}"


class ChurnRule(models.Model):
    """The one rule for churn alerts (row id 1)."""

    class Mode(models.TextChoices):
        IMMEDIATE = "immediate", _("立即通知")
        DIGEST = "digest", _("每日汇总")
        OFF = "off", _("不通知")

    IMMEDIATE, DIGEST, OFF = Mode.IMMEDIATE, Mode.DIGEST, Mode.OFF  # the older names, kept for callers
    MODE = Mode.choices

    mode = models.CharField(_("通知方式"), max_length=10, choices=Mode.choices, default=Mode.IMMEDIATE)
    digest_hour = models.IntegerField(_("汇总时间（点）"), default=9)  # China time
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"churn rule ({self.mode})"


class ChurnEvent(models.Model):
    class Kind(models.TextChoices):
        BY_CUSTOMER = "del_follow_user", _("客户删除员工")  # the customer deleted the employee
        BY_EMPLOYEE = "del_external_contact", _("员工删除客户")  # the employee deleted the customer

    class Notify(models.TextChoices):
        PENDING = "pending", _("待通知")
        SENDING = "sending", _("发送中")
        SENT = "sent", _("已通知")
        NO_MANAGER = "no_manager", _("无上级")
        SKIPPED = "skipped", _("不通知")

    # the older names, kept for callers
    BY_CUSTOMER, BY_EMPLOYEE = Kind.BY_CUSTOMER, Kind.BY_EMPLOYEE
    KIND = Kind.choices
    PENDING, SENDING, SENT, NO_MANAGER, SKIPPED = (
        Notify.PENDING,
        Notify.SENDING,
        Notify.SENT,
        Notify.NO_MANAGER,
        Notify.SKIPPED,
    )
    NOTIFY = Notify.choices

    kind = models.CharField(max_length=24, choices=Kind.choices)
    customer = models.ForeignKey(
        "customers.Customer", null=True, blank=True, on_delete=models.SET_NULL, related_name="churn_events"
    )
    external_userid = models.CharField(max_length=64)
    employee = models.ForeignKey(
        "org.Employee", null=True, blank=True, on_delete=models.SET_NULL, related_name="churn_events"
    )
    userid = models.CharField(max_length=64)
    at = models.DateTimeField()
    manager_userid = models.CharField(max_length=64, blank=True, default="")
    mode = models.CharField(max_length=10, default=ChurnRule.Mode.IMMEDIATE)
    notify_status = models.CharField(max_length=12, choices=Notify.choices, default=Notify.PENDING)
    notified_at = models.DateTimeField(null=True, blank=True)
    msgid = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["external_userid", "userid", "kind", "at"], name="xfer_churn_once"),
        ]
        indexes = [
            models.Index(fields=["-at", "-id"], name="xfer_churn_at"),
            models.Index(fields=["notify_status", "manager_userid"], name="xfer_churn_notify"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.external_userid} / {self.userid}"
