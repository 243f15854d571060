"""Customers (外部联系人), their follow relations with employees, corp tags and the timeline.

A customer is never deleted: when every relation is lost the customer stays, ``status = lost``.
Tags live on the relation (WeCom tags a (employee, customer) pair, not a customer); ``FollowTag``
also carries the customer id so "customers with tag X" is one index range at a million rows.

Indexes serve the customer list (filters: tags, employee, department → employees, add time,
status; newest first) and the timeline.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Customer(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("跟进中")
        LOST = "lost", _("已流失")

    ACTIVE, LOST = Status.ACTIVE, Status.LOST  # the older names, kept for callers
    STATUS = Status.choices
    TYPE = [(1, _("微信用户")), (2, _("企业微信用户"))]
    GENDER = [(0, _("未知")), (1, _("男")), (2, _("女"))]

    external_userid = models.CharField(max_length=64, unique=True)
    name = models.CharField(_("昵称"), max_length=128, blank=True, default="")
    avatar = models.CharField(max_length=512, blank=True, default="")
    type = models.IntegerField(choices=TYPE, default=1)
    gender = models.IntegerField(choices=GENDER, default=0)
    unionid = models.CharField(max_length=64, blank=True, default="", db_index=True)
    position = models.CharField(max_length=64, blank=True, default="")
    corp_name = models.CharField(max_length=64, blank=True, default="")
    corp_full_name = models.CharField(max_length=128, blank=True, default="")
    # Derived from the relations (services.derive_customer): active while any relation is active.
    status = models.CharField(_("状态"), max_length=8, choices=Status.choices, default=Status.ACTIVE)
    first_added_at = models.DateTimeField(_("首次添加时间"), null=True, blank=True)
    lost_at = models.DateTimeField(_("流失时间"), null=True, blank=True)
    # Lower-cased name, corp names, remarks and remark mobiles of every relation, for one-column
    # search ("name, remark or phone contains ...").
    search_text = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["-first_added_at", "-id"], name="cust_added"),
            models.Index(fields=["status", "-first_added_at", "-id"], name="cust_status_added"),
            models.Index(fields=["status", "-lost_at"], name="cust_status_lost"),
            # the console list's other sort orders (keyset pages on (key, id))
            models.Index(fields=["name", "id"], name="cust_name"),
            models.Index(fields=["-updated_at", "-id"], name="cust_updated"),
        ]

    def __str__(self) -> str:
        return self.name or self.external_userid


class FollowRelation(models.Model):
    """One employee following one customer (follow_user / follow_info in WeCom's answers)."""

    ACTIVE = "active"

    class Status(models.TextChoices):
        ACTIVE = "active", _("跟进中")
        LOST_BY_CUSTOMER = "lost_by_customer", _("客户删除员工")  # del_follow_user: the customer deleted the employee
        LOST_BY_EMPLOYEE = (
            "lost_by_employee",
            _("员工删除客户"),
        )  # del_external_contact: the employee deleted the customer
        TRANSFERRED = "transferred", _("已转接")  # del_external_contact with Source=DELETE_BY_TRANSFER
        GONE = "gone", _("已不存在")  # no longer in WeCom, found by a full sync (the cause was never reported)

    # the older names, kept for callers
    ACTIVE, LOST_BY_CUSTOMER, LOST_BY_EMPLOYEE = Status.ACTIVE, Status.LOST_BY_CUSTOMER, Status.LOST_BY_EMPLOYEE
    TRANSFERRED, GONE = Status.TRANSFERRED, Status.GONE
    STATUS = Status.choices
    LOST_STATUSES = (Status.LOST_BY_CUSTOMER, Status.LOST_BY_EMPLOYEE, Status.TRANSFERRED, Status.GONE)

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="relations")
    employee = models.ForeignKey("org.Employee", on_delete=models.PROTECT, related_name="relations")
    remark = models.CharField(_("备注"), max_length=64, blank=True, default="")
    description = models.CharField(_("描述"), max_length=255, blank=True, default="")
    remark_corp_name = models.CharField(max_length=64, blank=True, default="")
    remark_mobiles = models.JSONField(default=list, blank=True)
    add_way = models.IntegerField(_("添加方式"), default=0)
    # The contact way's state (渠道): how the customer came in.
    state = models.CharField(_("渠道"), max_length=64, blank=True, default="", db_index=True)
    oper_userid = models.CharField(max_length=64, blank=True, default="")
    # Personal tags (type 2) carry no id; only externalcontact/get reports them.
    personal_tags = models.JSONField(default=list, blank=True)
    added_at = models.DateTimeField(_("添加时间"))  # createtime
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Every write (sync page or callback) sets it: a full sync's reconciliation only touches
    # relations not written since the run started.
    updated_at = models.DateTimeField(auto_now=True)
    tags: models.ManyToManyField[Tag, FollowTag] = models.ManyToManyField(
        "Tag", through="FollowTag", related_name="relations"
    )
    # not columns: the detail page's tags of the relation, set by selectors.customer_detail, and
    # its add way's label, set by views.customer_detail
    tag_list: list[Tag]
    add_way_label: object

    class Meta:
        constraints = [models.UniqueConstraint(fields=["customer", "employee"], name="cust_rel_pair")]
        indexes = [
            models.Index(fields=["employee", "status", "-added_at"], name="cust_rel_emp"),
            models.Index(fields=["status", "-added_at"], name="cust_rel_added"),
            models.Index(fields=["employee", "status", "updated_at"], name="cust_rel_seen"),
            # the console list: employee / department + add-time filters, covering the customer id
            models.Index(fields=["employee", "added_at", "customer"], name="cust_rel_emp_added"),
            # per customer: "has a relation added in the range by one of these employees", one probe
            models.Index(fields=["customer", "added_at", "employee"], name="cust_rel_cust_added"),
        ]

    def __str__(self) -> str:
        return f"customer {self.customer_id} of employee {self.employee_id}"


