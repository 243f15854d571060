"""The welcome-message attachments editor: up to 9 attachments of the kinds send_welcome_msg
takes (image, link, mini-program, video, file; doc 92137, contract part 1 §5.1, rule R17), each
row with its own fields, uploads checked by content and size against WeCom's media/upload limits
(contract part 2 §6.1). One formset, used by the channel-code form and the default-welcome form
through ``WelcomeEditorMixin``; the group welcome template form uses one row of it (``kinds``).

Stored attachment shape (``ChannelCode.welcome["attachments"]``, ``DefaultWelcome.welcome``):
``{"msgtype": "image", "image": {"media": <StoredMedia id>, "name": "a.png"}}``, ``{"msgtype":
"link", "link": {"title", "url", "desc", "picurl"}}``, ``{"msgtype": "miniprogram",
"miniprogram": {"title", "appid", "page", "media": <cover id>}}``, ``{"msgtype": "video"|"file",
...: {"media": <id>, "name": ...}}``. ``services.build_payload`` turns ``media`` into a WeCom
media id when sending (``siyu.wecom.media``).
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from siyu.core import inputs
from siyu.wecom.media import selectors as media_selectors
from siyu.wecom.media import services as media_services

MAX_ATTACHMENTS = 9  # send_welcome_msg doc 92137
KIND_CHOICES = [
    ("image", _("图片")),
    ("link", _("链接")),
    ("miniprogram", _("小程序")),
    ("video", _("视频")),
    ("file", _("文件")),
]
MEDIA_KINDS = {"image": "image", "video": "video", "file": "file", "miniprogram": "image"}
# byte limits (contract part 1 §5.1 / part 2 §1.1): link title 128, link desc 512, mini-program title 64
LINK_TITLE_BYTES, LINK_DESC_BYTES, MP_TITLE_BYTES = 128, 512, 64
# a mini-program appid is "wx" + 16 hex digits; the page a path inside it
APPID_RE = re.compile(r"^wx[0-9a-f]{16}$")
PAGE_RE = re.compile(r"^[A-Za-z0-9_./?=&%#:-]{1,255}$")
ACCEPT = {"image": "image/jpeg,image/png", "miniprogram": "image/jpeg,image/png", "video": "video/mp4", "file": ""}


def _bytes_max(value: str, limit: int, field: str, form: forms.Form) -> None:
    if value and len(value.encode("utf-8")) > limit:
        form.add_error(field, _("最多 %(n)d 字节（中文每字 3 字节）") % {"n": limit})


class AttachmentForm(inputs.TextCheckMixin, forms.Form):
    """One attachment row; which fields count depends on ``msgtype``."""

    msgtype = forms.ChoiceField(
        label=_("类型"), choices=KIND_CHOICES, initial="image", widget=forms.Select(attrs={"data-att-kind": ""})
    )
    title = forms.CharField(label=_("标题"), required=False, max_length=128)
    url = inputs.LinkUrlField(label=_("链接地址"), required=False, max_length=2048, assume_scheme="https")
    desc = forms.CharField(label=_("描述"), required=False, max_length=512)
    picurl = inputs.LinkUrlField(label=_("封面图片地址"), required=False, max_length=2048, assume_scheme="https")
    appid = forms.CharField(label=_("小程序 AppID"), required=False, max_length=32)
    page = forms.CharField(label=_("小程序页面路径"), required=False, max_length=255)
    upload = forms.FileField(
        label=_("上传文件"), required=False, widget=forms.ClearableFileInput(attrs={"data-att-file": ""})
    )
    # a file uploaded before (editing): its stored media, kept unless a new file is uploaded
    stored = forms.IntegerField(required=False, widget=forms.HiddenInput, min_value=1, max_value=2**31 - 1)
    stored_name = forms.CharField(required=False, widget=forms.HiddenInput, max_length=128)

    def __init__(self, *args: Any, kinds: tuple[str, ...] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if kinds:
            field = self.fields["msgtype"]
            assert isinstance(field, forms.ChoiceField)
            field.choices = [(k, label) for k, label in KIND_CHOICES if k in kinds]

    def _check_upload(self, kind: str) -> None:
        """The upload (when given) checked by content; else an existing stored media of that kind."""
        d = self.cleaned_data
        f = d.get("upload")
        if f:
            f.seek(0)
            data = f.read()
            f.seek(0)
            try:
                inputs.check_media(MEDIA_KINDS[kind], data, getattr(f, "name", "") or "")
            except inputs.MediaError as e:
                self.add_error("upload", str(e))
            return
        pk = d.get("stored")
        if pk and media_selectors.exists(pk, MEDIA_KINDS[kind]):
            return
        if kind == "miniprogram":
            self.add_error("upload", _("请上传小程序封面图片（JPG/PNG，建议 520×416）"))
        else:
            self.add_error("upload", _("请上传文件"))

    def clean(self) -> dict[str, Any]:
        d = super().clean()
        kind = d.get("msgtype")
        if self.errors or not kind:
            return d
        if kind == "link":
            if not d.get("title"):
                self.add_error("title", _("请填写链接标题"))
            if not d.get("url"):
                self.add_error("url", _("请填写链接地址"))
            _bytes_max(d.get("title") or "", LINK_TITLE_BYTES, "title", self)
            _bytes_max(d.get("desc") or "", LINK_DESC_BYTES, "desc", self)
        elif kind == "miniprogram":
            if not d.get("title"):
                self.add_error("title", _("请填写小程序标题"))
            _bytes_max(d.get("title") or "", MP_TITLE_BYTES, "title", self)
            if not APPID_RE.match(d.get("appid") or ""):
                self.add_error("appid", _("AppID 应为 wx 开头的 18 位字符（须已关联到企业）"))
            if not PAGE_RE.match(d.get("page") or ""):
                self.add_error("page", _("请填写小程序页面路径，如 pages/index/index"))
            self._check_upload(kind)
        else:
            self._check_upload(kind)
        return d

    def to_stored(self, created_by: str = "") -> dict[str, Any]:
        """The attachment to keep (an upload stored as media now)."""
        d = self.cleaned_data
        kind = d["msgtype"]
        if kind == "link":
            link = {"title": d["title"], "url": d["url"]}
            link.update({k: d[k] for k in ("desc", "picurl") if d.get(k)})
            return {"msgtype": "link", "link": link}
        f = d.get("upload")
        if f:
            f.seek(0)
            m = media_services.store(MEDIA_KINDS[kind], f.name or kind, f.read(), created_by=created_by)
            pk, name = m.id, m.name
        else:
            pk = d["stored"]
            info = media_selectors.infos([pk]).get(pk)
            name = (info["name"] if info else "") or d.get("stored_name") or ""
        if kind == "miniprogram":
            return {
                "msgtype": kind,
                kind: {"title": d["title"], "appid": d["appid"], "page": d["page"], "media": pk, "name": name},
            }
        return {"msgtype": kind, kind: {"media": pk, "name": name}}


class BaseAttachmentFormSet(forms.BaseFormSet):
    def __init__(self, *args: Any, kinds: tuple[str, ...] | None = None, **kwargs: Any) -> None:
        self.kinds = kinds
        super().__init__(*args, **kwargs)

    def get_form_kwargs(self, index: int | None) -> dict[str, Any]:
        return {**super().get_form_kwargs(index), "kinds": self.kinds}

    def add_fields(self, form: forms.Form, index: int | None) -> None:
        super().add_fields(form, index)
        form.fields["ORDER"].widget = forms.HiddenInput(attrs={"data-att-order": ""})
        form.fields["DELETE"].widget.attrs["data-att-delete"] = ""


AttachmentFormSet = forms.formset_factory(
    AttachmentForm,
    formset=BaseAttachmentFormSet,
    extra=0,
    max_num=MAX_ATTACHMENTS,
    validate_max=True,
    absolute_max=MAX_ATTACHMENTS + 1,
    can_delete=True,
    can_order=True,
)


def initial_rows(attachments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Formset initial data for stored attachments (the legacy ``file`` images and REST media ids
    cannot be edited as uploads: they are shown as stored files only when they are ``media``)."""
    rows: list[dict[str, Any]] = []
    for i, a in enumerate(attachments or []):
        kind = str(a.get("msgtype") or "")
        obj = a.get(kind) or {}
        row: dict[str, Any] = {"msgtype": kind, "ORDER": i + 1}
        if kind == "link":
            row.update({k: obj.get(k, "") for k in ("title", "url", "desc", "picurl")})
        elif kind in MEDIA_KINDS:
            row.update({"stored": obj.get("media"), "stored_name": obj.get("name", "")})
            if kind == "miniprogram":
                row.update({k: obj.get(k, "") for k in ("title", "appid", "page")})
        rows.append(row)
    return rows


