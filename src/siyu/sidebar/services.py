"""The sidebar's writes: sending from the guide's library (a prepared send and its confirmation)."""

from __future__ import annotations

import logging
from typing import Any

from django.core import signing
from django.utils.translation import gettext as _

from siyu.channels import services as channel_services
from siyu.guidetasks import services as task_services
from siyu.links import services as link_services
from siyu.materials import selectors as material_selectors
from siyu.materials import services as material_services
from siyu.org import selectors as org_selectors
from siyu.sidebar import selectors
from siyu.wecom import gateway
from siyu.wecom.media import selectors as media_selectors
from siyu.wecom.media import services as media_services

logger = logging.getLogger("siyu.sidebar")


# --- sending from the library ------------------------------------------------------------------------------
SEND_TOKEN_SALT = "siyu.sidebar.send"
SEND_TOKEN_MAX_AGE_S = 3600


class SendRefused(Exception):
    """The item cannot be sent here (gone, not visible, WeCom refused its media); text for the guide."""


def prepare_send(
    viewer: selectors.Viewer, item: str, item_id: int, chat_type: str, chat_key: str, site: str
) -> dict[str, Any]:
    """What ``sendChatMessage`` gets for a script or material in this chat, and a token to report
    the send with (``record_send``). Links become trackable short links bound to this send; media
    get a WeCom media id that is valid now. ``site``: the site's address (``https://host``)."""
    if not selectors.chat_in_scope(viewer, chat_type, chat_key):
        raise SendRefused(_("这个聊天不在你的范围内。"))
    lineage = org_selectors.department_lineage(viewer.userid)
    values = selectors.variables(viewer, chat_type, chat_key)
    if item == "script":
        script = material_selectors.script_by_id(item_id)
        if script is None or not script.active or not material_selectors.visible([script], lineage):
            raise SendRefused(_("这条话术已被删除或停用。"))
        payload: dict[str, Any] = {
            "msgtype": "text",
            "text": {"content": material_services.fill(script.content, values)},
        }
    elif item == "material":
        material = material_selectors.material_by_id(item_id)
        if material is None or not material.active or not material_selectors.visible([material], lineage):
            raise SendRefused(_("这个素材已被删除或停用。"))
        payload = _material_payload(viewer, material, chat_type, chat_key, site, values)
    else:
        raise SendRefused(_("未知的发送内容。"))
    token = signing.dumps(
        {"i": item, "id": item_id, "u": viewer.userid, "t": chat_type, "k": chat_key}, salt=SEND_TOKEN_SALT
    )
    return {"payload": payload, "token": token}


def _material_payload(
    viewer: selectors.Viewer, m: Any, chat_type: str, chat_key: str, site: str, values: dict[str, str]
) -> dict[str, Any]:
    if m.kind == "text":
        return {"msgtype": "text", "text": {"content": material_services.fill(m.text, values)}}
    if m.kind in ("image", "video", "file"):
        try:
            media_id = media_services.media_id(m.media)
        except gateway.WeComAPIError as e:
            logger.warning("media upload for material %s failed: %s", m.id, gateway.redact(e))
            raise SendRefused(
                _("企业微信暂时无法接收这个文件（%(e)s）。请稍后重试。") % {"e": gateway.error_text(e)}
            ) from e
        except Exception as e:  # the stored file is gone
            raise SendRefused(_("这个素材的文件已丢失，请联系运营重新上传。")) from e
        return {"msgtype": m.kind, m.kind: {"mediaid": media_id}}
    if m.kind == "poster":
        return {"msgtype": "image", "image": {"mediaid": _poster_media(viewer, m)}}
    cover = site + link_services.image_path(m.cover) if m.cover else ""
    if m.kind == "link":
        path = link_services.make_link(
            m.url,
            employee_userid=viewer.userid,
            external_userid=chat_key if chat_type == "single" else "",
            chat_id=chat_key if chat_type == "group" else "",
            material_id=m.id,
            title=m.title,
        )
        news = {"link": site + path, "title": m.title, "desc": m.description}
        if cover:
            news["imgUrl"] = cover
        return {"msgtype": "news", "news": news}
    return {
        "msgtype": "miniprogram",
        "miniprogram": {"appid": m.appid, "title": m.title, "imgUrl": cover, "page": m.page},
    }


def _poster_media(viewer: selectors.Viewer, m: Any) -> str:
    """The poster with the guide's own channel code on it, uploaded to WeCom (one stored image per
    guide and poster: sending it again reuses it)."""
    found = media_selectors.content(m.media) if m.media else None
    background = found[0] if found else None
    employee = org_selectors.employee_by_userid(viewer.userid)
    name = employee.name if employee is not None else viewer.userid
    try:
        image = channel_services.personal_poster(viewer.userid, name, background, m.title)
        stored = media_services.store("image", f"poster-{m.id}-{viewer.userid}.jpg", image, "image/jpeg")
        return media_services.media_id(stored.id)
    except gateway.WeComAPIError as e:
        logger.warning("poster for %s failed: %s", viewer.userid, gateway.redact(e))
        raise SendRefused(
            _("企业微信暂时无法生成你的二维码海报（%(e)s）。请稍后重试。") % {"e": gateway.error_text(e)}
        ) from e
    except (channel_services.ChannelError, media_services.MediaError) as e:
        raise SendRefused(_("无法生成你的二维码海报：%(e)s") % {"e": e}) from e


def record_send(viewer: selectors.Viewer, token: str) -> None:
    """The guide's client reported ``sendChatMessage:ok`` for a prepared send: count it, and
    complete the guide's open tasks for that customer that suggested it."""
    try:
        data = signing.loads(token, salt=SEND_TOKEN_SALT, max_age=SEND_TOKEN_MAX_AGE_S)
    except signing.BadSignature as e:
        raise SendRefused(_("发送记录已过期，请重新发送。")) from e
    if data.get("u") != viewer.userid:
        raise SendRefused(_("发送记录不属于你。"))
    try:
        material_services.record_use(
            data["i"], int(data["id"]), employee_userid=viewer.userid, chat_type=data["t"], chat_key=data["k"]
        )
    except material_services.LibraryError as e:
        raise SendRefused(str(e)) from e
    chat_type, chat_key = data["t"], data["k"]
    task_services.complete_by_send(
        userid=viewer.userid,
        customer_id=selectors.customer_id(chat_key) if chat_type == "single" else None,
        item=data["i"],
        item_id=int(data["id"]),
        chat_type=chat_type,
        chat_key=chat_key,
    )
