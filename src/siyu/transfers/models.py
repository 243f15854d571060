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
    RESIGNED, ONJOB = "resigned", "onjob"
    KIND = [(RESIGNED, _("离职继承")), (ONJOB, _("在职继承"))]
    STRATEGY = [
        ("single", _("全部交给一人")),
        ("count", _("按数量分配")),
        ("store", _("按门店分配")),
        ("round_robin", _("轮流分配（带上限）")),
    ]

    kind = models.CharField(max_length=10, choices=KIND)
    handover = models.ForeignKey("org.Employee", on_delete=models.PROTECT, related_name="handovers_given")
    strategy = models.CharField(max_length=16, choices=STRATEGY, default="single")
    message = models.CharField(_("转接提示语"), max_length=200, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    # Customers the plan could not place (every takeover at its cap), kept for the record.
    unplaced = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-id"]


class HandoverItem(models.Model):
    PLANNED = "planned"  # not yet sent to WeCom
    WAITING = "waiting"  # WeCom: 2, the 24 h run
    ACCEPTED = "accepted"  # 1
    REFUSED = "refused"  # 3
    AT_CAPACITY = "at_capacity"  # 4: the takeover member was at their customer cap
    FAILED = "failed"  # a per-customer errcode, or refused by our pre-check
    STATUS = [
        (PLANNED, _("待提交")),
        (WAITING, _("等待接替")),
        (ACCEPTED, _("已接替")),
        (REFUSED, _("客户拒绝")),
        (AT_CAPACITY, _("接替成员客户已达上限")),
        (FAILED, _("失败")),
    ]
    OPEN = (PLANNED, WAITING)

    handover = models.ForeignKey(Handover, on_delete=models.CASCADE, related_name="items")
    kind = models.CharField(max_length=10, choices=Handover.KIND)
    customer = models.ForeignKey("customers.Customer", null=True, blank=True, on_delete=models.SET_NULL, related_name="handover_items")
    external_userid = models.CharField(max_length=64)
    handover_userid = models.CharField(max_length=64)
    takeover = models.ForeignKey("org.Employee", on_delete=models.PROTECT, related_name="handovers_taken")
    takeover_userid = models.CharField(max_length=64)
    status = models.CharField(max_length=12, choices=STATUS, default=PLANNED)
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


class GroupHandoverItem(models.Model):
    DONE, FAILED = "done", "failed"
    STATUS = [(DONE, _("已转交")), (FAILED, _("失败"))]

    handover = models.ForeignKey(Handover, on_delete=models.CASCADE, related_name="group_items")
    chat_id = models.CharField(max_length=64)
    group = models.ForeignKey("groups.GroupChat", null=True, blank=True, on_delete=models.SET_NULL, related_name="handover_items")
    new_owner = models.ForeignKey("org.Employee", on_delete=models.PROTECT, related_name="groups_taken")
    status = models.CharField(max_length=8, choices=STATUS, default=DONE)
    errcode = models.IntegerField(default=0)
    reason = models.CharField(max_length=255, blank=True, default="")
    at = models.DateTimeField(auto_now_add=True)


class ChurnRule(models.Model):
    """The one rule for churn alerts (row id 1)."""

    IMMEDIATE, DIGEST, OFF = "immediate", "digest", "off"
    MODE = [(IMMEDIATE, _("立即通知")), (DIGEST, _("每日汇总")), (OFF, _("不通知"))]

    mode = models.CharField(_("通知方式"), max_length=10, choices=MODE, default=IMMEDIATE)
    digest_hour = models.IntegerField(_("汇总时间（点）"), default=9)  # China time
    updated_at = models.DateTimeField(auto_now=True)


class ChurnEvent(models.Model):
    BY_CUSTOMER = "del_follow_user"  # the customer deleted the employee
    BY_EMPLOYEE = "del_external_contact"  # the employee deleted the customer
    KIND = [(BY_CUSTOMER, _("客户删除员工")), (BY_EMPLOYEE, _("员工删除客户"))]
    PENDING, SENDING, SENT, NO_MANAGER, SKIPPED = "pending", "sending", "sent", "no_manager", "skipped"
    NOTIFY = [
        (PENDING, _("待通知")),
        (SENDING, _("发送中")),
        (SENT, _("已通知")),
        (NO_MANAGER, _("无上级")),
        (SKIPPED, _("不通知")),
    ]

    kind = models.CharField(max_length=24, choices=KIND)
    customer = models.ForeignKey("customers.Customer", null=True, blank=True, on_delete=models.SET_NULL, related_name="churn_events")
    external_userid = models.CharField(max_length=64)
    employee = models.ForeignKey("org.Employee", null=True, blank=True, on_delete=models.SET_NULL, related_name="churn_events")
    userid = models.CharField(max_length=64)
    at = models.DateTimeField()
    manager_userid = models.CharField(max_length=64, blank=True, default="")
    mode = models.CharField(max_length=10, default=ChurnRule.IMMEDIATE)
    notify_status = models.CharField(max_length=12, choices=NOTIFY, default=PENDING)
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
