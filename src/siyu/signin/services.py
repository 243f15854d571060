"""Signing a WeCom member in: the sidebar's OAuth and the console's web login (扫码登录).

A member's console account is the one bound to their userid; without one, an account is made
from what WeCom says about them (part 4 and issue 18): the leader of a department becomes that
department's store manager, a member with the customer-contact function a guide. An admin may
bind any account to a member beforehand (设置 › 用户): that account and its role are used. Others
are not let in: they have no customers to work on.
"""

from __future__ import annotations

import logging

from django.contrib.auth.models import AnonymousUser, User
from django.utils.translation import gettext as _

from siyu.accounts import services as account_services
from siyu.accounts.selectors import profile_of
from siyu.org import selectors as org_selectors
from siyu.wecom import gateway

logger = logging.getLogger("siyu.signin")
STORE_MANAGER, GUIDE = "store_manager", "guide"  # accounts' roles


class SignInRefused(Exception):
    """The code was refused by WeCom, or the member may not use Siyu; the text says what to do."""


def role_for_member(userid: str) -> tuple[str, int | None] | None:
    """The role a member's new account gets: (store_manager, department) for a department leader,
    (guide, None) for a member with the customer-contact function, None for anyone else."""
    employee = org_selectors.employee_by_userid(userid)
    if employee is None or employee.status != employee.Status.ACTIVE:
        return None
    led = org_selectors.led_department_id(employee)
    if led is not None:
        return STORE_MANAGER, led
    if employee.contact_enabled:
        return GUIDE, None
    return None


def sign_in_member(code: str) -> User:
    """The account of the member WeCom hands ``code`` for; ``SignInRefused`` otherwise."""
    try:
        userid = gateway.identity.member_of_code(code)
    except gateway.WeComAPIError as e:
        logger.warning("WeCom sign-in refused: %s", gateway.redact(e))
        raise SignInRefused(
            _("企业微信未能确认你的身份（授权码无效或已过期）。请关闭侧边栏后重新打开。")
            if e.errcode == 40029
            else _("企业微信未能确认你的身份。请联系管理员检查应用的可信域名与 Secret 设置。")
        ) from e
    role = role_for_member(userid)
    if role is None:
        user = account_services.employee_account_if_bound(userid)
    else:
        employee = org_selectors.employee_by_userid(userid)
        name = employee.name if employee else userid
        user = account_services.employee_account(userid, name=name, role=role[0], department_id=role[1])
    if user is None:
        raise SignInRefused(_("你的账号未开通客户联系功能，或已被停用。请联系管理员。"))
    return user


def member_of(user: User | AnonymousUser) -> str:
    """The WeCom userid an account signed in through WeCom belongs to."""
    profile = profile_of(user)
    return profile.wecom_userid if profile is not None else ""


def member_label(user: User | AnonymousUser) -> str:
    """Who did it, for timelines: the account's name and member."""
    name = user.get_full_name() if isinstance(user, User) else ""
    return f"{name or user.username} (sidebar)"
