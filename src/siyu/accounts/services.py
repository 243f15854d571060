"""Writes about console users: admins for the demo, role assignment."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from typing import Any

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.accounts.models import ApiToken, Profile
from siyu.accounts.selectors import active_admin_ids, role_of

logger = logging.getLogger("siyu.accounts")


def assign_role(user: User, role: str, *, department_id: int | None = None, wecom_userid: str = "") -> Profile:
    """Give ``user`` a role; store managers need a department id, guides an employee userid.

    Any role may be bound to a WeCom employee (``wecom_userid``): for a guide it is the data scope,
    for the others only who the user is."""
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
            "wecom_userid": wecom_userid,
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


# --- the users and roles page (设置 › 用户与角色) ----------------------------------------------
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@+-]{2,150}$")


# Console passwords set by an admin pass Django's validators (whatever AUTH_PASSWORD_VALIDATORS
# says: the settings leave it empty so that `siyu createadmin` and the demo take any password).
CONSOLE_PASSWORD_VALIDATORS: list[dict[str, Any]] = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]


def check_password(password: str, user: User | None = None) -> None:
    """Django's password validators (length, common, numeric, similar to the username)."""
    validators = password_validation.get_password_validators(CONSOLE_PASSWORD_VALIDATORS)
    password_validation.validate_password(password, user, validators)


def generate_password() -> str:
    """A strong random password (shown once to the admin who reset it)."""
    while True:
        candidate = secrets.token_urlsafe(12)  # 16 characters
        if any(c.isdigit() for c in candidate) and any(c.isalpha() for c in candidate):
            return candidate


def _is_last_admin(user: User) -> bool:
    admins = active_admin_ids()
    return user.id in admins and len(admins) == 1


@transaction.atomic
def create_user(
    username: str,
    password: str,
    *,
    role: str,
    department_id: int | None = None,
    wecom_userid: str = "",
    actor: User | None = None,
) -> User:
    """A new console user with a role and its scope. The password must pass the validators."""
    username = (username or "").strip()
    if not USERNAME_RE.match(username):
        raise ValidationError(_("用户名须为 2–150 个字母、数字或 _ . @ + - 字符"))
    if get_user_model().objects.filter(username__iexact=username).exists():
        raise ValidationError(_("用户名“%(name)s”已被使用") % {"name": username})
    user = get_user_model()(username=username, is_active=True)
    check_password(password, user)
    user.is_staff = user.is_superuser = role == Profile.ADMIN
    user.set_password(password)
    user.save()
    assign_role(user, role, department_id=department_id, wecom_userid=wecom_userid)
    logger.info("user %s created with role %s by %s", username, role, actor)
    return user


@transaction.atomic
def change_role(
    user: User, role: str, *, department_id: int | None = None, wecom_userid: str = "", actor: User | None = None
) -> Profile:
    """Give an existing user another role or scope. The last active admin stays an admin."""
    if role != Profile.ADMIN and _is_last_admin(user):
        raise ValidationError(_("“%(name)s”是最后一位管理员，不能改为其他角色") % {"name": user.get_username()})
    profile = assign_role(user, role, department_id=department_id, wecom_userid=wecom_userid)
    user.is_staff = user.is_superuser = role == Profile.ADMIN
    user.save(update_fields=["is_staff", "is_superuser"])
    logger.info("user %s given role %s by %s", user.get_username(), role, actor)
    return profile


@transaction.atomic
def set_active(user: User, active: bool, *, actor: User | None = None) -> None:
    """Disable (the user can no longer sign in, nor use their API tokens) or enable a user.
    Nobody disables themselves, and the last active admin stays enabled."""
    if not active:
        if actor is not None and actor.id == user.id:
            raise ValidationError(_("不能停用自己的账号"))
        if _is_last_admin(user):
            raise ValidationError(_("“%(name)s”是最后一位管理员，不能停用") % {"name": user.get_username()})
    user.is_active = active
    user.save(update_fields=["is_active"])
    Profile.objects.filter(user=user).update(updated_at=timezone.now())
    logger.info("user %s %s by %s", user.get_username(), "enabled" if active else "disabled", actor)


def set_password(user: User, password: str = "", *, actor: User | None = None) -> str:
    """Set ``user``'s password: ``password`` (validated), or a generated one when empty. Returns
    the password (for the admin to pass on; the page shows it once)."""
    password = password or generate_password()
    check_password(password, user)
    user.set_password(password)
    user.save(update_fields=["password"])
    Profile.objects.filter(user=user).update(updated_at=timezone.now())
    logger.info("password of user %s reset by %s", user.get_username(), actor)
    return password


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


@transaction.atomic
def employee_account(wecom_userid: str, *, name: str, role: str, department_id: int | None = None) -> User | None:
    """The console account of WeCom member ``wecom_userid``, for a sign-in through WeCom (the
    sidebar's OAuth, web login). An account already bound to the member keeps the role an admin
    gave it; otherwise one is made with ``role`` (the caller maps it from the member's
    departments) and no password (WeCom is how it signs in). None when that account was disabled.
    """
    profile = _bound_profile(wecom_userid)
    if profile is not None:
        return profile.user if profile.user.is_active else None
    username = f"wecom:{wecom_userid}"[:150]
    user, created = get_user_model().objects.get_or_create(username=username, defaults={"first_name": name[:150]})
    if not created and not user.is_active:
        return None
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    assign_role(user, role, department_id=department_id, wecom_userid=wecom_userid)
    logger.info("account %s made for WeCom member sign-in (%s)", username, role)
    return user


def employee_account_if_bound(wecom_userid: str) -> User | None:
    """The active account bound to WeCom member ``wecom_userid``, None if there is none."""
    profile = _bound_profile(wecom_userid)
    return profile.user if profile is not None and profile.user.is_active else None


def _bound_profile(wecom_userid: str) -> Profile | None:
    return Profile.objects.select_related("user").filter(wecom_userid=wecom_userid).order_by("user_id").first()
