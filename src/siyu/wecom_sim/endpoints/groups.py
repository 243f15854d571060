"""Customer groups (客户群, docs 92120/92122) and group join ways (「加入群聊」, doc 92229).

Rules R19–R21 of part 1. Control actions simulate what happens in the WeCom client:
``/sim/group/create``, ``group/join``, ``group/leave``, ``group/dismiss``, ``group/rename``,
``group/notice``; each emits the ``change_external_chat`` event WeCom pushes (part 3 §2.2).

``member_version`` is an opaque hash of the sorted member list, so LastMemVer/CurMemVer in the
events let the app tell whether it missed a change (part 3 §2.2).
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.db import transaction

from siyu.wecom_sim import clock, rules, schemas
from siyu.wecom_sim.callbacks import emit
from siyu.wecom_sim.control import ControlError, action
from siyu.wecom_sim.endpoints.contact_ways import check_way_cap, qr_url
from siyu.wecom_sim.endpoints.customers import (
    decode_cursor,
    encode_cursor,
    int_param,
    left_userids,
    new_wechat_user,
    str_list,
)
from siyu.wecom_sim.framework import SimRequest, WeComError, check_len, endpoint, new_id
from siyu.wecom_sim.models import ExternalContact, GroupChat, GroupMember, JoinWay, User

# --- helpers -------------------------------------------------------------------------------------


def compute_version(chat_id: str) -> str:
    ids = sorted(GroupMember.objects.filter(chat_id=chat_id).values_list("userid", flat=True))
    return hashlib.md5(("\n".join(ids)).encode()).hexdigest()


def refresh_version(chat: GroupChat) -> tuple[str, str]:
    """Recompute the chat's member_version; returns (last, current)."""
    last = chat.member_version or ""
    cur = compute_version(chat.chat_id)
    chat.member_version = cur
    GroupChat.objects.filter(chat_id=chat.chat_id).update(member_version=cur)
    return last, cur


def member_count(chat_id: str) -> int:
    return GroupMember.objects.filter(chat_id=chat_id).count()


def live_chat(chat_id: Any) -> GroupChat | None:
    if not isinstance(chat_id, str) or not chat_id:
        return None
    return GroupChat.objects.filter(chat_id=chat_id, dismissed=False).first()


# --- groupchat/list and get ----------------------------------------------------------------------


