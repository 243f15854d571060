"""Composer form: content (text with variables, ≤ 9 attachments), audience, schedule. Hostile input
is checked here; REST input goes through the same form."""

from __future__ import annotations

import re
from typing import Any, cast

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from siyu.broadcasts.models import Broadcast
from siyu.broadcasts.services import TEXT_VARIABLES, save_media
from siyu.core import inputs, pickers
from siyu.segments import selectors as segment_selectors

MAX_ATTACHMENTS = 9
TEXT_MAX_BYTES = 4000  # add_msg_template doc 92135 (Moments: 2,000 characters, doc 96351)
# uploads: WeCom's media/upload limits, checked by content in siyu.core.inputs.check_media
# What reads as a variable: ``{name}`` (ours, or a welcome's {nickname}) or ``%NAME%`` (the group
# welcome's %NICKNAME%). WeCom fills none of them: one it does not know is delivered literally.
# how a Moment reaches a segment (shown next to the picker and on the Moment's page)
MOMENT_SEGMENT_NOTE = _(
    "朋友圈的可见范围只能是员工和企业客户标签（企业微信的规则）：按客户分群发表时，会在标签组“私域分群”中为本次发表"
    "创建一个企业客户标签，打在分群成员的跟进关系上，朋友圈只对带此标签的客户可见。发表结束或取消后，"
    "该标签仍会保留（企业微信按它判断可见范围）。"
)
PLACEHOLDER_RE = re.compile(r"\{\s*[\w.\-]{1,40}\s*\}|%[A-Z][A-Z_]{1,31}%")


def unsupported_variables(text: str, kind: str) -> list[str]:
    """The placeholders in ``text`` that a ``kind`` broadcast does not fill (in order, once each):
    customer and group mass messages fill TEXT_VARIABLES per sender; Moments fill none."""
    allowed = () if kind == Broadcast.MOMENT else TEXT_VARIABLES
    return list(dict.fromkeys(m for m in PLACEHOLDER_RE.findall(text or "") if m not in allowed))


