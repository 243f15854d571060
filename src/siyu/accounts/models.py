"""Console users' roles. Authentication itself is Django's ``auth.User``."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Profile(models.Model):
    """A console user's role and, for store managers and shopping guides, what they are bound to.

    - admin (管理员): everything, including the settings pages.
    - operator (运营): all customers, groups and campaigns; no settings.
    - store_manager (店长): the customers of one WeCom department (their store) and its sub-departments.
    - guide (导购): the customers of one employee (their own WeCom userid).
    The data scope is read with ``siyu.accounts.selectors.data_scope(user)``.
    """

    class Role(models.TextChoices):
        ADMIN = "admin", _("管理员")
        OPERATOR = "operator", _("运营")
        STORE_MANAGER = "store_manager", _("店长")
        GUIDE = "guide", _("导购")

    # the older names, kept for callers
    ADMIN, OPERATOR, STORE_MANAGER, GUIDE = Role.ADMIN, Role.OPERATOR, Role.STORE_MANAGER, Role.GUIDE
    ROLES = Role.choices

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="siyu_profile")
    role = models.CharField(_("角色"), max_length=16, choices=Role.choices, default=Role.OPERATOR)
    # store_manager: the WeCom department id (部门 id) of the store
    department_id = models.BigIntegerField(_("部门ID"), null=True, blank=True)
    # guide: the WeCom userid of the employee this account belongs to
    wecom_userid = models.CharField(_("成员 UserID"), max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(role="store_manager") | models.Q(department_id__isnull=False),
                name="accounts_profile_store_manager_has_department",
            ),
            models.CheckConstraint(
                condition=~models.Q(role="guide") | ~models.Q(wecom_userid=""),
                name="accounts_profile_guide_has_userid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.role})"


class ApiToken(models.Model):
    """A token for REST API integrations. It acts as its owner: the owner's role and data scope.

    Only a SHA-256 digest of the token is stored; the token itself is shown once, when created.
    ``prefix`` (the token's first characters) identifies it in lists without revealing it.
    """

    name = models.CharField(_("名称"), max_length=64)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    prefix = models.CharField(max_length=16)
    secret_hash = models.CharField(max_length=64, unique=True)  # sha256 hex of the whole token
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(_("最近使用"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("吊销时间"), null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None
