"""Profiles: one record per person, joining the identities the brand knows them by.

A person reaches the brand through WeCom (a customer's ``external_userid``, their WeChat
``unionid``), the membership system (member number, phone) and mini-programs (openids). Each
identity is a ``ProfileKey`` (kind, value), unique across profiles: one key names one person.

Merge rules (``services.resolve_keys``): keys of a row that name profiles already known join them
when the rules allow it: exact unionid, exact member number, exact (normalised) phone. Two
different unionids are never merged: such a row is attached to the profile its strongest key names
and an ``IdentityConflict`` is recorded for an operator. Merges (automatic or by hand) keep the
merged profile's row (``merged_into``) and are written to ``ProfileHistory``, so they can be undone.

Member data (level, points, birthday...) lives on the profile: one member per person.
Operator-defined fields (``CustomField``) keep their values in ``Profile.custom`` by field key.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Profile(models.Model):
    class Gender(models.IntegerChoices):
        UNKNOWN = 0, _("未知")
        MALE = 1, _("男")
        FEMALE = 2, _("女")

    name = models.CharField(_("姓名"), max_length=128, blank=True, default="")
    # the identities most read, repeated from the keys for display and segments (see Meta)
    unionid = models.CharField(max_length=64, blank=True, default="")
    phone = models.CharField(_("手机号"), max_length=20, blank=True, default="")
    member_no = models.CharField(_("会员号"), max_length=64, blank=True, default="")
    # member data (from the membership system)
    gender = models.IntegerField(_("性别"), choices=Gender.choices, default=0)
    birthday = models.DateField(_("生日"), null=True, blank=True)
    member_level = models.CharField(_("会员等级"), max_length=32, blank=True, default="")
    points = models.BigIntegerField(_("积分"), default=0)
    join_store = models.CharField(_("入会门店"), max_length=64, blank=True, default="")
    member_joined_at = models.DateTimeField(_("入会时间"), null=True, blank=True)
    # the source's own extra member attributes, as given (shown, not interpreted)
    attributes = models.JSONField(default=dict, blank=True)
    # operator-defined fields: {CustomField.key: value}; values are checked against the field's type
    custom = models.JSONField(default=dict, blank=True)
    # a profile merged into another keeps its row (for unmerge); it is no longer a person of its own
    # indexed by prof_merged: no second index of its own (each index costs every import)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged_profiles", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        # A plain index, not ``db_index``, for any text column (on PostgreSQL that adds a second
        # ``_like`` index for LIKE prefixes, which nothing queries). No index on unionid, phone,
        # member_no, member_level or join_store: lookups by an identity go through ProfileKey
        # (kind, value), the search too; segments count from their in-memory index; and each index
        # cost every profile an import creates (issue 17).
        indexes = [models.Index(fields=["merged_into"], name="prof_merged")]

    def __str__(self) -> str:
        return self.name or self.member_no or f"profile {self.pk}"


class ProfileKey(models.Model):
    class Kind(models.TextChoices):
        EXTERNAL_USERID = "external_userid", _("企业微信客户")
        UNIONID = "unionid", "UnionID"
        PHONE = "phone", _("手机号")
        MEMBER_NO = "member_no", _("会员号")
        OPENID = "openid", _("小程序 OpenID")

    # indexed by prof_key_profile (profile, kind), customer by prof_key_customer: no second index
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="keys", db_index=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    value = models.CharField(max_length=128)
    # for external_userid keys: the WeCom customer row (the customers app's Customer)
    customer = models.ForeignKey(
        "customers.Customer", null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    source = models.CharField(max_length=16, default="import")  # wecom | import | api | manual
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "value"], name="prof_key_unique")]
        indexes = [
            models.Index(fields=["profile", "kind"], name="prof_key_profile"),
            models.Index(fields=["customer"], name="prof_key_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


class ProfileHistory(models.Model):
    """What happened to a profile's identity and data: created, keys added, merged, unmerged,
    conflicts, field edits. ``detail`` says with what (keys, other profile, old/new values)."""

    class Kind(models.TextChoices):
        CREATED = "created", _("建档")
        KEY_ADDED = "key_added", _("新增身份")
        MERGED = "merged", _("合并")
        UNMERGED = "unmerged", _("拆分")
        CONFLICT = "conflict", _("身份冲突")
        FIELD_CHANGED = "field_changed", _("修改字段")

    # indexed by prof_hist (profile, -at, -id): no second index of its own
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="history", db_index=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    detail = models.JSONField(default=dict, blank=True)
    operator = models.CharField(max_length=150, blank=True, default="")  # "" = automatic
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["profile", "-at", "-id"], name="prof_hist")]

    def __str__(self) -> str:
        return f"{self.kind} of profile {self.profile_id}"


class IdentityConflict(models.Model):
    """Two profiles a row's keys would join but the rules forbid (e.g. two different unionids)."""

    class Status(models.TextChoices):
        OPEN = "open", _("待处理")
        MERGED = "merged", _("已合并")
        KEPT_APART = "kept_apart", _("保持独立")

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="conflicts")
    other = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=32)  # e.g. unionid_mismatch
    keys = models.JSONField(default=dict, blank=True)  # the row's keys that met both profiles
    source = models.CharField(max_length=64, blank=True, default="")  # e.g. "orders:SO123"
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    resolved_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["profile", "other", "reason"], name="prof_conflict_pair")]
        indexes = [models.Index(fields=["status", "-created_at"], name="prof_conflict_open")]

    def __str__(self) -> str:
        return f"{self.reason}: {self.profile_id} / {self.other_id}"


class CustomField(models.Model):
    class Type(models.TextChoices):
        TEXT = "text", _("文本")
        NUMBER = "number", _("数字")
        DATE = "date", _("日期")
        CHOICE = "choice", _("单选")
        MULTI = "multi", _("多选")

    key = models.SlugField(max_length=32, unique=True)  # the key in Profile.custom, imports and the API
    label = models.CharField(_("字段名"), max_length=32)
    type = models.CharField(_("类型"), max_length=8, choices=Type.choices)
    options = models.JSONField(default=list, blank=True)  # choice / multi: the allowed values
    order = models.IntegerField(default=0)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return self.label
