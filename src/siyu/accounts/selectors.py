"""Reads about console users: role, role label and data scope."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from django.contrib.auth.models import AnonymousUser, User
from django.db import models
from django.db.models import QuerySet
from django.utils.translation import gettext as _

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


# --- the users and roles page (设置 › 用户与角色) ----------------------------------------------
# Names of departments and employees live in ``siyu.org``, above accounts: org registers its reads
# here from its ready() (upward reads by registration), so this page shows names, never ids.
@dataclass(frozen=True)
class OrgReads:
    """What the users page needs from the org: every department in tree order
    (``[(id, name, depth)]``), department names by id, employee names by userid, and the
    employees whose name or account is exactly a text (``[(userid, name, department name)]``)."""

    departments: Callable[[], list[tuple[int, str, int]]]
    department_names: Callable[[Iterable[int]], dict[int, str]]
    employee_names: Callable[[Iterable[str]], dict[str, str]]
    find_employees: Callable[[str], list[tuple[str, str, str]]]


def _no_departments() -> list[tuple[int, str, int]]:
    return []


def _no_names(keys: Iterable[Any]) -> dict[Any, str]:
    return {}


def _no_employees(text: str) -> list[tuple[str, str, str]]:
    return []


_org = OrgReads(_no_departments, _no_names, _no_names, _no_employees)


def use_org_reads(reads: OrgReads) -> None:
    global _org  # one registration, from org's ready()
    _org = reads


def org_reads() -> OrgReads:
    return _org


class UserRow(TypedDict):
    user: User
    role: str | None
    role_label: str
    scope_label: str
    bound_employee: str
    is_active: bool
    last_login: datetime | None
    updated_at: datetime | None


def _scope_label(profile: Profile | None, role: str | None, depts: dict[int, str], emps: dict[str, str]) -> str:
    if role in (Profile.ADMIN, Profile.OPERATOR):
        return str(_("全部数据"))
    if role == Profile.STORE_MANAGER and profile is not None and profile.department_id is not None:
        return depts.get(profile.department_id) or str(_("未知部门"))
    if role == Profile.GUIDE and profile is not None:
        return emps.get(profile.wecom_userid) or str(_("未知成员"))
    return str(_("无"))


def user_rows(q: str = "", *, user_id: int | None = None) -> list[UserRow]:
    """Every console user with role, data scope (store / employee by name), status and last sign-in,
    by username. ``q`` narrows by username (contains), ``user_id`` to one user."""
    qs = User.objects.select_related("siyu_profile").order_by("username")
    if q:
        qs = qs.filter(username__icontains=q)
    if user_id is not None:
        qs = qs.filter(id=user_id)
    users = list(qs)
    profiles = {u.id: profile_of(u) for u in users}
    depts = _org.department_names({p.department_id for p in profiles.values() if p and p.department_id is not None})
    emps = _org.employee_names({p.wecom_userid for p in profiles.values() if p and p.wecom_userid})
    rows: list[UserRow] = []
    for u in users:
        profile = profiles[u.id]
        # the role a profile gives, even for a disabled user (role_of says None for those)
        role = profile.role if profile is not None else (Profile.ADMIN if u.is_superuser else None)
        rows.append(
            {
                "user": u,
                "role": role,
                "role_label": role_label(role),
                "scope_label": _scope_label(profile, role, depts, emps),
                "bound_employee": emps.get(profile.wecom_userid, profile.wecom_userid)
                if profile and profile.wecom_userid
                else "",
                "is_active": u.is_active,
                "last_login": u.last_login,
                "updated_at": profile.updated_at if profile is not None else None,
            }
        )
    return rows


def user_by_id(user_id: int) -> User | None:
    return User.objects.select_related("siyu_profile").filter(id=user_id).first()


def active_admin_ids() -> set[int]:
    """Active users who are admins (a profile with the admin role, or a superuser without a profile)."""
    qs = User.objects.filter(is_active=True).filter(
        models.Q(siyu_profile__role=Profile.ADMIN) | models.Q(siyu_profile__isnull=True, is_superuser=True)
    )
    return set(qs.values_list("id", flat=True))
