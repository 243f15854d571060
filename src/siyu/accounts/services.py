"""Writes about console users: admins for the demo, role assignment."""

from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.accounts.models import ApiToken, Profile
from siyu.accounts.selectors import role_of


def assign_role(user: User, role: str, *, department_id: int | None = None, wecom_userid: str = "") -> Profile:
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
) -> tuple[User, bool]:
    """Create ``username`` or bring it to this password and role (idempotent). Returns ``(user, created)``.

    Admins are also Django superusers (so the role survives a lost profile row); other roles are not.
    """
    if not username:
        raise ValidationError(_("用户名不能为空"))
    if not password:
        raise ValidationError(_("密码不能为空"))
    user, created = get_user_model().objects.get_or_create(username=username, defaults={"email": email})
    user.is_active = True
    user.is_staff = user.is_superuser = role == Profile.ADMIN
    if email:
        user.email = email
    user.set_password(password)
    user.save()
    assign_role(user, role, department_id=department_id, wecom_userid=wecom_userid)
    return user, created


def ensure_admin(username: str, password: str, email: str = "") -> tuple[User, bool]:
    """``siyu createadmin``: create the admin ``username`` or reset it to admin with this password."""
    return ensure_user(username, password, role=Profile.ADMIN, email=email)


# --- API tokens ---------------------------------------------------------------------------------
API_TOKEN_PREFIX = "siyu_"
# last_used_at is written at most this often per token (a write per API request would contend for
# SQLite's single writer).
API_TOKEN_TOUCH_S = 60


def hash_api_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_api_token(user: User, name: str, *, created_by: User | None = None) -> tuple[ApiToken, str]:
    """A new token acting as ``user``. Returns ``(ApiToken, token)``: the token is not stored (only
    its SHA-256), so this is the only time it can be shown."""
    name = (name or "").strip()
    if not name:
        raise ValidationError(_("令牌名称不能为空"))
    if len(name) > 64:
        raise ValidationError(_("令牌名称最多 64 个字符"))
    if role_of(user) is None:
        raise ValidationError(_("该用户没有角色，不能为其创建令牌"))
    token = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken.objects.create(
        name=name, user=user, prefix=token[:12], secret_hash=hash_api_token(token), created_by=created_by
    )
    return row, token


def revoke_api_token(token_id: int) -> bool:
    """Revoke a token (kept for the record). False if it does not exist or was already revoked."""
    return bool(ApiToken.objects.filter(id=token_id, revoked_at__isnull=True).update(revoked_at=timezone.now()))


def authenticate_api_token(token: str) -> User | None:
    """The active user a token acts as, or None (unknown, revoked, owner inactive or without a
    role). Records when the token was last used."""
    if not token or not token.startswith(API_TOKEN_PREFIX) or len(token) > 128:
        return None
    row = ApiToken.objects.select_related("user").filter(secret_hash=hash_api_token(token)).first()
    if row is None or row.revoked_at is not None or role_of(row.user) is None:
        return None
    now = timezone.now()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() >= API_TOKEN_TOUCH_S:
        ApiToken.objects.filter(id=row.id).update(last_used_at=now)
    return row.user
