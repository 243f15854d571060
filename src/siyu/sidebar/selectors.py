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
from siyu.guidetasks import selectors as task_selectors
from siyu.insights import selectors as insight_selectors
from siyu.materials import selectors as material_selectors
from siyu.materials import services as material_services
from siyu.org import selectors as org_selectors
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
        "tasks": task_selectors.open_for_customer(viewer.userid, cid),
        "followups": task_selectors.followups_of(cid, viewer.scope),
        "outcomes": task_selectors.outcome_choices(),
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


LIBRARY_SHOWN = 30


def library(viewer: Viewer, values: dict[str, str], q: str = "") -> dict[str, Any]:
    """Scripts and materials the member may send (their departments' and everyone's), most used
    first, matching ``q``; each script with its text as it would be sent in the chat whose
    variables are ``values`` (``preview``)."""
    lineage = org_selectors.department_lineage(viewer.userid)
    scripts = material_selectors.visible(material_selectors.scripts(q, active_only=True)[:500], lineage)
    materials = material_selectors.visible(material_selectors.materials(q, active_only=True)[:500], lineage)
    scripts = scripts[:LIBRARY_SHOWN]
    for s in scripts:
        s.preview = material_services.fill(s.content, values)
    return {"scripts": scripts, "materials": materials[:LIBRARY_SHOWN], "q": q}


def chat_in_scope(viewer: Viewer, chat_type: str, chat_key: str) -> bool:
    """The chat is one the viewer may work in: their customer, or a group in their scope."""
    if chat_type == "single":
        cid = customer_id(chat_key)
        if cid is None:
            return False
        try:
            customer_selectors.customer_in_scope(viewer.scope, cid)
        except (Http404, PermissionDenied):
            return False
        return True
    if chat_type == "group":
        pk = group_selectors.chat_pk(chat_key)
        return pk is not None and group_selectors.group_detail(viewer.scope, pk) is not None
    return False


def _own_of(viewer: Viewer, cid: int) -> Any:
    rels = customer_selectors.relations_for_tagging(viewer.scope, [cid])
    return next((r for r in rels if r.employee.userid == viewer.userid), None)


def own_relation(viewer: Viewer, external_userid: str) -> Any:
    """The viewer's own active relation with the customer (a FollowRelation), None without one."""
    cid = customer_id(external_userid)
    return _own_of(viewer, cid) if cid is not None else None


def _values(viewer: Viewer, nickname: str) -> dict[str, str]:
    employee = org_selectors.employee_by_userid(viewer.userid)
    store = ""
    if employee is not None and employee.main_department_id:
        store = org_selectors.department_names([employee.main_department_id]).get(employee.main_department_id, "")
    return {"nickname": nickname, "employee": employee.name if employee else "", "store": store}


def _nickname(own: Any, name: str) -> str:
    """The customer as the member calls them: their remark, else the nickname."""
    return (own.remark if own and own.remark else "") or name


def variables(viewer: Viewer, chat_type: str, chat_key: str) -> dict[str, str]:
    """Values of a script's variables in this chat: the customer as the member calls them, the
    member's name and store (their main department)."""
    nickname = ""
    if chat_type == "single":
        cid = customer_id(chat_key)
        if cid is not None:
            nickname = _nickname(_own_of(viewer, cid), customer_selectors.customer_names([cid]).get(cid, ""))
    return _values(viewer, nickname)


def card_variables(viewer: Viewer, card: dict[str, Any]) -> dict[str, str]:
    """``variables`` of a customer's chat from their panel (``customer_card``), without reading the
    customer and the relations again."""
    own = card["own"] if card["own"] is not None and card["own"].status == "active" else None
    return _values(viewer, _nickname(own, card["customer"].name))


def workbench(viewer: Viewer) -> dict[str, Any]:
    """The guide's own open tasks (the H5 workbench)."""
    return {"tasks": task_selectors.open_for_guide(viewer.userid), "outcomes": task_selectors.outcome_choices()}
