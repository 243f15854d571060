"""Group QR codes (群活码): a join way over up to 5 customer groups.

WeCom creates the next group itself when every group of the way is full (``auto_create_room``,
named ``room_base_name`` + number, owned by the first group's owner) — customer groups cannot be
created through the API, so this is the only automatic path. Joins are counted per code from the
groups' members whose ``state`` is the code's (the add_member event carries no state).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from siyu.channels.models import GroupCode, GroupWelcomeTemplate
from siyu.core import inputs
from siyu.wecom import gateway
from siyu.wecom.media import services as media_services

TEMPLATE_TEXT_MAX_BYTES = 3000  # group_welcome_template doc 92366: text.content ≤ 3000 bytes
TEMPLATE_KINDS = ("image", "link", "miniprogram", "file", "video")  # one of them (doc 92366)


class TemplateError(ValueError):
    """A group welcome template WeCom would refuse (checked before calling it)."""


# --- group welcome templates (入群欢迎语素材) ---------------------------------------------------------
def clean_template(text: str, attachment: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """Text ≤ 3000 bytes, at most one attachment of a kind the template takes, not both empty."""
    text = (text or "").strip()
    if len(text.encode()) > TEMPLATE_TEXT_MAX_BYTES:
        raise TemplateError("text is longer than 3000 bytes")
    if inputs.CONTROL_CHARS.search(text):
        raise TemplateError("text must not contain control characters")
    att = dict(attachment or {})
    if att:
        kind = att.get("msgtype")
        if kind not in TEMPLATE_KINDS or not isinstance(att.get(kind), dict):
            raise TemplateError("invalid attachment")
        if not any(v not in (None, "", {}, []) for v in att[kind].values()):
            raise TemplateError(f"the {kind} attachment is empty")
        att = {"msgtype": kind, kind: dict(att[kind])}
    if not text and not att:
        raise TemplateError("a template needs text or an attachment")
    return text, att


def _template_body(text: str, attachment: dict[str, Any]) -> dict[str, Any]:
    """WeCom's body: ``text`` and one attachment object, stored media uploaded now (WeCom keeps
    the template's content itself: no re-upload is needed after it is written)."""
    body: dict[str, Any] = {"text": {"content": text}}
    if attachment:
        kind = attachment["msgtype"]
        obj = dict(attachment[kind])
        obj.pop("name", None)
        media = obj.pop("media", None)
        if media:
            obj["pic_media_id" if kind == "miniprogram" else "media_id"] = media_services.media_id(int(media))
        body[kind] = obj
    return body


def create_template(
    name: str, text: str, attachment: dict[str, Any] | None = None, *, notify: bool = True, created_by: str = ""
) -> GroupWelcomeTemplate:
    """Add a template to WeCom's library, then keep it here (nothing is kept when WeCom refuses)."""
    text, att = clean_template(text, attachment)
    body = _template_body(text, att)
    body["notify"] = 1 if notify else 0
    res = gateway.contact().external_contact.add_group_welcome_template(template=body)
    return GroupWelcomeTemplate.objects.create(
        name=name[:64],
        text=text,
        attachment=att,
        notify=notify,
        template_id=str(res.get("template_id", "")),
        created_by=created_by[:150],
    )


def update_template(
    t: GroupWelcomeTemplate, name: str, text: str, attachment: dict[str, Any] | None = None
) -> GroupWelcomeTemplate:
    """Edit a template in WeCom. WeCom's edit keeps an attachment that is not sent, so removing the
    attachment deletes the template and adds it again (a new template id, copied to its codes)."""
    text, att = clean_template(text, attachment)
    api = gateway.contact().external_contact
    if t.attachment and not att:
        res = api.add_group_welcome_template(template={**_template_body(text, att), "notify": 1 if t.notify else 0})
        old, t.template_id = t.template_id, str(res.get("template_id", ""))
        _delete_remote(old)
    else:
        api.update_group_welcome_template(template=_template_body(text, att), template_id=t.template_id)
    t.name, t.text, t.attachment, t.last_error = name[:64], text, att, ""
    t.save()
    GroupCode.objects.filter(welcome_template=t).update(template_id=t.template_id)
    return t


def _delete_remote(template_id: str) -> None:
    if not template_id:
        return
    try:
        gateway.contact().external_contact.del_group_welcome_template(template_id)
    except gateway.WeComAPIError as e:
        if e.errcode != 40058:  # already gone from WeCom (unknown template_id, contract part 1 §5.2)
            raise


def delete_template(t: GroupWelcomeTemplate) -> None:
    """Delete a template from WeCom and here; its group codes keep working without a welcome."""
    _delete_remote(t.template_id)
    GroupCode.objects.filter(welcome_template=t).update(template_id="")
    t.delete()


def fetch_template(t: GroupWelcomeTemplate) -> dict[str, Any]:
    """WeCom's copy of a template (group_welcome_template/get): images come back as pic_url."""
    res: dict[str, Any] = gateway.contact().external_contact.get_group_welcome_template(t.template_id)
    return res


# --- group codes --------------------------------------------------------------------------------------
def create_group_code(
    name: str,
    *,
    chat_ids: list[str],
    auto_create: bool = True,
    room_base_name: str = "",
    welcome_text: str = "",
    welcome_template: GroupWelcomeTemplate | None = None,
) -> GroupCode:
    """A join way over up to 5 groups. Its welcome: ``welcome_template`` from the library, or a new
    text template made from ``welcome_text`` (added to the library under the code's name)."""
    chat_ids = list(dict.fromkeys(c for c in chat_ids if c))[: GroupCode.MAX_CHATS]
    if not chat_ids:
        raise ValueError("at least one group")
    code = GroupCode.objects.create(
        name=name,
        chat_ids=chat_ids,
        auto_create=auto_create,
        group_name_prefix=room_base_name,
        welcome_text=welcome_text if welcome_template is None else welcome_template.text,
        welcome_template=welcome_template,
        template_id=welcome_template.template_id if welcome_template else "",
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
        if welcome_text and welcome_template is None:
            t = create_template(name, welcome_text)
            code.template_id, code.welcome_template = t.template_id, t
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
