"""Reads about console users: role, role label and data scope."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from siyu.accounts.models import ApiToken, Profile

AnyUser = User | AnonymousUser | None

ROLE_LABELS = dict(Profile.ROLES)


def profile_of(user: AnyUser) -> Profile | None:
    if user is None or not isinstance(user, User) or not user.is_authenticated:
        return None
    try:
        return user.siyu_profile
    except Profile.DoesNotExist:
        return None


def role_of(user: AnyUser) -> str | None:
    """The user's role; a Django superuser is an admin even without a profile; None = no access."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    profile = profile_of(user)
    if profile is not None:
        return profile.role
    return Profile.ADMIN if user.is_superuser else None


def role_label(role: str | None) -> str:
    return str(ROLE_LABELS.get(role, "")) if role else ""


@dataclass(frozen=True)
class DataScope:
    """Which customers a user may see.

    ``everything`` for admins and operators; otherwise the customers followed by members of
    ``department_id`` (store manager — the customer console includes its sub-departments) or by the
    employee ``wecom_userid`` (guide). ``nothing`` for users without a role.
    """

    everything: bool = False
    department_id: int | None = None
    wecom_userid: str = ""

    @property
    def nothing(self) -> bool:
        return not self.everything and self.department_id is None and not self.wecom_userid


def data_scope(user: AnyUser) -> DataScope:
    role = role_of(user)
    if role in (Profile.ADMIN, Profile.OPERATOR):
        return DataScope(everything=True)
    profile = profile_of(user)
    if role == Profile.STORE_MANAGER and profile is not None:
        return DataScope(department_id=profile.department_id)
    if role == Profile.GUIDE and profile is not None:
        return DataScope(wecom_userid=profile.wecom_userid)
    return DataScope()


def api_tokens() -> QuerySet[ApiToken]:
    """Every API token, newest first, with its owner (the settings page lists revoked ones too)."""
    return ApiToken.objects.select_related("user", "user__siyu_profile").order_by("revoked_at", "-id")
