"""Writes about console users: admins for the demo, role assignment."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from siyu.accounts.models import Profile


def assign_role(user, role: str, *, department_id: int | None = None, wecom_userid: str = "") -> Profile:
    """Give ``user`` a role; store managers need a department id, guides an employee userid."""
    if role not in dict(Profile.ROLES):
        raise ValidationError(_("未知角色：%(role)s") % {"role": role})
    if role == Profile.STORE_MANAGER and department_id is None:
        raise ValidationError(_("店长必须绑定部门ID"))
    if role == Profile.GUIDE and not wecom_userid:
        raise ValidationError(_("导购必须绑定成员 UserID"))
    profile, _created = Profile.objects.update_or_create(
        user=user,
        defaults={
            "role": role,
            "department_id": department_id if role == Profile.STORE_MANAGER else None,
            "wecom_userid": wecom_userid if role == Profile.GUIDE else "",
        },
    )
    return profile


@transaction.atomic
def ensure_user(
    username: str,
    password: str,
    *,
    role: str,
    department_id: int | None = None,
    wecom_userid: str = "",
    email: str = "",
) -> tuple[object, bool]:
    """Create ``username`` or bring it to this password and role (idempotent). Returns ``(user, created)``.

    Admins are also Django superusers (so the role survives a lost profile row); other roles are not.
    """
    if not username:
        raise ValidationError(_("用户名不能为空"))
    if not password:
        raise ValidationError(_("密码不能为空"))
    User = get_user_model()
    user, created = User.objects.get_or_create(username=username, defaults={"email": email})
    user.is_active = True
    user.is_staff = user.is_superuser = role == Profile.ADMIN
    if email:
        user.email = email
    user.set_password(password)
    user.save()
    assign_role(user, role, department_id=department_id, wecom_userid=wecom_userid)
    return user, created


def ensure_admin(username: str, password: str, email: str = "") -> tuple[object, bool]:
    """``siyu createadmin``: create the admin ``username`` or reset it to admin with this password."""
    return ensure_user(username, password, role=Profile.ADMIN, email=email)