class TagGroup(models.Model):
    group_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(_("标签组"), max_length=64)
    order = models.BigIntegerField(default=0)  # WeCom: larger sorts first
    created_at = models.DateTimeField(null=True, blank=True)
    strategy_id = models.IntegerField(null=True, blank=True)  # rule-group (规则组) tags
    deleted = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-order", "id"]

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    tag_id = models.CharField(max_length=64, unique=True)
    group = models.ForeignKey(TagGroup, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(_("标签"), max_length=64)
    order = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(null=True, blank=True)
    deleted = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)
    # not a column: the tag page's count, set by tags.selectors.tag_library
    customer_count: int

    class Meta:
        ordering = ["-order", "id"]

    def __str__(self) -> str:
        return self.name


class FollowTag(models.Model):
    """A corp tag on a relation. ``customer`` and ``employee`` repeat ``relation.customer`` and
    ``relation.employee`` (a relation's pair never changes) for tag filters: "customers with tag X"
    is one index range, and "... tagged by one of these employees" (a viewer's data scope) one
    range per employee. A relation that ends keeps the tags it had then (the customer's history)."""

    relation = models.ForeignKey(FollowRelation, on_delete=models.CASCADE, related_name="follow_tags")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="follow_tags")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="follow_tags")
    # no index of its own: cust_followtag_emp serves the scoped tag filters
    employee = models.ForeignKey("org.Employee", on_delete=models.PROTECT, related_name="+", db_index=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["relation", "tag"], name="cust_followtag_pair")]
        indexes = [
            models.Index(fields=["tag", "customer"], name="cust_followtag_tag"),
            # a scoped viewer's tag filters: tags on the relations of the scope's employees only
            models.Index(fields=["tag", "employee", "customer"], name="cust_followtag_emp"),
        ]

    def __str__(self) -> str:
        return f"tag {self.tag_id} on relation {self.relation_id}"


class CustomerEvent(models.Model):
    """The customer's timeline: what happened, with which employee, when."""

    ADDED = "added"
    REJOINED = "rejoined"
    LOST = "lost"
    TRANSFERRED = "transferred"
    TRANSFER_FAILED = "transfer_failed"
    TAGGED = "tagged"
    UNTAGGED = "untagged"
    REMARK_CHANGED = "remark_changed"
    GROUP_JOINED = "group_joined"
    GROUP_LEFT = "group_left"
    KIND = [
        (ADDED, _("添加")),
        (REJOINED, _("重新添加")),
        (LOST, _("流失")),
        (TRANSFERRED, _("转接")),
        (TRANSFER_FAILED, _("转接失败")),
        (TAGGED, _("打标签")),
        (UNTAGGED, _("移除标签")),
        (REMARK_CHANGED, _("修改备注")),
        (GROUP_JOINED, _("入群")),
        (GROUP_LEFT, _("退群")),
    ]

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=24, choices=KIND)
    employee = models.ForeignKey(
        "org.Employee", null=True, blank=True, on_delete=models.SET_NULL, related_name="customer_events"
    )
    detail = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField()
    source = models.CharField(max_length=8, default="callback")  # callback | sync
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["customer", "-at", "-id"], name="cust_event_timeline"),
            models.Index(fields=["kind", "-at"], name="cust_event_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of customer {self.customer_id} at {self.at}"


class BulkTagJob(models.Model):
    """Tagging every customer matching the filter, when they are more than one request should write
    (``services.BULK_TAG_LIMIT``): run by the worker in batches, newest customer first, with its
    progress on the customer page. The viewer's scope and filter are kept as they were when the
    job was started; ``cursor`` is the last customer id done (the job resumes after it)."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("排队中")
        RUNNING = "running", _("进行中")
        DONE = "done", _("已完成")
        FAILED = "failed", _("失败")

    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    operator = models.CharField(max_length=150, blank=True, default="")
    scope = models.JSONField(default=dict)  # DataScope's fields
    filters = models.JSONField(default=dict)  # CustomerFilters' fields (dates as ISO strings)
    add_tags = models.JSONField(default=list)  # Tag row ids
    remove_tags = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    total = models.IntegerField(default=0)  # customers matching when the job started
    processed = models.IntegerField(default=0)  # customers done
    relations = models.IntegerField(default=0)
    succeeded = models.IntegerField(default=0)
    failure_count = models.IntegerField(default=0)
    failures = models.JSONField(default=list)  # the first failures: {customer_name, userid, errcode, errmsg}
    cursor = models.BigIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"bulk tag job {self.id} ({self.status})"

    @property
    def percent(self) -> int:
        return 100 if not self.total else min(100, self.processed * 100 // self.total)

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)
