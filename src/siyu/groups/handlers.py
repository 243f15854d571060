"""change_external_chat callbacks (part 3 §2.2), and linking new customers to their group stays.

Each handler reads WeCom first (no transaction) and returns the write.
"""

from __future__ import annotations

from django.utils import timezone

from siyu.customers.services import from_ts
from siyu.groups import services
from siyu.wecom.inbox import handles


@handles("change_external_chat", "create", "update", rereads=True)
def on_group_changed(event: dict):
    """create, or update (add_member, del_member, change_owner, change_name, change_notice): the
    group is re-read with groupchat/get and its member stays brought up to date. Members no
    longer listed leave at the event's time, with QuitScene for a del_member."""
    chat_id = event.get("ChatId") or ""
    if not chat_id:
        return None
    detail = services.fetch_group(chat_id)
    if detail is None:
        return None  # dismissed meanwhile: the dismiss event follows
    at = from_ts(event.get("CreateTime")) or timezone.now()
    quit_scene = None
    if event.get("UpdateDetail") == "del_member" and str(event.get("QuitScene") or "").isdigit():
        quit_scene = int(event["QuitScene"])

    def apply():
        services.write_groups([detail], source="callback", event_time=at, quit_scene=quit_scene)

    return apply


@handles("change_external_chat", "dismiss")
def on_group_dismissed(event: dict):
    chat_id = event.get("ChatId") or ""
    if not chat_id:
        return None
    at = from_ts(event.get("CreateTime")) or timezone.now()
    return lambda: services.dismiss_group(chat_id, at)


@handles("change_external_contact", "add_external_contact", "add_half_external_contact")
def on_customer_added(event: dict):
    """Someone who was already in a group became a customer: point their stays at the customer
    (runs after the customers app's handler, in the same transaction)."""
    external_userid = event.get("ExternalUserID") or ""
    if not external_userid:
        return None
    return lambda: services.link_customers([external_userid])
