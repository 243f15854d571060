"""Callback handlers of the acquisition app.

The add handler is the welcome's fast path: it needs only the event's fields (UserID,
ExternalUserID, State, WelcomeCode) and our channel row, so the welcome is sent before anything
else is read. It is placed first among the add handlers (a welcome_code lives 20 s; the
customers app's re-read can wait). The add is recorded in the inbox row's transaction; its tags
and remark go to WeCom right after, off the inbox's path (services.schedule_decoration).
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from siyu.channels import services
from siyu.channels.groupcodes import selectors as groupcodes_selectors
from siyu.channels.groupcodes import services as groupcodes_services
from siyu.channels.models import GROUP_STATE_PREFIX
from siyu.customers.services import from_ts
from siyu.wecom import inbox
from siyu.wecom.inbox import handles

ADD_TYPES = ("add_external_contact", "add_half_external_contact")


def _at(event: dict):
    return from_ts(event.get("CreateTime")) or timezone.now()


@inbox.urgent("change_external_contact", *ADD_TYPES)
def welcome_now(events: list[dict]) -> None:
    """The worker's urgent lane: the welcomes of a batch of adds, while their codes are valid.
    ``on_add`` below runs later for each and finds them sent."""
    services.send_welcomes(events)


@handles("change_external_contact", *ADD_TYPES)
def on_add(event: dict):
    userid = event.get("UserID") or ""
    external_userid = event.get("ExternalUserID") or ""
    if not (userid and external_userid):
        return None
    code = services.code_for_state(event.get("State") or "")
    try:
        event_at = float(event.get("CreateTime") or 0)
    except (TypeError, ValueError):
        event_at = 0.0
    services.send_welcome(event.get("WelcomeCode") or "", userid, external_userid, code, event_at=event_at)
    if code is None:
        return None
    if services.open_add(userid, external_userid) is not None:
        return None  # add_half → add_external of one add: recorded once
    at = _at(event)
    backup = userid in code.backups and userid not in services.primaries(code)

    def apply():
        row = services.record_add(code, userid, external_userid, at, backup)
        if row is not None and code.daily_cap and not backup:
            # counted after commit (read phases of one batch run concurrently; the committed count
            # is the true one): the employee leaves the way as soon as the cap is reached
            day = row.day
            transaction.on_commit(lambda: services.check_cap(code.id, userid, day, at))

    return apply


def _welcome_first() -> None:
    """Run ``on_add`` before the other add handlers (the welcome code's 20 s validity)."""
    for ct in ADD_TYPES:
        lst = inbox.HANDLERS.get(("change_external_contact", ct), [])
        if on_add in lst:
            lst.remove(on_add)
            lst.insert(0, on_add)


@handles("change_external_contact", "del_follow_user")
def on_lost(event: dict):
    userid = event.get("UserID") or ""
    external_userid = event.get("ExternalUserID") or ""
    if not (userid and external_userid):
        return None
    at = _at(event)
    return lambda: services.mark_lost(userid, external_userid, at)


@handles("change_external_chat", "update")
def on_group_update(event: dict):
    """Joins through a group code: WeCom's add_member event carries no state, so the group is read
    (groupchat/get) and its members whose ``state`` is the code's are counted."""
    if event.get("UpdateDetail") != "add_member" or str(event.get("JoinScene") or "") != "3":
        return None
    chat_id = event.get("ChatId") or ""
    if not chat_id:
        return None
    return groupcodes_services.count_joins(chat_id)


@handles("change_external_chat", "create")
def on_group_created(event: dict):
    """A new group may be one WeCom created for a full join way (auto_create_room): re-read the
    group codes' join ways so their chat lists stay current."""
    if not groupcodes_selectors.any_live():
        return None
    return groupcodes_services.refresh_chat_lists()


__all__ = ["GROUP_STATE_PREFIX", "on_add", "on_group_created", "on_group_update", "on_lost", "welcome_now"]
