"""Customer groups (客户群) and their members, as ``groupchat/get`` reports them.

A member row is one stay in a group: joining creates it, leaving sets ``left_at``; a later rejoin
is a new row. So the rows are the join/leave history and the current members are the rows with
``left_at`` null (at most one per person, enforced by a partial unique constraint).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class GroupChat(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("正常")
        DISMISSED = "dismissed", _("已解散")

    ACTIVE, DISMISSED = Status.ACTIVE, Status.DISMISSED  # the older names, kept for callers
    STATUS = Status.choices
    OWNER_STATUS = [(0, _("跟进人正常")), (1, _("跟进人离职")), (2, _("离职继承中")), (3, _("离职继承完成"))]

    chat_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(_("群名"), max_length=128, blank=True, default="")
    owner = models.ForeignKey(
        "org.Employee", null=True, blank=True, on_delete=models.SET_NULL, related_name="owned_groups"
    )
    notice = models.TextField(_("群公告"), blank=True, default="")
    created_at = models.DateTimeField(_("创建时间"), null=True, blank=True)  # create_time
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    # groupchat/list's status: 0 owner normal, 1 owner resigned, 2 transfer in progress, 3 done.
    owner_status = models.IntegerField(choices=OWNER_STATUS, default=0)
    dismissed_at = models.DateTimeField(null=True, blank=True)
    member_count = models.IntegerField(default=0)
    customer_count = models.IntegerField(default=0)
    member_version = models.CharField(max_length=64, blank=True, default="")
    synced_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "-created_at"], name="grp_chat_status"),
            models.Index(fields=["owner", "status"], name="grp_chat_owner"),
        ]

    def __str__(self) -> str:
        return self.name or self.chat_id


class GroupMember(models.Model):
    EMPLOYEE, CUSTOMER = 1, 2
    TYPE = [(EMPLOYEE, _("企业成员")), (CUSTOMER, _("外部联系人"))]
    JOIN_SCENE = [(1, _("直接邀请入群")), (2, _("通过邀请链接入群")), (3, _("扫描群二维码入群"))]

    group = models.ForeignKey(GroupChat, on_delete=models.CASCADE, related_name="members")
    userid = models.CharField(max_length=64)  # employee userid or external_userid
    type = models.IntegerField(choices=TYPE, default=CUSTOMER)
    customer = models.ForeignKey(
        "customers.Customer", null=True, blank=True, on_delete=models.SET_NULL, related_name="group_stays"
    )
    employee = models.ForeignKey(
        "org.Employee", null=True, blank=True, on_delete=models.SET_NULL, related_name="group_stays"
    )
    unionid = models.CharField(max_length=64, blank=True, default="")
    join_time = models.DateTimeField(null=True, blank=True)
    join_scene = models.IntegerField(choices=JOIN_SCENE, default=1)
    invitor_userid = models.CharField(max_length=64, blank=True, default="")
    group_nickname = models.CharField(max_length=64, blank=True, default="")
    name = models.CharField(max_length=128, blank=True, default="")
    state = models.CharField(max_length=64, blank=True, default="")
    is_admin = models.BooleanField(default=False)
    left_at = models.DateTimeField(null=True, blank=True)
    quit_scene = models.IntegerField(null=True, blank=True)  # 0 left by self, 1 removed (callback)
    # not columns: the member page's names, set by selectors.group_members
    display_name: str
    invitor_name: str

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["group", "userid"], condition=Q(left_at__isnull=True), name="grp_member_current"
            )
        ]
        indexes = [
            models.Index(fields=["group", "left_at"], name="grp_member_group"),
            models.Index(fields=["customer", "left_at"], name="grp_member_cust"),
            models.Index(fields=["userid"], name="grp_member_userid"),
        ]

    def __str__(self) -> str:
        return f"{self.userid} in group {self.group_id}"


class GroupTag(models.Model):
    """A tag on customer groups (群标签), kept by Siyu.

    WeCom's server API has no customer-group tags: the admin console's 客户群标签 cannot be read or
    written through it (the groupchat endpoints carry none; peers such as 微伴 keep their own group
    tags the same way). Operators tag groups here to choose them as mass-message audiences."""

    name = models.CharField(_("标签名"), max_length=32, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class GroupTagging(models.Model):
    group = models.ForeignKey(GroupChat, on_delete=models.CASCADE, related_name="taggings")
    tag = models.ForeignKey(GroupTag, on_delete=models.CASCADE, related_name="taggings")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["group", "tag"], name="groups_tagging_once")]
        indexes = [models.Index(fields=["tag", "group"], name="groups_tagging_tag")]

    def __str__(self) -> str:
        return f"tag {self.tag_id} on group {self.group_id}"
