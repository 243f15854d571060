"""Guide tasks (导购任务): who should contact which customer, about what, by when.

A ``Rule`` makes tasks: an operator's or store manager's campaign (a segment or a list of
customers, a script or material, a deadline), or a rule on the customer data run every morning
(browsed without ordering, repurchase due, birthday, points expiring, dormant, new customer day
1/3/7). Each task names one customer and the guide who follows them (their most recent active
relation), and is unique per (rule, customer, period): a rule's period says when the same customer
may be asked for again (a day, a purchase cycle, a year...).
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Rule(models.Model):
    class Kind(models.TextChoices):
        CAMPAIGN = "campaign", _("运营任务")
        BROWSED = "browsed", _("浏览未下单")
        REPURCHASE = "repurchase", _("复购提醒")
        BIRTHDAY = "birthday", _("生日关怀")
        POINTS = "points", _("积分到期")
        DORMANT = "dormant", _("沉睡唤醒")
        NEWCOMER = "newcomer", _("新客跟进")
        FOLLOWUP = "followup", _("跟进提醒")

    kind = models.CharField(_("类型"), max_length=16, choices=Kind.choices)
    name = models.CharField(_("名称"), max_length=64)
    active = models.BooleanField(_("启用"), default=True)
    # per kind (services.DEFAULTS): hours, fraction, days, days_before, day_list...
    params = models.JSONField(default=dict, blank=True)
    script_id = models.IntegerField(null=True, blank=True)  # the suggested content (siyu.materials)
    material_id = models.IntegerField(null=True, blank=True)
    due_hours = models.IntegerField(_("完成时限（小时）"), default=24)
    # a campaign's audience: a saved segment or a list of WeCom customer ids, and its deadline; a
    # store manager's campaign reaches only their store's guides (department_id)
    segment_id = models.IntegerField(null=True, blank=True)
    customer_ids = models.JSONField(default=list, blank=True)
    deadline = models.DateTimeField(null=True, blank=True)
    department_id = models.BigIntegerField(null=True, blank=True)
    created_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_run_created = models.IntegerField(default=0)
    stats: dict[str, int] | None = None  # not stored: set by the rules page

    def __str__(self) -> str:
        return self.name


class Task(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("待完成")
        DONE = "done", _("已完成")
        CANCELLED = "cancelled", _("已取消")

    class Outcome(models.TextChoices):
        SENT = "sent", _("已发送建议内容")
        CONTACTED = "contacted", _("已联系")
        NO_ANSWER = "no_answer", _("未回复")
        DECLINED = "declined", _("客户无意向")
        BOUGHT = "bought", _("已成交")
        OTHER = "other", _("其他")

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    period = models.CharField(max_length=32)
    customer_id = models.BigIntegerField()  # siyu.customers Customer
    employee_userid = models.CharField(max_length=64)
    department_id = models.BigIntegerField(null=True, blank=True)  # the guide's store, when the task was made
    created_at = models.DateTimeField()
    due_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True, default="")
    note = models.CharField(max_length=200, blank=True, default="")
    done_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    # not stored: names for a page, set by selectors._label
    customer_name: str = ""
    guide_name: str = ""
    suggestion: str = ""
    is_overdue: bool = False

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rule", "customer_id", "period"], name="guidetasks_task_once"),
        ]
        indexes = [
            models.Index(fields=["employee_userid", "status", "due_at"], name="guidetasks_task_guide"),
            models.Index(fields=["customer_id", "status"], name="guidetasks_task_customer"),
            models.Index(fields=["status", "due_at"], name="guidetasks_task_due"),
        ]

    def __str__(self) -> str:
        return f"task {self.id} ({self.rule_id}, {self.customer_id})"


class Summary(models.Model):
    """A morning summary sent to a guide (one per guide and day: a retry never sends twice)."""

    employee_userid = models.CharField(max_length=64)
    day = models.DateField()
    open_tasks = models.IntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["employee_userid", "day"], name="guidetasks_summary_once")]

    def __str__(self) -> str:
        return f"summary {self.employee_userid} {self.day}"


class FollowUp(models.Model):
    """A guide's follow-up record of a customer (跟进记录), with the day to contact them next: on that
    morning the ``followup`` rule makes the guide a task."""

    customer_id = models.BigIntegerField(db_index=True)  # siyu.customers Customer
    employee_id = models.BigIntegerField()  # siyu.org Employee: who wrote it (and is reminded)
    employee_userid = models.CharField(max_length=64)
    text = models.CharField(_("跟进内容"), max_length=500)
    next_at = models.DateField(_("下次联系"), null=True, blank=True, db_index=True)
    created_at = models.DateTimeField()
    author: str = ""  # not stored: set by selectors.followups_of

    def __str__(self) -> str:
        return f"follow-up {self.id} of customer {self.customer_id}"
