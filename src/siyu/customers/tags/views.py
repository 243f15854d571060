"""客户标签 (tag management): the corp tag library with per-tag customer counts.

Every role may look (counts follow the viewer's data scope); admins and operators may change
tags. Each change is sent to WeCom first (siyu.customers.tags.services) and the page then shows
what WeCom answered; a refusal is shown with its errcode and meaning.
"""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from siyu.accounts.permissions import Role, role_required
from siyu.accounts.selectors import data_scope, role_of
from siyu.core import pickers
from siyu.customers.tags import selectors as tag_selectors
from siyu.customers.tags import services as tag_services
from siyu.wecom import gateway

EDITORS = (Role.ADMIN, Role.OPERATOR)


@role_required()
def tag_list(request):
    role = role_of(request.user)
    return render(
        request,
        "customers/tags.html",
        {
            "library": tag_selectors.tag_library(data_scope(request.user)),
            "total": tag_selectors.live_tag_total(),
            "can_edit": role in EDITORS,
        },
    )


def _done(request, fn, success: str):
    try:
        fn()
    except tag_services.TagChangeError as e:
        messages.error(request, e.message)
    except gateway.WeComAPIError as e:  # the refresh after a successful change
        messages.error(request, tag_services.TagChangeError(e.errcode, e.errmsg).message)
    else:
        messages.success(request, success)
    return redirect("tags:list")


@role_required(*EDITORS)
@require_POST
def group_create(request):
    name = request.POST.get("name", "").strip()
    names = tag_services.split_names(request.POST.get("tags", ""))
    if not name:
        messages.error(request, _("请填写标签组名称。"))
        return redirect("tags:list")
    if not names:
        messages.error(request, _("标签组至少需要一个标签。"))
        return redirect("tags:list")
    return _done(
        request,
        lambda: tag_services.create_group(name, names),
        _("标签组“%(name)s”已创建。") % {"name": name},
    )


@role_required(*EDITORS)
@require_POST
def tags_add(request, group_id: str):
    names = tag_services.split_names(request.POST.get("tags", ""))
    if not names:
        messages.error(request, _("请填写标签名称。"))
        return redirect("tags:list")
    return _done(
        request,
        lambda: tag_services.add_tags(group_id, names),
        _("已添加 %(n)s 个标签。") % {"n": len(names)},
    )


@role_required(*EDITORS)
@require_POST
def rename(request, obj_id: str):
    name = request.POST.get("name", "").strip()
    if not name:
        messages.error(request, _("名称不能为空。"))
        return redirect("tags:list")
    return _done(
        request,
        lambda: tag_services.rename(obj_id, name),
        _("已重命名为“%(name)s”。") % {"name": name},
    )


@role_required(*EDITORS)
@require_POST
def move(request, obj_id: str):
    direction = "up" if request.POST.get("direction") == "up" else "down"
    return _done(request, lambda: tag_services.move(obj_id, direction), _("顺序已更新。"))


@role_required(*EDITORS)
@require_POST
def delete_tag(request, tag_id: str):
    return _done(request, lambda: tag_services.delete_tag(tag_id), _("标签已删除。"))


@role_required(*EDITORS)
@require_POST
def delete_group(request, group_id: str):
    return _done(request, lambda: tag_services.delete_group(group_id), _("标签组已删除。"))


@role_required(*EDITORS)
@require_POST
def refresh(request):
    return _done(request, tag_services.refresh_all, _("已从企业微信重新读取标签库。"))


@role_required()
def pick(request):
    """The tag pickers' search (siyu.core.pickers): JSON, grouped by tag group."""
    by = "tag_id" if request.GET.get("by") == "tag_id" else "id"
    items, more = tag_selectors.search_tags(pickers.query(request.GET), by=by, limit=pickers.TAG_LIMIT)
    return pickers.respond(items, more=more)
