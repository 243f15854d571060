"""Writes of the guide's library: scripts and materials, their categories, and their uses.

Every value is checked here against what WeCom's sendChatMessage accepts (doc 98539): a script's
text at most ``TEXT_MAX`` characters, a link an http(s) URL, a mini-program page ending in
``.html``, media kinds matching the material's kind. The caller's forms check the same and show
the errors; a service never half-writes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.materials.models import Category, Material, Script, Use

TEXT_MAX = 2000
# kinds that carry a stored file: a poster's is its background image
MEDIA_KINDS = {
    "image": "image",
    "video": "video",
    "file": "file",
    "poster": "image",
}  # WeCom's chat text takes more; a script longer than this is not a script
VARIABLES = ("nickname", "employee", "store")
_VAR = re.compile(r"\{(\w+)\}")
HTTP_URL = re.compile(r"^https?://[^\s<>\"']+$")


class LibraryError(ValueError):
    """A value WeCom would refuse, or a reference that is gone; the text is for the operator."""


def unknown_variables(text: str) -> list[str]:
    return sorted({m.group(1) for m in _VAR.finditer(text)} - set(VARIABLES))


def fill(text: str, values: dict[str, str]) -> str:
    """``text`` with its {variables} replaced (an unknown one is left as written)."""
    return _VAR.sub(lambda m: values.get(m.group(1), m.group(0)), text)


@dataclass
class ScriptInput:
    title: str
    content: str
    category_id: int | None = None
    departments: list[int] | None = None
    active: bool = True


def _check_script(data: ScriptInput) -> None:
    if not data.title.strip() or not data.content.strip():
        raise LibraryError(_("标题和内容不能为空。"))
    if len(data.content) > TEXT_MAX:
        raise LibraryError(_("内容最多 %(n)d 个字。") % {"n": TEXT_MAX})
    bad = unknown_variables(data.content)
    if bad:
        raise LibraryError(_("不认识的变量：%(v)s。") % {"v": "、".join("{" + b + "}" for b in bad)})


def save_script(data: ScriptInput, *, script: Script | None = None, operator: str = "") -> Script:
    _check_script(data)
    if data.category_id is not None and not Category.objects.filter(id=data.category_id, kind="script").exists():
        raise LibraryError(_("分类不存在。"))
    s = script or Script(created_by=operator[:150])
    s.title = data.title.strip()[:64]
    s.content = data.content.strip()
    s.category_id = data.category_id
    s.departments = sorted(set(data.departments or []))
    s.active = data.active
    s.save()
    return s


def delete_script(script: Script) -> None:
    script.delete()


@dataclass
class MaterialInput:
    kind: str
    title: str
    description: str = ""
    text: str = ""
    url: str = ""
    media: int | None = None
    cover: int | None = None
    appid: str = ""
    page: str = ""
    tags: list[str] | None = None
    category_id: int | None = None
    departments: list[int] | None = None
    active: bool = True


def check_material(d: MaterialInput) -> None:
    if d.kind not in Material.Kind.values:
        raise LibraryError(_("不支持的素材类型。"))
    if not d.title.strip():
        raise LibraryError(_("标题不能为空。"))
    if d.kind == "text":
        if not d.text.strip():
            raise LibraryError(_("文本素材须有内容。"))
        if len(d.text) > TEXT_MAX:
            raise LibraryError(_("内容最多 %(n)d 个字。") % {"n": TEXT_MAX})
    if d.kind in MEDIA_KINDS and d.media is None:
        raise LibraryError(_("请上传文件。"))
    if d.kind == "link" and not HTTP_URL.match(d.url or ""):
        raise LibraryError(_("链接须以 http:// 或 https:// 开头。"))
    if d.kind == "miniprogram":
        if not d.appid.strip():
            raise LibraryError(_("请填写小程序 AppID（须已关联到企业）。"))
        if not (d.page or "").split("?")[0].endswith(".html"):
            raise LibraryError(_("小程序页面路径须以 .html 结尾，例如 pages/index.html。"))
        if d.cover is None:
            raise LibraryError(_("小程序卡片须有封面图。"))


def save_material(data: MaterialInput, *, material: Material | None = None, operator: str = "") -> Material:
    check_material(data)
    if data.category_id is not None and not Category.objects.filter(id=data.category_id, kind="material").exists():
        raise LibraryError(_("分类不存在。"))
    m = material or Material(created_by=operator[:150])
    m.kind = data.kind
    m.title = data.title.strip()[:64]
    m.description = data.description.strip()[:512]
    m.text = data.text.strip() if data.kind == "text" else ""
    m.url = data.url.strip() if data.kind == "link" else ""
    m.media = data.media if data.kind in MEDIA_KINDS else None
    m.cover = data.cover if data.kind in ("link", "miniprogram") else None
    m.appid = data.appid.strip() if data.kind == "miniprogram" else ""
    m.page = data.page.strip() if data.kind == "miniprogram" else ""
    m.tags = sorted({t.strip()[:16] for t in (data.tags or []) if t.strip()})[:20]
    m.category_id = data.category_id
    m.departments = sorted(set(data.departments or []))
    m.active = data.active
    m.save()
    return m


def delete_material(material: Material) -> None:
    material.delete()


def add_category(kind: str, name: str) -> Category:
    name = name.strip()[:32]
    if not name:
        raise LibraryError(_("分类名不能为空。"))
    category, _created = Category.objects.get_or_create(kind=kind, name=name)
    return category


def record_use(item: str, item_id: int, *, employee_userid: str, chat_type: str = "", chat_key: str = "") -> Use:
    """A send from the sidebar: one ``Use`` row and the item's counter, in one transaction."""
    model: Any = Script if item == Use.Item.SCRIPT else Material
    with transaction.atomic():
        if model.objects.filter(id=item_id).update(uses=F("uses") + 1) == 0:
            raise LibraryError(_("素材或话术已被删除。"))
        return Use.objects.create(
            item=item,
            item_id=item_id,
            employee_userid=employee_userid[:64],
            chat_type=chat_type[:8],
            chat_key=chat_key[:64],
            at=timezone.now(),
        )


def split_tags(text: str) -> list[str]:
    return [t for t in re.split(r"[,，、\s]+", text or "") if t]


def departments_of(values: Iterable[Any]) -> list[int]:
    return sorted({int(v) for v in values if str(v).isdigit()})
