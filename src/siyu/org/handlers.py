"""change_contact callbacks (通讯录回调, part 3 §2.4): members and departments.

Each handler reads WeCom first and returns the write (``siyu.wecom.inbox`` two-phase contract).
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone

from siyu.org import services
from siyu.wecom.inbox import handles


@handles("change_contact", "create_user", "update_user", rereads=True)
def on_user_changed(event: dict):
    """The event carries only the changed fields, so the member is re-read; NewUserID (only when
    the userid changed) renames the member first, keeping their history."""
    old = event.get("UserID") or ""
    new = event.get("NewUserID") or ""
    userid = new or old
    if not userid:
        return None
    user = services.fetch_user(userid)
    follow = services.fetch_follow_userids() if user else None

    def apply():
        if new and old and new != old:
            services.rename_employee(old, new)
        if user:
            services.apply_users([user], follow_userids=follow)

    return apply


@handles("change_contact", "delete_user")
def on_user_deleted(event: dict):
    userid = event.get("UserID") or ""
    if not userid:
        return None
    created = event.get("CreateTime") or ""
    at = datetime.fromtimestamp(int(created), tz=UTC) if created.isdigit() else timezone.now()

    def apply():
        services.resign_employee(userid, at)

    return apply


@handles("change_contact", "create_party", "update_party", "delete_party")
def on_department_changed(event: dict):
    """Any department change re-reads the tree: a move changes the paths of a whole subtree, and
    the list is small."""
    departments = services.fetch_departments()

    def apply():
        services.apply_departments(departments, full=True)

    return apply