@endpoint("externalcontact/groupchat/list", methods=("POST",))
def groupchat_list(req: SimRequest) -> dict:
    """groupchat/list (doc 92120, rule R19): status_filter 0–3, owner_filter.userid_list ≤ 100,
    limit 1–1000 required, cursor paging.

    Without owner_filter WeCom scans every owner in the app's visibility and answers 81017 when
    that is more than 1000 people. The emulated app sees every active employee, so 81017 comes only
    for corps with more than ``groupchat_list_visible_cap`` employees (the seeded worlds have far
    fewer). Groups of resigned owners are listed only when owner_filter names the owner
    (``groupchat_list_hides_resigned_owners``)."""
    r = rules.get()
    body = req.body
    status_filter = int_param(body.get("status_filter"), "status_filter", 0)
    if status_filter not in (0, 1, 2, 3):
        raise WeComError(40058, "invalid status_filter")
    owner_filter = body.get("owner_filter") or {}
    if not isinstance(owner_filter, dict):
        raise WeComError(40058, "invalid owner_filter")
    owners = str_list(owner_filter.get("userid_list"), "owner_filter.userid_list")
    if len(owners) > r.groupchat_list_max_owners:
        raise WeComError(40058, f"owner_filter.userid_list at most {r.groupchat_list_max_owners}")
    limit = body.get("limit")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise WeComError(40058, "limit is required, 1-1000")
    qs = GroupChat.objects.filter(dismissed=False)
    if status_filter:
        qs = qs.filter(status=status_filter)
    if owners:
        qs = qs.filter(owner__in=owners)
    else:
        cap = r.groupchat_list_visible_cap
        if cap and User.objects.exclude(status=User.STATUS_LEFT).count() > cap:
            raise WeComError(81017)
        if r.groupchat_list_hides_resigned_owners:
            left = left_userids()
            if left:
                qs = qs.exclude(owner__in=left)
    after = decode_cursor(body.get("cursor"))
    if after is not None:
        if not isinstance(after, str):
            raise WeComError(40058, "invalid cursor")
        qs = qs.filter(chat_id__gt=after)
    page = list(qs.order_by("chat_id").values_list("chat_id", "status")[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    out: dict[str, Any] = {"group_chat_list": [{"chat_id": c, "status": s} for c, s in page]}
    out["next_cursor"] = encode_cursor(page[-1][0]) if more else ""
    return out


@endpoint("externalcontact/groupchat/get", methods=("POST",))
def groupchat_get(req: SimRequest) -> dict:
    """groupchat/get (doc 92122, rule R20).

    Unknown and dismissed chats answer 40050 "chatid not found": a dismissed group no longer
    exists (part 3 §2.2: get fails after dismiss), and every chat the emulator knows is a customer
    group, so 90501 "not a customer group" has nothing to apply to (which code WeCom uses is
    unverified, part 1 §6.2)."""
    chat_id = req.body.get("chat_id")
    if not chat_id:
        raise WeComError(40058, "chat_id is required")
    chat = live_chat(chat_id)
    if chat is None:
        raise WeComError(40050)
    need_name = int_param(req.body.get("need_name"), "need_name", 0) == 1
    members = list(GroupMember.objects.filter(chat_id=chat.chat_id).order_by("join_time", "id"))
    names: dict[str, str] = {}
    unionids: dict[str, str] = {}
    cust_ids = [m.userid for m in members if m.type == GroupMember.CUSTOMER]
    for x in ExternalContact.objects.filter(external_userid__in=cust_ids).only(
        "external_userid", "name", "unionid", "type"
    ):
        names[x.external_userid] = x.name
        if x.type == 1 and x.unionid:
            unionids[x.external_userid] = x.unionid
    if need_name:
        emp_ids = [m.userid for m in members if m.type == GroupMember.EMPLOYEE]
        names.update(dict(User.objects.filter(userid__in=emp_ids).values_list("userid", "name")))
    member_list = []
    for m in members:
        d: dict[str, Any] = {"userid": m.userid, "type": m.type}
        if m.type == GroupMember.CUSTOMER and (m.unionid or unionids.get(m.userid)):
            d["unionid"] = m.unionid or unionids[m.userid]
        d["join_time"] = m.join_time
        d["join_scene"] = m.join_scene
        if m.invitor:
            d["invitor"] = {"userid": m.invitor}
        d["group_nickname"] = m.group_nickname
        if need_name:
            d["name"] = m.name or names.get(m.userid, "")
        if m.state:
            d["state"] = m.state
        member_list.append(d)
    version = chat.member_version or refresh_version(chat)[1]
    return {
        "group_chat": {
            "chat_id": chat.chat_id,
            "name": chat.name,
            "owner": chat.owner,
            "create_time": chat.create_time,
            "notice": chat.notice,
            "member_list": member_list,
            "admin_list": [{"userid": u} for u in chat.admin_list],
            "member_version": version,
        }
    }


# --- join ways -----------------------------------------------------------------------------------


def _join_way_config(body: dict) -> dict:
    """Validate a full join-way config (rule R21). Used by add and by update, which overwrites
    everything: fields left out fall back to their defaults."""
    r = rules.get()
    scene = body.get("scene")
    if isinstance(scene, bool) or scene not in (1, 2):
        raise WeComError(40058, "invalid scene")
    remark = body.get("remark") or ""
    if not isinstance(remark, str):
        raise WeComError(40058, "invalid remark")
    remark = remark[: r.join_way_remark_max_len]  # longer remarks are truncated, not refused
    auto = body.get("auto_create_room", 1)
    if isinstance(auto, bool):
        auto = int(auto)
    if auto not in (0, 1):
        raise WeComError(40058, "invalid auto_create_room")
    base_name = body.get("room_base_name") or ""
    if not isinstance(base_name, str):
        raise WeComError(40058, "invalid room_base_name")
    check_len(base_name, r.room_base_name_max_len, "room_base_name")
    base_id = int_param(body.get("room_base_id"), "room_base_id")
    if base_id is not None and base_id < 0:
        raise WeComError(40058, "invalid room_base_id")
    chats = str_list(body.get("chat_id_list"), "chat_id_list")
    if not chats:
        raise WeComError(40058, "chat_id_list is required")
    # Counted as sent: the doc (92229) caps chat_id_list at 5 and says nothing of repeats (unverified).
    if len(chats) > r.join_way_max_chats:
        raise WeComError(40058, f"chat_id_list at most {r.join_way_max_chats}")
    chats = list(dict.fromkeys(chats))
    live = set(GroupChat.objects.filter(chat_id__in=chats, dismissed=False).values_list("chat_id", flat=True))
    if any(c not in live for c in chats):
        raise WeComError(40050)  # unknown chat id in chat_id_list (errcode unverified)
    state = body.get("state") or ""
    if not isinstance(state, str):
        raise WeComError(40058, "invalid state")
    check_len(state, r.state_max_len, "state")
    cfg: dict[str, Any] = {
        "scene": scene,
        "remark": remark,
        "auto_create_room": auto,
        "room_base_name": base_name,
        "chat_id_list": chats,
        "state": state,
    }
    if base_id is not None:
        cfg["room_base_id"] = base_id
    return cfg


def _get_join_way(config_id: Any) -> JoinWay:
    # 41043/41044: the contact-way codes, reused for join ways (unverified, part 1 §7)
    if not config_id:
        raise WeComError(41043)
    way = JoinWay.objects.filter(config_id=config_id, deleted=False).first() if isinstance(config_id, str) else None
    if way is None:
        raise WeComError(41044)
    return way


@endpoint("externalcontact/groupchat/add_join_way", methods=("POST",))
def add_join_way(req: SimRequest) -> dict:
    """add_join_way: answers only config_id (the QR code comes from get_join_way)."""
    cfg = _join_way_config(req.body)
    with transaction.atomic():
        check_way_cap()
        way = JoinWay.objects.create(config_id=secrets.token_hex(16), config=cfg, created_at=req.now)
    return {"config_id": way.config_id}


@endpoint("externalcontact/groupchat/get_join_way", methods=("POST",))
def get_join_way(req: SimRequest) -> dict:
    way = _get_join_way(req.body.get("config_id"))
    cfg = way.config
    d: dict[str, Any] = {
        "config_id": way.config_id,
        "scene": cfg["scene"],
        "remark": cfg.get("remark", ""),
        "auto_create_room": cfg.get("auto_create_room", 1),
        "room_base_name": cfg.get("room_base_name", ""),
    }
    if "room_base_id" in cfg:
        d["room_base_id"] = cfg["room_base_id"]
    d["chat_id_list"] = cfg.get("chat_id_list", [])
    if cfg["scene"] == 2:
        d["qr_code"] = qr_url(req, way.config_id)
    d["state"] = cfg.get("state", "")
    return {"join_way": d}


@endpoint("externalcontact/groupchat/update_join_way", methods=("POST",))
def update_join_way(req: SimRequest) -> dict:
    """update_join_way overwrites the whole config ("使用覆盖的方式更新", rule R15)."""
    way = _get_join_way(req.body.get("config_id"))
    way.config = _join_way_config(req.body)
    way.save(update_fields=["config"])
    return {}


@endpoint("externalcontact/groupchat/del_join_way", methods=("POST",))
def del_join_way(req: SimRequest) -> dict:
    way = _get_join_way(req.body.get("config_id"))
    way.deleted = True
    way.save(update_fields=["deleted"])
    return {}


# --- control: the life of a group ------------------------------------------------------------------


def _chat_or_error(chat_id: Any) -> GroupChat:
    chat = live_chat(chat_id)
    if chat is None:
        raise ControlError(f"unknown or dismissed chat {chat_id}")
    return chat


def _member_identity(ident: str) -> tuple[int, str, str]:
    """(type, unionid, name) of a would-be member: an employee (type 1) or a customer (type 2)."""
    u = User.objects.filter(userid=ident).first()
    if u is not None:
        if u.status == User.STATUS_LEFT:
            raise ControlError(f"{ident} has left the corp")
        return GroupMember.EMPLOYEE, "", u.name
    x = ExternalContact.objects.filter(external_userid=ident).first()
    if x is None:
        raise ControlError(f"unknown member {ident}")
    return GroupMember.CUSTOMER, (x.unionid if x.type == 1 else ""), x.name


def _emit_members(chat: GroupChat, detail: str, ids: list[str], last: str, cur: str, **scene: Any) -> None:
    emit(
        "change_external_chat",
        "update",
        ChatId=chat.chat_id,
        UpdateDetail=detail,
        **scene,
        MemChangeCnt=len(ids),
        MemChangeList=ids,
        LastMemVer=last,
        CurMemVer=cur,
    )


def create_chat(
    owner: str,
    name: str,
    members: list[str],
    now: int,
    notice: str = "",
    admin_list: list[str] | None = None,
    chat_id: str | None = None,
) -> GroupChat:
    o = User.objects.filter(userid=owner).first()
    if o is None or o.status != User.STATUS_ACTIVE:
        raise ControlError(f"owner {owner} is not an active employee")
    members = [m for m in dict.fromkeys(members) if m != owner]
    if 1 + len(members) > rules.get().group_max_members:
        raise ControlError(f"a customer group holds at most {rules.get().group_max_members} members")
    idents = [(m, *_member_identity(m)) for m in members]
    chat = GroupChat.objects.create(
        chat_id=chat_id or new_id("wr", 28),
        name=name or "",
        owner=owner,
        create_time=now,
        notice=notice or "",
        admin_list=list(admin_list or []),
    )
    GroupMember.objects.create(chat=chat, userid=owner, type=GroupMember.EMPLOYEE, join_time=now, join_scene=1)
    GroupMember.objects.bulk_create(
        [
            GroupMember(chat=chat, userid=m, type=t, unionid=unionid, join_time=now, join_scene=1, invitor=owner)
            for m, t, unionid, _ in idents
        ]
    )
    refresh_version(chat)
    emit("change_external_chat", "create", ChatId=chat.chat_id)
    return chat


@action("group/create", schemas.GroupCreate)
def group_create(body: dict) -> dict:
    """An employee creates a customer group. Body: owner, name, members [userid or
    external_userid], notice, admin_list, at (create_time). Emits create."""
    members = body.get("members") or []
    if not isinstance(members, list):
        raise ControlError("members must be a list")
    chat = create_chat(
        body.get("owner"),
        body.get("name", ""),
        members,
        int(body.get("at") or clock.now()),
        body.get("notice", ""),
        body.get("admin_list"),
        body.get("chat_id"),
    )
    return {"chat_id": chat.chat_id, "member_version": chat.member_version, "members": member_count(chat.chat_id)}


def _pick_chat_for_way(way: JoinWay, now: int) -> tuple[GroupChat, str | None]:
    """The first chat of the way with room; when all are full and auto_create_room is on, a new
    group named room_base_name + (room_base_id + n), owned by the first group's owner, appended to
    the way. WeCom keeps a way at ≤ 5 chats: when the list is already full, the earliest full chat
    is dropped from the list to make room for the new one (our choice; the doc only says new groups
    are created)."""
    cfg = dict(way.config)
    cap = rules.get().group_max_members
    chats = [c for c in (live_chat(cid) for cid in cfg.get("chat_id_list", [])) if c is not None]
    for c in chats:
        if member_count(c.chat_id) < cap:
            return c, None
    if not cfg.get("auto_create_room", 1):
        raise ControlError("every group of this join way is full and auto_create_room is off")
    if not chats:
        raise ControlError("the join way has no live group to copy an owner from")
    first = chats[0]
    base_name = cfg.get("room_base_name") or first.name
    n = way.rooms_created
    number = cfg["room_base_id"] + n if "room_base_id" in cfg else n + 1
    new = create_chat(first.owner, f"{base_name}{number}", [], now)
    ids = list(cfg.get("chat_id_list", []))
    ids.append(new.chat_id)
    max_chats = rules.get().join_way_max_chats
    while len(ids) > max_chats:
        full = next(
            (cid for cid in ids if cid != new.chat_id and (live_chat(cid) is None or member_count(cid) >= cap)), None
        )
        ids.remove(full if full else ids[0])
    cfg["chat_id_list"] = ids
    way.config = cfg
    way.rooms_created = n + 1
    way.save(update_fields=["config", "rooms_created"])
    return new, new.chat_id


@action("group/join", schemas.GroupJoin)
def group_join(body: dict) -> dict:
    """Someone joins a customer group. Body: chat_id, or config_id of a join way; external_userid
    or userid (neither: a new WeChat user); join_scene 1 invited directly / 2 invite link /
    3 scanned QR (default 1 for chat_id, 3 through a join way); invitor; group_nickname.
    Emits update/add_member with JoinScene (0 invited, 3 QR), MemChangeCnt, MemChangeList,
    LastMemVer and CurMemVer."""
    now = clock.now()
    state = ""
    created = None
    if body.get("config_id"):
        way = JoinWay.objects.filter(config_id=body["config_id"], deleted=False).first()
        if way is None:
            raise ControlError("unknown or deleted join way")
        chat, created = _pick_chat_for_way(way, now)
        state = way.config.get("state", "")
        scene = int(body.get("join_scene") or 3)
    else:
        chat = _chat_or_error(body.get("chat_id"))
        scene = int(body.get("join_scene") or 1)
    if scene not in (1, 2, 3):
        raise ControlError("join_scene must be 1, 2 or 3")
    ident = body.get("userid") or body.get("external_userid")
    if not ident:
        ident = new_wechat_user(body.get("name")).external_userid
    mtype, unionid, _name = _member_identity(ident)
    if GroupMember.objects.filter(chat_id=chat.chat_id, userid=ident).exists():
        raise ControlError(f"{ident} is already a member of {chat.chat_id}")
    if member_count(chat.chat_id) >= rules.get().group_max_members:
        raise ControlError(f"the group is full ({rules.get().group_max_members} members)")
    invitor = body.get("invitor") or (chat.owner if scene in (1, 2) else "")
    GroupMember.objects.create(
        chat=chat,
        userid=ident,
        type=mtype,
        unionid=unionid,
        join_time=now,
        join_scene=scene,
        invitor=invitor,
        group_nickname=body.get("group_nickname", ""),
        state=state,
    )
    last, cur = refresh_version(chat)
    _emit_members(chat, "add_member", [ident], last, cur, JoinScene=3 if scene == 3 else 0)
    return {
        "chat_id": chat.chat_id,
        "userid": ident,
        "join_scene": scene,
        "state": state,
        "created_chat_id": created,
        "member_version": cur,
    }


@action("group/leave", schemas.GroupLeave)
def group_leave(body: dict) -> dict:
    """A member leaves (quit_scene 0) or is removed by the owner/an admin (1). Emits
    update/del_member with QuitScene. The owner cannot leave (dismiss or transfer instead)."""
    chat = _chat_or_error(body.get("chat_id"))
    ident = body.get("userid") or body.get("external_userid")
    quit_scene = int(body.get("quit_scene") or 0)
    if quit_scene not in (0, 1):
        raise ControlError("quit_scene must be 0 or 1")
    if ident == chat.owner:
        raise ControlError("the owner cannot leave the group")
    deleted, _ = GroupMember.objects.filter(chat_id=chat.chat_id, userid=ident).delete()
    if not deleted:
        raise ControlError(f"{ident} is not a member of {chat.chat_id}")
    if ident in chat.admin_list:
        chat.admin_list = [a for a in chat.admin_list if a != ident]
        GroupChat.objects.filter(chat_id=chat.chat_id).update(admin_list=chat.admin_list)
    last, cur = refresh_version(chat)
    _emit_members(chat, "del_member", [ident], last, cur, QuitScene=quit_scene)
    return {"chat_id": chat.chat_id, "userid": ident, "member_version": cur}


@action("group/dismiss", schemas.ChatRef)
def group_dismiss(body: dict) -> dict:
    chat = _chat_or_error(body.get("chat_id"))
    GroupChat.objects.filter(chat_id=chat.chat_id).update(dismissed=True)
    emit("change_external_chat", "dismiss", ChatId=chat.chat_id)
    return {"chat_id": chat.chat_id}


@action("group/rename", schemas.GroupRename)
def group_rename(body: dict) -> dict:
    chat = _chat_or_error(body.get("chat_id"))
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise ControlError("name is required")
    GroupChat.objects.filter(chat_id=chat.chat_id).update(name=name)
    emit("change_external_chat", "update", ChatId=chat.chat_id, UpdateDetail="change_name")
    return {"chat_id": chat.chat_id, "name": name}


@action("group/notice", schemas.GroupNotice)
def group_notice(body: dict) -> dict:
    chat = _chat_or_error(body.get("chat_id"))
    notice = body.get("notice")
    if not isinstance(notice, str):
        raise ControlError("notice is required")
    GroupChat.objects.filter(chat_id=chat.chat_id).update(notice=notice)
    emit("change_external_chat", "update", ChatId=chat.chat_id, UpdateDetail="change_notice")
    return {"chat_id": chat.chat_id, "notice": notice}
