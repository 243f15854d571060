"""Console forms of the guide's library. Uploads are checked by content (``siyu.wecom.media``)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from siyu.core import inputs, pickers
from siyu.materials import selectors, services
from siyu.materials.models import Material, Script
from siyu.wecom.media import services as media_services

VARIABLE_HELP = _("可用变量：{nickname} 客户称呼（备注名或昵称）、{employee} 导购姓名、{store} 导购所在门店。")


class _LibraryForm(inputs.TextCheckMixin, forms.Form):
    category = forms.TypedChoiceField(label=_("分类"), required=False, coerce=int, empty_value=None)
    new_category = forms.CharField(label=_("新分类"), required=False, max_length=32)
    departments = pickers.PickerField(
        "departments", coerce=int, tree="pick", label=_("可见部门"), required=False,
        help_text=_("不选：所有员工可见；选了部门：只有这些部门及其下级部门的员工可见。"),
    )  # fmt: skip
    active = forms.BooleanField(label=_("启用"), required=False, initial=True)
    kind_name = "script"

    def __init__(self, *args: Any, scope: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices: list[tuple[Any, str]] = [("", "—")]
        choices += selectors.category_choices(self.kind_name)
        category = self.fields["category"]
        assert isinstance(category, forms.TypedChoiceField)
        category.choices = choices
        pickers.bind(self, scope)

    def category_id(self) -> int | None:
        """The chosen category, or the new one typed (created now)."""
        name = (self.cleaned_data.get("new_category") or "").strip()
        if name:
            return services.add_category(self.kind_name, name).id
        value: int | None = self.cleaned_data.get("category")
        return value


class ScriptForm(_LibraryForm):
    title = forms.CharField(label=_("标题"), max_length=64)
    content = forms.CharField(
        label=_("内容"), max_length=services.TEXT_MAX, widget=forms.Textarea(attrs={"rows": 5}), help_text=VARIABLE_HELP
    )
    field_order = ["title", "content", "category", "new_category", "departments", "active"]

    @classmethod
    def initial_of(cls, s: Script) -> dict[str, Any]:
        return {
            "title": s.title,
            "content": s.content,
            "category": s.category_id,
            "departments": [str(d) for d in s.departments],
            "active": s.active,
        }

    def clean_content(self) -> str:
        value: str = self.cleaned_data["content"]
        bad = services.unknown_variables(value)
        if bad:
            raise forms.ValidationError(_("不认识的变量：%(v)s。") % {"v": "、".join("{" + b + "}" for b in bad)})
        return value

    def to_input(self) -> services.ScriptInput:
        d = self.cleaned_data
        return services.ScriptInput(
            title=d["title"],
            content=d["content"],
            category_id=d.get("category"),
            departments=list(d.get("departments") or []),
            active=bool(d.get("active")),
        )


class MaterialForm(_LibraryForm):
    kind_name = "material"
    kind = forms.ChoiceField(label=_("类型"), choices=Material.Kind.choices)
    title = forms.CharField(label=_("标题"), max_length=64)
    description = forms.CharField(
        label=_("描述"), max_length=512, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    text = forms.CharField(
        label=_("文本内容"), max_length=services.TEXT_MAX, required=False, widget=forms.Textarea(attrs={"rows": 4})
    )
    url = forms.CharField(
        label=_("链接地址"), max_length=2048, required=False, help_text=_("以 http:// 或 https:// 开头")
    )
    upload = forms.FileField(
        label=_("文件"),
        required=False,
        help_text=_(
            "图片 JPG/PNG ≤ 2 MB，视频 MP4 ≤ 10 MB，文件 ≤ 20 MB；海报：背景图，导购发送时自动加上自己的二维码"
        ),
    )
    cover_upload = forms.FileField(label=_("封面图"), required=False, help_text=_("链接和小程序卡片的封面，JPG/PNG"))
    appid = forms.CharField(label=_("小程序 AppID"), max_length=64, required=False)
    page = forms.CharField(label=_("小程序页面"), max_length=512, required=False, help_text=_("例如 pages/index.html"))
    tags = forms.CharField(label=_("标签"), max_length=200, required=False, help_text=_("用逗号分隔，用于搜索"))
    field_order = [
        "kind", "title", "description", "text", "url", "upload", "cover_upload", "appid", "page", "tags",
        "category", "new_category", "departments", "active",
    ]  # fmt: skip

    def __init__(self, *args: Any, instance: Material | None = None, operator: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.instance = instance
        self.operator = operator
        self.media_pk: int | None = instance.media if instance else None
        self.cover_pk: int | None = instance.cover if instance else None

    @classmethod
    def initial_of(cls, m: Material) -> dict[str, Any]:
        return {
            "kind": m.kind,
            "title": m.title,
            "description": m.description,
            "text": m.text,
            "url": m.url,
            "appid": m.appid,
            "page": m.page,
            "tags": ", ".join(m.tags),
            "category": m.category_id,
            "departments": [str(d) for d in m.departments],
            "active": m.active,
        }

    def _store(self, field: str, kind: str) -> int | None:
        f = self.cleaned_data.get(field)
        if not f:
            return None
        try:
            stored = media_services.store(kind, f.name, f.read(), f.content_type or "", created_by=self.operator)
        except media_services.MediaError as e:
            self.add_error(field, str(e))
            return None
        return stored.id

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        kind = data.get("kind")
        if kind in services.MEDIA_KINDS:
            pk = self._store("upload", services.MEDIA_KINDS[kind])
            self.media_pk = pk or (self.media_pk if self.instance and self.instance.kind == kind else None)
            if self.media_pk is None and "upload" not in self.errors:
                self.add_error("upload", _("请上传文件。"))
        if kind in ("link", "miniprogram"):
            self.cover_pk = self._store("cover_upload", "image") or self.cover_pk
        if self.errors:
            return data
        try:
            services.check_material(self.to_input())
        except services.LibraryError as e:
            self.add_error(None, str(e))
        return data

    def to_input(self) -> services.MaterialInput:
        d = self.cleaned_data
        return services.MaterialInput(
            kind=d["kind"],
            title=d["title"],
            description=d.get("description") or "",
            text=d.get("text") or "",
            url=d.get("url") or "",
            media=self.media_pk,
            cover=self.cover_pk,
            appid=d.get("appid") or "",
            page=d.get("page") or "",
            tags=services.split_tags(d.get("tags") or ""),
            category_id=d.get("category"),
            departments=list(d.get("departments") or []),
            active=bool(d.get("active")),
        )