class WelcomeEditorMixin(inputs.TextCheckMixin, forms.Form):
    """A welcome: ``text_field`` plus the attachments formset (prefix ``att``). Call
    ``welcome_attachments(created_by)`` after ``is_valid()`` for the list to store."""

    text_field = "welcome_text"
    text_max_bytes = 4000  # send_welcome_msg doc 92137
    attachment_kinds: tuple[str, ...] | None = None
    max_attachments = MAX_ATTACHMENTS
    require_content = False  # text or an attachment is required (a welcome of its own)

    def __init__(self, *args: Any, attachments: list[dict[str, Any]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields[self.text_field].widget.attrs["data-preview-text"] = ""
        data = args[0] if args else kwargs.get("data")
        files = args[1] if len(args) > 1 else kwargs.get("files")
        # attachments the editor cannot show as rows (set through the REST API with WeCom media
        # ids or URLs, or an image stored before the editor): kept as they are
        self.legacy_attachments = [
            a
            for a in attachments or []
            if a.get("msgtype") in MEDIA_KINDS and "media" not in (a.get(a.get("msgtype", "")) or {})
        ]
        editable = [a for a in attachments or [] if a not in self.legacy_attachments]
        # a post without the editor's management form (an older client, a script): the attachments
        # are left as they are
        self.attachments_untouched = data is not None and "att-TOTAL_FORMS" not in data
        self.kept_attachments = list(attachments or [])
        if self.attachments_untouched:
            data = files = None
        self.attachments_formset = AttachmentFormSet(
            data,
            files,
            prefix="att",
            initial=initial_rows(editable),
            kinds=self.attachment_kinds,  # type: ignore[call-arg]  # BaseAttachmentFormSet's own
        )

    def is_valid(self) -> bool:
        ok = super().is_valid()
        return (self.attachments_untouched or self.attachments_formset.is_valid()) and ok

    def _attachment_rows(self) -> list[AttachmentForm]:
        fs = self.attachments_formset
        if not fs.is_bound:
            return []
        deleted = {id(f) for f in fs.deleted_forms}
        return [f for f in fs.ordered_forms if id(f) not in deleted]

    def clean(self) -> dict[str, Any]:
        d = super().clean()
        text = d.get(self.text_field) or ""
        if len(text.encode("utf-8")) > self.text_max_bytes:
            self.add_error(self.text_field, _("最多 %(n)d 字节（中文每字 3 字节）") % {"n": self.text_max_bytes})
        if self.require_content and not text and not self.errors and not self.has_attachments():
            self.add_error(self.text_field, _("请填写欢迎语或添加附件"))
        fs = self.attachments_formset
        if not fs.is_bound:
            return d
        if not fs.is_valid():
            if fs.non_form_errors():
                self.add_error(None, _("附件最多 %(n)d 个") % {"n": self.max_attachments})
            return d
        if len(self._attachment_rows()) + len(self.legacy_attachments) > self.max_attachments:
            self.add_error(None, _("附件最多 %(n)d 个") % {"n": self.max_attachments})
        return d

    def has_attachments(self) -> bool:
        if self.attachments_untouched:
            return bool(self.kept_attachments)
        return bool(self._attachment_rows() or self.legacy_attachments)

    def welcome_attachments(self, created_by: str = "") -> list[dict[str, Any]]:
        if self.attachments_untouched:
            return list(self.kept_attachments)
        return [f.to_stored(created_by) for f in self._attachment_rows()] + list(self.legacy_attachments)
