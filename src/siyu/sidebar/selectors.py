"""What the sidebar shows beside a chat, within the viewer's data scope.

A customer chat: the customer's unified profile (identities, member level and points, RFM class,
lifecycle stage, value band, recent orders with items, recent events, channel, groups) and the
viewer's own relation (remark, description, tags). A group chat: the group, its customers with their
lifecycle stage, its tags.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404

from siyu.accounts.selectors import DataScope
from siyu.commerce import selectors as commerce_selectors
from siyu.customers import selectors as customer_selectors
from siyu.customers.tags import selectors as tag_selectors
from siyu.groups import selectors as group_selectors
from siyu.insights import selectors as insight_selectors
from siyu.profiles import selectors as profile_selectors

RECENT_ORDERS = 5
RECENT_EVENTS = 8


class NotInScope(Exception):
    """The chat's customer or group is unknown to Siyu, or outside the viewer's data scope."""


@dataclass
class Viewer:
    scope: DataScope
    userid: str  # the WeCom member looking (their relation is the one they edit)


def customer_id(external_userid: str) -> int | None:
    return customer_selectors.customer_ids_by_external([external_userid]).get(external_userid)


def customer_card(viewer: Viewer, external_userid: str) -> dict[str, Any]:
    """Everything the customer panel shows; ``NotInScope`` when the viewer may not see them."""
    cid = customer_id(external_userid)
    if cid is None:
        raise NotInScope
    try:
        detail = customer_selectors.customer_detail(viewer.scope, cid, events_limit=0)
    except (Http404, PermissionDenied):
        raise NotInScope from None
    relations = detail["relations"]
    own = next((r for r in relations if r.employee.userid == viewer.userid), None)
    person_id = profile_selectors.person_ids_of_customers([cid]).get(cid)
    profile: dict[str, Any] | None = None
    orders: list[Any] = []
    order_total = 0
    events: list[dict[str, Any]] = []
    metrics = None
    person = profile_selectors.all_profiles().filter(pk=person_id).first() if person_id is not None else None
    if person is not None:
        cluster = profile_selectors.cluster_ids(person.id)
        profile = {
            "person": person,
            "keys": profile_selectors.keys_of(cluster),
            "phone": profile_selectors.mask_phone(person.phone) if person.phone else "",
        }
        page = commerce_selectors.orders_page(cluster_ids=cluster, limit=RECENT_ORDERS)
        orders = page.items
        order_total = commerce_selectors.order_count_of(cluster) if page.next_cursor else len(orders)
        events = commerce_selectors.events_of(cluster, limit=RECENT_EVENTS)
        metrics = insight_selectors.metrics_dict(insight_selectors.person_metrics(person.id))
    states = [r.state for r in relations if r.state]
    channels = customer_selectors.channel_names(states)
    avatar = customer_selectors.avatars([cid]).get(cid, "")
    return {
        "customer": detail["customer"],
        "avatar": profile_selectors.https_url(avatar),
        "own": own,
        "others": [r for r in relations if r is not own],
        "own_tag_ids": {t.id for t in own.tag_list} if own else set(),
        "channel": channels.get(own.state, "") if own and own.state else "",
        "groups": detail["current_groups"],
        "profile": profile,
        "metrics": metrics,
        "orders": orders,
        "order_total": order_total,
        "events": events,
    }


def tag_library() -> list[dict[str, Any]]:
    """The corp's tag groups with their tags, for the tag editor."""
    return tag_selectors.tag_groups_for_picking()


def group_card(viewer: Viewer, chat_id: str) -> dict[str, Any]:
    """The group panel; ``NotInScope`` when unknown or outside the viewer's scope."""
    pk = group_selectors.chat_pk(chat_id)
    if pk is None:
        raise NotInScope
    group = group_selectors.group_detail(viewer.scope, pk)
    if group is None:
        raise NotInScope
    members = group_selectors.current_customer_members(group)
    persons = profile_selectors.person_ids_of_customers([m.customer_id for m in members if m.customer_id])
    stages = insight_selectors.stage_labels(set(persons.values()))
    rows = [{"member": m, "stage": stages.get(persons.get(m.customer_id or 0, 0), "")} for m in members]
    return {"group": group, "members": rows, "tags": group_selectors.tag_names_of(group)}
