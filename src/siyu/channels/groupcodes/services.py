"""Group QR codes (群活码): a join way over up to 5 customer groups.

WeCom creates the next group itself when every group of the way is full (``auto_create_room``,
named ``room_base_name`` + number, owned by the first group's owner) — customer groups cannot be
created through the API, so this is the only automatic path. Joins are counted per code from the
groups' members whose ``state`` is the code's (the add_member event carries no state).
"""

from __future__ import annotations

from collections.abc import Callable

from siyu.channels.models import GroupCode
from siyu.wecom import gateway


def create_group_code(
    name: str, *, chat_ids: list[str], auto_create: bool = True, room_base_name: str = "", welcome_text: str = ""
) -> GroupCode:
    chat_ids = list(dict.fromkeys(c for c in chat_ids if c))[: GroupCode.MAX_CHATS]
    if not chat_ids:
        raise ValueError("at least one group")
    code = GroupCode.objects.create(
        name=name,
        chat_ids=chat_ids,
        auto_create=auto_create,
        group_name_prefix=room_base_name,
        welcome_text=welcome_text,
    )
    client = gateway.contact()
    try:
        res = client.external_contact_group_chat.add_join_way(
            {
                "scene": 2,
                "remark": name[:30],
                "auto_create_room": 1 if auto_create else 0,
                "room_base_name": room_base_name or name[:40],
                "room_base_id": 1,
                "chat_id_list": chat_ids,
                "state": code.state,
            }
        )
        code.config_id = res["config_id"]
        way = client.external_contact_group_chat.get_join_way(code.config_id).get("join_way", {})
        code.qr_url = way.get("qr_code", "")
        if welcome_text:
            t = client.external_contact.add_group_welcome_template(template={"text": {"content": welcome_text}})
            code.template_id = t.get("template_id", "")
    except Exception:
        code.delete()
        raise
    code.save()
    return code


def refresh_chat_lists() -> Callable[[], None]:
    client = gateway.contact().external_contact_group_chat
    found: dict[int, list[str]] = {}
    for code in GroupCode.objects.exclude(config_id=""):
        try:
            way = client.get_join_way(code.config_id).get("join_way", {})
        except gateway.WeComAPIError:
            continue
        found[code.id] = way.get("chat_id_list", [])

    def apply() -> None:
        for cid, chats in found.items():
            GroupCode.objects.filter(id=cid).update(chat_ids=chats)

    return apply


def count_joins(chat_id: str) -> Callable[[], None] | None:
    codes = list(GroupCode.objects.exclude(config_id=""))
    if not codes:
        return None
    detail = gateway.contact().external_contact_group_chat.get_detail(chat_id).get("group_chat", {})
    by_state: dict[str, int] = {}
    for m in detail.get("member_list", []):
        st = m.get("state") or ""
        if st:
            by_state[st] = by_state.get(st, 0) + 1

    def apply() -> None:
        for code in codes:
            per_chat = dict(code.per_chat_joins or {})
            n = by_state.get(code.state, 0)
            if n or chat_id in per_chat:
                per_chat[chat_id] = n
                GroupCode.objects.filter(id=code.id).update(per_chat_joins=per_chat, joins=sum(per_chat.values()))

    return apply
