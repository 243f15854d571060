"""客户群 (customer groups): the list with filters and a group's members and join/leave history.
Scoped by the viewer's data scope (siyu.groups.selectors); another's group answers 403."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from siyu.accounts.permissions import role_required
from siyu.accounts.selectors import data_scope
from siyu.core import inputs, pickers
from siyu.core.paging import PER_PAGE, paginate
from siyu.groups import selectors, services
from siyu.groups.forms import GroupFilterPickForm
from siyu.groups.models import GroupChat
from siyu.org import selectors as org_selectors


@role_required()
def group_list(request):
    scope = data_scope(request.user)
    owner_id = inputs.query_id(request.GET, "owner")
    department_id = inputs.query_id(request.GET, "department")
    departments = org_selectors.departments_for_scope(scope)
    if department_id is not None and not departments.filter(id=department_id).exists():
        department_id = None  # a department outside the viewer's scope filters nothing in
    status = request.GET.get("status", "")
    status = status if status in dict(GroupChat.STATUS) else ""
    q = request.GET.get("q", "").strip()[:64]
    tag_id = inputs.query_id(request.GET, "tag")
    page = paginate(
        request,
        selectors.group_list(scope, owner_id=owner_id, department_id=department_id, status=status, q=q, tag_id=tag_id),
    )
    return render(
        request,
        "groups/list.html",
        {
            "page": page,
            "pick": GroupFilterPickForm(initial={"owner": owner_id, "department": department_id}, scope=scope),
            "statuses": GroupChat.STATUS,
            "group_tags": selectors.group_tags(),
            "filters": {
                "tag": tag_id,
                "owner": owner_id,
                "department": department_id,
                "status": status,
                "q": q,
            },
        },
    )


@role_required()
def group_detail(request, group_id: int):
    try:
        group = selectors.group_detail(data_scope(request.user), group_id)
    except selectors.OutOfScope:
        raise PermissionDenied(_("这个客户群不在你的数据范围内。")) from None
    if group is None:
        raise Http404
    if request.method == "POST":  # the group's tags (Siyu's own group tags)
        ids = inputs.id_list(request.POST.getlist("tags"))
        try:
            services.set_group_tags(group, ids, new_tag=request.POST.get("new_tag", "")[:64])
            messages.success(request, _("群标签已保存。"))
        except services.GroupTagError as e:
            messages.error(request, str(e))
        return redirect("groups:detail", group_id=group.id)
    members = selectors.member_querysets(group)
    page = paginate(request, members["current"])  # ?page= : current members
    history = Paginator(members["history"], PER_PAGE).get_page(request.GET.get("hpage"))  # ?hpage=
    page.object_list = selectors.name_members(page.object_list)
    history.object_list = selectors.name_members(history.object_list)
    return render(
        request,
        "groups/detail.html",
        {
            "group": group,
            "group_tags": selectors.group_tags(),
            "tag_ids": selectors.tag_ids_of(group),
            "page": page,
            "history": history,
            "employees": members["employees"],
            "customers": members["customers"],
        },
    )


# --- picker endpoints (siyu.core.pickers): JSON, scoped by the selectors ----------------------
@role_required()
def pick(request):
    by = "chat_id" if request.GET.get("by") == "chat_id" else "id"
    items, more = selectors.search_groups(
        data_scope(request.user), pickers.query(request.GET), by=by, limit=pickers.SEARCH_LIMIT
    )
    return pickers.respond(items, more=more)


@role_required()
def pick_tags(request):
    items, more = selectors.search_group_tags(pickers.query(request.GET), limit=pickers.TAG_LIMIT)
    return pickers.respond(items, more=more)
