"""The phone-frame message preview (``templates/includes/phone_preview.html``): what a customer
sees in WeChat, as bubbles, with the message's variables filled for a sample customer and employee,
and WeChat's limits for that kind of message. The console's JS (``siyu/preview.js``) redraws the
same frame as the operator types; pages without a form render it here (the fallback).

Limits (the WeCom contract, ``/work/shared/domain/wecom-api``):
- welcome (send_welcome_msg, part 1 §5.1): text ≤ 4000 bytes, ≤ 9 attachments of image, link,
  mini-program, video, file;
- customer / group mass messages (add_msg_template, part 2 §1.1): the same;
- Moments (add_moment_task, part 2 §2.1): text ≤ 2000 characters, ≤ 9 images or 1 video or 1 link;
- group welcome templates (group_welcome_template/add, part 1 §5.2): text ≤ 3000 bytes (the
  emulator's rule from doc 92366), one attachment of image, link, mini-program, file or video.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.utils.translation import gettext as _

SAMPLE_NICKNAME = "王小明"
SAMPLE_EMPLOYEE = "李娜"
ALL_KINDS = ["image", "link", "miniprogram", "video", "file"]
LIMITS: dict[str, dict[str, Any]] = {
    "welcome": {"text_bytes": 4000, "max_attachments": 9, "kinds": ALL_KINDS},
    "customer": {"text_bytes": 4000, "max_attachments": 9, "kinds": ALL_KINDS},
    "group": {"text_bytes": 4000, "max_attachments": 9, "kinds": ALL_KINDS},
    "moment": {"text_chars": 2000, "max_attachments": 9, "kinds": ["image", "video", "link"], "moment": True},
    "group_welcome": {"text_bytes": 3000, "max_attachments": 1, "kinds": ALL_KINDS},
}
# the variables each kind of message fills, with the sample values shown in the preview
VARIABLES: dict[str, dict[str, str]] = {
    "welcome": {"{nickname}": SAMPLE_NICKNAME, "{employee}": SAMPLE_EMPLOYEE},
    "customer": {"{employee}": SAMPLE_EMPLOYEE, "{员工姓名}": SAMPLE_EMPLOYEE},
    "group": {"{employee}": SAMPLE_EMPLOYEE, "{员工姓名}": SAMPLE_EMPLOYEE},
    "moment": {},  # one add_moment_task for every sender: nothing is filled (siyu.broadcasts refuses variables)
    "group_welcome": {"%NICKNAME%": SAMPLE_NICKNAME},
}


def fill(text: str, values: dict[str, str]) -> str:
    for k, v in values.items():
        text = text.replace(k, v)
    return text


def context(kind: str, employee: str = "") -> dict[str, Any]:
    """What the preview template and its JS need for a form: limits, variables, the sample names."""
    values = dict(VARIABLES.get(kind, {}))
    if employee:
        values = {k: (employee if v == SAMPLE_EMPLOYEE else v) for k, v in values.items()}
    return {
        "kind": kind,
        "limits": LIMITS.get(kind, LIMITS["welcome"]),
        "vars": values,
        "employee": employee or SAMPLE_EMPLOYEE,
        "nickname": SAMPLE_NICKNAME,
        "bubbles": [],
    }


def _bubble(kind: str, obj: dict[str, Any], image_url: Callable[[int], str] | None) -> dict[str, Any]:
    media = obj.get("media")
    thumb = image_url(int(media)) if media and image_url and kind in ("image", "miniprogram") else ""
    thumb = thumb or obj.get("picurl") or obj.get("pic_url") or ""
    if kind == "image":
        return {"type": "image", "src": thumb, "name": obj.get("name", "")}
    if kind == "link":
        return {"type": "link", "title": obj.get("title", ""), "desc": obj.get("desc", ""), "src": thumb}
    if kind == "miniprogram":
        return {"type": "miniprogram", "title": obj.get("title", ""), "src": thumb, "app": _("小程序")}
    return {"type": kind, "name": obj.get("name") or (_("视频") if kind == "video" else _("文件"))}


def bubbles(
    text: str,
    attachments: list[dict[str, Any]],
    values: dict[str, str],
    image_url: Callable[[int], str] | None = None,
) -> list[dict[str, Any]]:
    """The chat bubbles of a message: its text (variables filled), then one per attachment.
    ``attachments`` are in WeCom's shape (``{"msgtype": k, k: {...}}``) or the mass messages'
    (``{"type": k, ...}``)."""
    out: list[dict[str, Any]] = []
    if text:
        out.append({"type": "text", "text": fill(text, values)})
    for a in attachments or []:
        kind = a.get("msgtype") or a.get("type") or ""
        inner = a.get(kind)
        obj: dict[str, Any] = inner if isinstance(inner, dict) else a
        if kind in ALL_KINDS:
            out.append(_bubble(kind, obj, image_url))
    return out


def render_context(
    kind: str,
    text: str,
    attachments: list[dict[str, Any]],
    employee: str = "",
    image_url: Callable[[int], str] | None = None,
) -> dict[str, Any]:
    """A server-rendered preview (detail pages): ``context`` plus the bubbles."""
    ctx = context(kind, employee)
    ctx["bubbles"] = bubbles(text, attachments, ctx["vars"], image_url)
    ctx["static"] = True
    # the limits' counts, as the live preview shows them: the text as typed (characters for Moments,
    # UTF-8 bytes otherwise) and the attachments alone (the text is a bubble, not an attachment)
    limits = ctx["limits"]
    ctx["text_used"] = len(text or "") if limits.get("text_chars") else len((text or "").encode("utf-8"))
    ctx["attachment_count"] = sum(1 for b in ctx["bubbles"] if b["type"] != "text")
    return ctx