class ComposeForm(inputs.TextCheckMixin, forms.Form):
    kind = forms.ChoiceField(label=_("类型"), choices=Broadcast.KINDS, initial=Broadcast.CUSTOMER)
    name = forms.CharField(label=_("名称"), max_length=100)
    text = forms.CharField(label=_("文本"), required=False, widget=forms.Textarea(attrs={"rows": 5}))
    # audience
    tags = pickers.PickerField("tags", label=_("标签"), required=False, max_items=200)
    tag_mode = forms.ChoiceField(
        label=_("标签条件"),
        choices=[("any", _("任一")), ("all", _("全部")), ("none", _("不含"))],
        initial="any",
        required=False,
        widget=forms.RadioSelect,
    )
    employees = pickers.PickerField("employees", tree="filter", label=_("员工"), required=False, max_items=10000)
    departments = pickers.PickerField("departments", tree="pick", label=_("部门"), required=False, max_items=1000)
    added_from = inputs.DateField(label=_("添加时间起"), required=False)
    added_to = inputs.DateField(label=_("添加时间止"), required=False)
    # a channel code picked by name; its value is the code's state (what a customer's relation carries)
    state = pickers.PickerField("channels", multiple=False, label=_("渠道"), required=False)
    status = forms.ChoiceField(
        label=_("流失状态"), choices=[("", _("全部")), ("active", _("跟进中")), ("lost", _("已流失"))], required=False
    )
    group = forms.CharField(label=_("群成员"), max_length=20, required=False)  # "", any, none or a group id
    group_member = pickers.PickerField("groups", multiple=False, label=_("指定群的成员"), required=False)
    group_ids = pickers.PickerField("groups", label=_("客户群"), required=False, max_items=2000)
    group_tags = pickers.PickerField("group_tags", label=_("群标签"), required=False, max_items=200)
    # a saved segment (customer mass messages and Moments): its members, frozen when the broadcast is planned
    segment = pickers.PickerField("segments", multiple=False, label=_("客户分群"), required=False)
    # attachments
    images = forms.FileField(
        label=_("图片"), required=False, widget=forms.ClearableFileInput(attrs={"accept": "image/*"})
    )
    video = forms.FileField(label=_("视频"), required=False)
    file = forms.FileField(label=_("文件"), required=False)
    link_title = forms.CharField(label=_("链接标题"), max_length=128, required=False)
    link_url = inputs.LinkUrlField(label=_("链接地址"), required=False, assume_scheme="https", max_length=1024)
    link_desc = forms.CharField(label=_("链接描述"), max_length=512, required=False)
    mp_title = forms.CharField(label=_("小程序标题"), max_length=64, required=False)
    mp_appid = forms.CharField(label=_("小程序 appid"), max_length=64, required=False)
    mp_page = forms.CharField(label=_("小程序页面"), max_length=128, required=False)
    send_at = inputs.DateTimeField(
        label=_("定时发送"), required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )

    def __init__(
        self,
        *args,
        scope: Any = None,
        choices: dict | None = None,
        keep_attachments: list | None = None,
        user: Any = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        # tags, employees, departments, channel, groups, group tags: picked by name, checked in the viewer's scope
        if scope is not None:
            pickers.bind(self, scope)
            # saved segments: the ones this user may see (their own, or all for admins and operators)
            viewer = segment_selectors.Viewer(scope, getattr(user, "id", None))
            segment = cast(pickers.PickerField, self.fields["segment"])
            segment.scope = cast(pickers.PickerWidget, segment.widget).scope = viewer
        self.keep_attachments = keep_attachments or []

    def clean_text(self):
        text = self.cleaned_data.get("text") or ""
        if len(text.encode("utf-8")) > TEXT_MAX_BYTES:
            raise forms.ValidationError(_("文本最多 4000 字节"))
        return text

    def clean_send_at(self):
        at = self.cleaned_data.get("send_at")
        if at and at < timezone.now():
            raise forms.ValidationError(_("定时发送的时间已过"))
        return at

    def clean(self):
        d = super().clean()
        files = self.files.getlist("images") if hasattr(self.files, "getlist") else []
        for f in files:
            try:
                inputs.validate_upload("image")(f)
            except forms.ValidationError as e:
                self.add_error("images", e)
        for media in ("video", "file"):
            try:
                inputs.validate_upload(media)(d.get(media))
            except forms.ValidationError as e:
                self.add_error(media, e)
        if bool(d.get("link_title")) != bool(d.get("link_url")):
            self.add_error("link_url", _("链接需要标题和地址"))
        mp = [d.get("mp_title"), d.get("mp_appid"), d.get("mp_page")]
        if any(mp) and not all(mp):
            self.add_error("mp_appid", _("小程序需要标题、appid 和页面"))
        count = (
            len(self.keep_attachments)
            + len(files)
            + bool(d.get("video"))
            + bool(d.get("file"))
            + bool(d.get("link_url"))
            + bool(all(mp))
        )
        if count > MAX_ATTACHMENTS:
            raise forms.ValidationError(_("附件最多 9 个"))
        kind = d.get("kind")
        if kind == Broadcast.MOMENT and d.get("text") and len(d["text"]) > 2000:
            self.add_error("text", _("朋友圈文本最多 2000 字"))
        self._check_variables(d.get("text") or "", kind or Broadcast.CUSTOMER)
        self._check_segment(d.get("segment"), kind)
        if not d.get("text") and count == 0 and not self.errors:
            raise forms.ValidationError(_("请填写文本或添加附件"))
        self.image_files = files
        if d.get("group_member"):  # members of a group picked by name (the REST API posts its id as ``group``)
            d["group"] = str(d["group_member"])
        return d

    def _check_segment(self, segment: Any, kind: str | None) -> None:
        """A saved segment is an audience of customer mass messages and of Moments (through a
        corp tag made for the send), not of group mass messages."""
        if segment and kind == Broadcast.GROUP:
            self.add_error("segment", _("客户群群发的对象是群，不能按客户分群发送"))

    def _check_variables(self, text: str, kind: str) -> None:
        unknown = unsupported_variables(text, kind)
        if not unknown:
            return
        found = "、".join(unknown[:5])
        if kind == Broadcast.MOMENT:
            msg = _("朋友圈不支持变量：%(found)s。企业微信会把它原样发表，请删除。") % {"found": found}
        else:
            msg = _("不支持的变量：%(found)s。群发只能使用 %(allowed)s，企业微信会把其他变量原样发给客户。") % {
                "found": found,
                "allowed": "、".join(TEXT_VARIABLES),
            }
        self.add_error("text", msg)

    def audience(self) -> dict:
        d = self.cleaned_data
        kind = d.get("kind")
        if kind == Broadcast.GROUP:
            return {
                "group_ids": d.get("group_ids") or [],
                "owner_ids": d.get("employees") or [],
                "tag_ids": d.get("group_tags") or [],
            }
        if d.get("segment"):  # a customer mass message or a Moment to a saved segment
            return {
                "segment_id": int(d["segment"]),
                "employee_ids": d.get("employees") or [],
                "department_ids": d.get("departments") or [],
            }
        if kind == Broadcast.MOMENT:
            return {
                "employee_ids": d.get("employees") or [],
                "department_ids": d.get("departments") or [],
                "tags": d.get("tags") or [],
            }
        return {
            "tags": d.get("tags") or [],
            "tag_mode": d.get("tag_mode") or "any",
            "employee_ids": d.get("employees") or [],
            "department_ids": d.get("departments") or [],
            "added_from": d["added_from"].isoformat() if d.get("added_from") else "",
            "added_to": d["added_to"].isoformat() if d.get("added_to") else "",
            "state": d.get("state") or "",
            "status": d.get("status") or "",
            "group": d.get("group") or "",
        }

    def attachments(self) -> list[dict]:
        """Our attachment list; uploaded files become Media rows (uploaded to WeCom when sending)."""
        d = self.cleaned_data
        out = list(self.keep_attachments)
        for f in self.image_files:
            name = f.name or ""
            out.append(
                {
                    "type": "image",
                    "media": save_media("image", name, f.read(), f.content_type or "").id,
                    "name": name[:128],
                }
            )
        for t in ("video", "file"):
            if d.get(t):
                f = d[t]
                out.append(
                    {"type": t, "media": save_media(t, f.name, f.read(), f.content_type or "").id, "name": f.name[:128]}
                )
        if d.get("link_url"):
            out.append(
                {"type": "link", "title": d["link_title"], "url": d["link_url"], "desc": d.get("link_desc") or ""}
            )
        if d.get("mp_appid"):
            mp = {"type": "miniprogram", "title": d["mp_title"], "appid": d["mp_appid"], "page": d["mp_page"]}
            img = next((a for a in out if a.get("type") == "image" and a.get("media")), None)
            if img:
                mp["media"] = img["media"]  # the first image is the mini-program's cover
            out.append(mp)
        return out[:MAX_ATTACHMENTS]


class ApiComposeForm(ComposeForm):
    """The REST API's composer: the channel is the raw state value (``ch:7``, or a state an
    integration set on a contact way of its own), as the customer list's API takes it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["state"] = forms.CharField(label=_("渠道"), max_length=64, required=False)


def initial_from(b: Broadcast) -> dict:
    a = b.audience or {}
    link: dict[str, Any] = next((x for x in b.attachments or [] if x.get("type") == "link"), {})
    mp: dict[str, Any] = next((x for x in b.attachments or [] if x.get("type") == "miniprogram"), {})
    return {
        "link_title": link.get("title", ""),
        "link_url": link.get("url", ""),
        "link_desc": link.get("desc", ""),
        "mp_title": mp.get("title", ""),
        "mp_appid": mp.get("appid", ""),
        "mp_page": mp.get("page", ""),
        "kind": b.kind,
        "name": b.name,
        "text": b.text,
        "tags": [str(x) for x in a.get("tags") or []],
        "tag_mode": a.get("tag_mode") or "any",
        "employees": [str(x) for x in (a.get("employee_ids") or a.get("owner_ids") or [])],
        "departments": [str(x) for x in a.get("department_ids") or []],
        "added_from": a.get("added_from") or None,
        "added_to": a.get("added_to") or None,
        "state": a.get("state") or "",
        "status": a.get("status") or "",
        "group": a.get("group") if a.get("group") in ("any", "none") else "",
        "group_member": a.get("group") if str(a.get("group") or "").isdigit() else None,
        "group_ids": [str(x) for x in a.get("group_ids") or []],
        "group_tags": [str(x) for x in a.get("tag_ids") or []] if b.kind == Broadcast.GROUP else [],
        "segment": str(a["segment_id"]) if a.get("type") == "segment" and a.get("segment_id") else None,
        "send_at": b.send_at,
    }
