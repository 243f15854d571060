"""Customer groups and their members: keeping them in step with WeCom.

``fetch_*`` functions call WeCom and never write; the others write and never call WeCom.
Member rows are stays: a member who is no longer listed gets ``left_at`` (the join/leave
history), a returning member a new row. Customers' joins and leaves go on their timeline.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from siyu.core import bulk
from siyu.customers import selectors as customer_selectors
from siyu.customers import services as customer_services
from siyu.customers.services import EVENT_GROUP_JOINED, EVENT_GROUP_LEFT, JSON, from_ts
from siyu.groups.models import GroupChat, GroupMember, GroupTag, GroupTagging
from siyu.org import selectors as org_selectors
from siyu.org import services as org_services
from siyu.wecom import gateway

# groupchat/get errcodes for a chat that is not (any more) a customer group: 40050 chatid does
# not exist, 90501 not a customer group (part 1 §6.2: which one WeCom uses is unverified).
GROUP_GONE = {40050, 90501}
# groupchat/list without owner_filter when more than 1000 people are visible (doc 92120).
TOO_MANY_VISIBLE = 81017

MEMBER_COLUMNS = [
    "userid",
    "type",
    "customer_id",
    "employee_id",
    "unionid",
    "join_time",
    "join_scene",
    "invitor_userid",
    "group_nickname",
    "name",
    "state",
    "is_admin",
]
MEMBER_FIELDS = [
    "type",
    "customer",
    "employee",
    "unionid",
    "join_time",
    "join_scene",
    "invitor_userid",
    "group_nickname",
    "name",
    "state",
    "is_admin",
]


# --- reading WeCom ------------------------------------------------------------------------------
def fetch_group_ids(
    owner_userids: list[str] | None = None, client: gateway.WeComClient | None = None, limit: int = 1000
) -> list[tuple[str, int]]:
    """(chat_id, status) of every customer group (groupchat/list, cursor paging). WeCom refuses
    the unfiltered list when more than 1000 people are visible (81017); then it is listed per
    100 owners."""
    client = client or gateway.contact()

    def pages(owners: list[str] | None) -> Iterator[tuple[str, int]]:
        cursor = ""
        while True:
            res = client.external_contact_group_chat.list_page(
                status_filter=0, owner_userids=owners, cursor=cursor, limit=limit
            )
            yield from ((g["chat_id"], int(g.get("status") or 0)) for g in res.get("group_chat_list") or [])
            cursor = res.get("next_cursor") or ""
            if not cursor:
                return

    if owner_userids is None:
        try:
            return list(dict.fromkeys(pages(None)))
        except gateway.WeComAPIError as e:
            if e.errcode != TOO_MANY_VISIBLE:
                raise
            owner_userids = list(org_selectors.active_employees().values_list("userid", flat=True))
    found: dict[str, int] = {}
    for i in range(0, len(owner_userids), 100):
        for chat_id, status in pages(owner_userids[i : i + 100]):
            found[chat_id] = status
    return list(found.items())


def fetch_group(chat_id: str, client: gateway.WeComClient | None = None) -> JSON | None:
    """groupchat/get (with member names), or None when the chat is no longer a customer group."""
    client = client or gateway.contact()
    try:
        chat: JSON = client.external_contact_group_chat.get_detail(chat_id, need_name=1)["group_chat"]
        return chat
    except gateway.WeComAPIError as e:
        if e.errcode in GROUP_GONE:
            return None
        raise


# --- writing ------------------------------------------------------------------------------------
def _stay_event(customer_id: int, kind: str, chat: GroupChat, at: datetime, source: str, **detail: Any) -> JSON:
    return {
        "customer_id": customer_id,
        "kind": kind,
        "employee_id": chat.owner_id,
        "at": at,
        "detail": {"chat_id": chat.chat_id, "group": chat.name, **detail},
        "source": source,
    }


def write_groups(  # noqa: C901 - one bulk pass over groups and member stays, in write order
    details: list[JSON],
    *,
    source: str = "sync",
    owner_status: dict[str, int] | None = None,
    event_time: datetime | None = None,
    quit_scene: int | None = None,
    employees: dict[str, int] | None = None,
) -> JSON:
    """Upsert groups from groupchat/get answers and bring their member stays up to date.

    Members not listed any more leave at ``event_time`` (the callback's time; now for a sync) with
    ``quit_scene`` when the callback gave one. ``owner_status`` is groupchat/list's status per chat.
    Call inside a transaction.
    """
    stats = {"groups": 0, "members": 0, "joined": 0, "left": 0}
    if not details:
        return stats
    now = timezone.now()
    at = event_time or now
    emp_userids = {d.get("owner", "") for d in details}
    cust_ext: set[str] = set()
    for d in details:
        for m in d.get("member_list") or []:
            (emp_userids if int(m.get("type") or 2) == GroupMember.EMPLOYEE else cust_ext).add(m["userid"])
    emp = org_services.ensure_employees(emp_userids, employees)
    customers = customer_selectors.customer_ids_by_external(cust_ext)

    chats = []
    for d in details:
        members = d.get("member_list") or []
        chats.append(
            GroupChat(
                chat_id=d["chat_id"],
                name=(d.get("name") or "")[:128],
                owner_id=emp.get(d.get("owner", "")),
                notice=d.get("notice") or "",
                created_at=from_ts(d.get("create_time")),
                status=GroupChat.ACTIVE,
                dismissed_at=None,
                owner_status=(owner_status or {}).get(d["chat_id"], 0),
                member_count=len(members),
                customer_count=sum(1 for m in members if int(m.get("type") or 2) == GroupMember.CUSTOMER),
                member_version=(d.get("member_version") or "")[:64],
                synced_at=now,
                updated_at=now,
            )
        )
    fields = [
        "name",
        "owner",
        "notice",
        "created_at",
        "status",
        "dismissed_at",
        "member_count",
        "customer_count",
        "member_version",
        "synced_at",
        "updated_at",
    ]
    if owner_status is not None:
        fields.append("owner_status")
    # sets each chat's pk (RETURNING, on SQLite ≥ 3.35 and PostgreSQL)
    GroupChat.objects.bulk_create(chats, update_conflicts=True, unique_fields=["chat_id"], update_fields=fields)

    current: dict[int, dict[str, JSON]] = {}
    for m in GroupMember.objects.filter(group_id__in=[c.pk for c in chats], left_at__isnull=True).values(
        "id", "group_id", *MEMBER_COLUMNS
    ):
        current.setdefault(m["group_id"], {})[m["userid"]] = m
    new_rows, changed, left, events = [], [], [], []
    for chat, d in zip(chats, details, strict=True):  # one chat per detail, built above
        admins = {a.get("userid") for a in d.get("admin_list") or []}
        here = current.get(chat.pk, {})
        listed = set()
        for m in d.get("member_list") or []:
            uid = m["userid"]
            listed.add(uid)
            mtype = int(m.get("type") or GroupMember.CUSTOMER)
            row = {
                "userid": uid,
                "type": mtype,
                "customer_id": customers.get(uid) if mtype == GroupMember.CUSTOMER else None,
                "employee_id": emp.get(uid) if mtype == GroupMember.EMPLOYEE else None,
                "unionid": (m.get("unionid") or "")[:64],
                "join_time": from_ts(m.get("join_time")),
                "join_scene": int(m.get("join_scene") or 1),
                "invitor_userid": ((m.get("invitor") or {}).get("userid") or "")[:64],
                "group_nickname": (m.get("group_nickname") or "")[:64],
                "name": (m.get("name") or "")[:128],
                "state": (m.get("state") or "")[:64],
                "is_admin": uid in admins,
            }
            old = here.get(uid)
            if old is None:
                new_rows.append({"group_id": chat.pk, **row, "left_at": None, "quit_scene": None})
                if row["customer_id"]:
                    events.append(
                        _stay_event(
                            row["customer_id"],
                            EVENT_GROUP_JOINED,
                            chat,
                            row["join_time"] or at,
                            source,
                            join_scene=row["join_scene"],
                        )
                    )
            elif any(old[k] != v for k, v in row.items()):
                changed.append(GroupMember(id=old["id"], group_id=chat.pk, **row))
        for uid, old in here.items():
            if uid not in listed:
                left.append(GroupMember(id=old["id"], left_at=at, quit_scene=quit_scene))
                if old["customer_id"]:
                    detail = {"quit_scene": quit_scene} if quit_scene is not None else {}
                    events.append(_stay_event(old["customer_id"], EVENT_GROUP_LEFT, chat, at, source, **detail))
    if left:
        GroupMember.objects.bulk_update(left, ["left_at", "quit_scene"])
    if changed:
        GroupMember.objects.bulk_update(changed, MEMBER_FIELDS)
    bulk.insert(GroupMember, new_rows)
    customer_services.record_events(events)
    stats.update(
        groups=len(chats),
        members=sum(len(d.get("member_list") or []) for d in details),
        joined=len(new_rows),
        left=len(left),
    )
    return stats


def dismiss_group(chat_id: str, at: datetime | None = None, source: str = "callback") -> bool:
    """change_external_chat dismiss: the group is gone; its members' stays end."""
    at = at or timezone.now()
    chat = GroupChat.objects.filter(chat_id=chat_id).exclude(status=GroupChat.DISMISSED).first()
    if chat is None:
        return False
    with transaction.atomic():
        stays = list(GroupMember.objects.filter(group=chat, left_at__isnull=True))
        GroupMember.objects.filter(id__in=[s.id for s in stays]).update(left_at=at)
        GroupChat.objects.filter(id=chat.id).update(
            status=GroupChat.DISMISSED, dismissed_at=at, member_count=0, customer_count=0, updated_at=timezone.now()
        )
        customer_services.record_events(
            _stay_event(s.customer_id, EVENT_GROUP_LEFT, chat, at, source, dismissed=True)
            for s in stays
            if s.customer_id
        )
    return True


def link_customers(external_userids: Iterable[str]) -> int:
    """Point group stays of new customers at their customer row (they may have joined a group
    before an employee added them, or the group's callback was processed before the add's), and
    put those stays on the customer's timeline at the times they happened."""
    n = 0
    events = []
    for ext, customer_id in customer_selectors.customer_ids_by_external(external_userids).items():
        stays = list(
            GroupMember.objects.filter(userid=ext, type=GroupMember.CUSTOMER, customer__isnull=True).select_related(
                "group"
            )
        )
        if not stays:
            continue
        n += GroupMember.objects.filter(id__in=[s.id for s in stays], customer__isnull=True).update(
            customer_id=customer_id
        )
        for s in stays:
            joined = s.join_time or s.group.created_at or timezone.now()
            events.append(
                _stay_event(customer_id, EVENT_GROUP_JOINED, s.group, joined, "link", join_scene=s.join_scene)
            )
            if s.left_at:
                detail = {"quit_scene": s.quit_scene} if s.quit_scene is not None else {}
                events.append(_stay_event(customer_id, EVENT_GROUP_LEFT, s.group, s.left_at, "link", **detail))
    customer_services.record_events(events)
    return n


def reconcile_groups(listed_chat_ids: Iterable[str], listed_owner_ids: Iterable[int]) -> int:
    """After a complete full sync: active groups WeCom no longer lists, owned by a member whose
    groups WeCom does list, were dismissed without our hearing of it."""
    listed = set(listed_chat_ids)
    stale = [
        chat_id
        for chat_id in GroupChat.objects.filter(
            status=GroupChat.ACTIVE, owner_id__in=list(listed_owner_ids)
        ).values_list("chat_id", flat=True)
        if chat_id not in listed
    ]
    return sum(1 for chat_id in stale if dismiss_group(chat_id, source="sync"))


# --- group tags (Siyu's own: WeCom has no API for them, see GroupTag) ------------------------------
GROUP_TAG_MAX = 32


class GroupTagError(ValueError):
    pass


def create_group_tag(name: str) -> GroupTag:
    """The tag named ``name`` (created if new). Names are 1–32 characters, trimmed."""
    name = (name or "").strip()
    if not name or len(name) > GROUP_TAG_MAX:
        raise GroupTagError(_("群标签名须为 1–32 个字"))
    tag, _created = GroupTag.objects.get_or_create(name=name)
    return tag


def set_group_tags(group: GroupChat, tag_ids: Iterable[int], new_tag: str = "") -> list[int]:
    """Replace the group's tags with ``tag_ids`` (unknown ids ignored), plus ``new_tag`` created by
    name; returns the tag ids now on the group."""
    with transaction.atomic():
        wanted = set(GroupTag.objects.filter(id__in=list(tag_ids)).values_list("id", flat=True))
        if new_tag.strip():
            wanted.add(create_group_tag(new_tag).id)
        GroupTagging.objects.filter(group=group).exclude(tag_id__in=wanted).delete()
        have = set(GroupTagging.objects.filter(group=group).values_list("tag_id", flat=True))
        GroupTagging.objects.bulk_create([GroupTagging(group=group, tag_id=t) for t in sorted(wanted - have)])
    return sorted(wanted)


def set_owner(group_id: int, owner_id: int, *, inherited: bool = False) -> None:
    """A handover moved the group to ``owner_id`` (our copy follows at once; WeCom's change_owner
    callback confirms it later); ``inherited``: a departed owner's group (owner_status 3,
    离职继承完成)."""
    fields: JSON = {"owner_id": owner_id}
    if inherited:
        fields["owner_status"] = 3
    GroupChat.objects.filter(id=group_id).update(**fields)
