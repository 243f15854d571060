"""The corp's organisation as WeCom reports it: departments (a tree) and employees (成员).

Rows mirror WeCom (``department/list``, ``user/list``, ``user/get``) and are kept in step by the
full sync and the ``change_contact`` callbacks. Ids are WeCom's: a department's primary key is its
WeCom id; an employee has a surrogate key because WeCom lets a userid change (NewUserID).
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Department(models.Model):
    """A department. ``path`` is the materialised path of WeCom ids, e.g. ``/1/2/7/``: the subtree of
    a department is ``path__startswith=dept.path`` (store managers see their subtree)."""

    id = models.BigIntegerField(primary_key=True)  # WeCom department id
    name = models.CharField(_("名称"), max_length=64)
    name_en = models.CharField(max_length=64, blank=True, default="")
    # WeCom's parentid as given (0 for the root; may name a department outside the app's visibility).
    parentid = models.BigIntegerField(default=0)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children", db_constraint=False
    )
    order = models.BigIntegerField(default=0)  # WeCom: larger sorts first
    path = models.CharField(max_length=512, default="/", db_index=True)
    depth = models.IntegerField(default=0)
    leader_userids = models.JSONField(default=list, blank=True)  # department_leader
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["path"]

    def __str__(self) -> str:
        return self.name


class Employee(models.Model):
    """A member of the corp (成员). Never deleted: a departed employee keeps their customers'
    history and is marked ``STATUS_LEFT`` with ``resigned_at``."""

    class Status(models.IntegerChoices):  # WeCom's own codes (user/get's status)
        ACTIVE = 1, _("已激活")
        DISABLED = 2, _("已禁用")
        INACTIVE = 4, _("未激活")
        LEFT = 5, _("已离职")

    # the older names, kept for callers
    STATUS_ACTIVE, STATUS_DISABLED, STATUS_INACTIVE, STATUS_LEFT = (
        Status.ACTIVE,
        Status.DISABLED,
        Status.INACTIVE,
        Status.LEFT,
    )
    STATUS = Status.choices
    GENDER = [("0", _("未知")), ("1", _("男")), ("2", _("女"))]

    userid = models.CharField(max_length=64, unique=True)
    name = models.CharField(_("姓名"), max_length=64, blank=True, default="")
    alias = models.CharField(max_length=64, blank=True, default="")
    position = models.CharField(_("职务"), max_length=128, blank=True, default="")
    mobile = models.CharField(_("手机"), max_length=32, blank=True, default="")
    email = models.CharField(max_length=128, blank=True, default="")
    gender = models.CharField(max_length=1, choices=GENDER, default="0")
    avatar = models.CharField(max_length=512, blank=True, default="")
    status = models.IntegerField(choices=Status.choices, default=Status.ACTIVE, db_index=True)
    departments: models.ManyToManyField[Department, EmployeeDepartment] = models.ManyToManyField(
        Department, through="EmployeeDepartment", related_name="employees"
    )
    main_department = models.ForeignKey(
        Department, null=True, blank=True, on_delete=models.SET_NULL, related_name="main_employees", db_constraint=False
    )
    is_leader = models.BooleanField(default=False)  # leader in any of their departments
    direct_leaders = models.JSONField(default=list, blank=True)  # [userid]
    # Has the customer-contact (客户联系) function: listed by get_follow_user_list.
    contact_enabled = models.BooleanField(default=False, db_index=True)
    # Known only by id so far (a follower or group owner seen before the employee was read).
    placeholder = models.BooleanField(default=False)
    resigned_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["userid"]

    def __str__(self) -> str:
        return self.name or self.userid

    @property
    def is_active(self) -> bool:
        return self.status == self.STATUS_ACTIVE


class EmployeeDepartment(models.Model):
    """An employee's membership of one department (WeCom's parallel ``department[]`` arrays)."""

    employee = models.ForeignKey(Employee, on_delete=models.CASCADE, related_name="memberships")
    department = models.ForeignKey(
        Department, on_delete=models.CASCADE, related_name="memberships", db_constraint=False
    )
    is_leader = models.BooleanField(default=False)
    order = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["employee", "department"], name="org_empdept_pair")]
        indexes = [models.Index(fields=["department", "employee"], name="org_empdept_dept")]

    def __str__(self) -> str:
        return f"{self.employee_id} in {self.department_id}"
