"""Console pages of the profiles app (客户数据): persons list, the 360° profile page with its
registered sections, merge / unmerge, identity conflicts, custom field settings. Every read goes
through the scoped selectors (``data_scope(request.user)``): a person out of scope is a 404."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from siyu.accounts.permissions import Role, role_required
from siyu.accounts.selectors import data_scope, role_of
from siyu.core import inputs
from siyu.customers import selectors as customer_selectors
from siyu.profiles import sections, selectors, services
from siyu.profiles.forms import FieldForm, ProfileEditForm
from siyu.profiles.models import IdentityConflict, ProfileHistory

OPERATORS = (Role.ADMIN, Role.OPERATOR)


def _is_operator(request) -> bool:
    return role_of(request.user) in OPERATORS


@role_required()
def person_list(request):
    scope = data_scope(request.user)
    q = request.GET.get("q", "")[:64]
    page = selectors.person_page(scope, q, after=request.GET.get("after", ""), before=request.GET.get("before", ""))
    base = {"q": q} if q else {}
    return render(
        request,
        "profiles/list.html",
        {
            "page": page,
            "q": q,
            "next_qs": urlencode({**base, "after": page.next_cursor}) if page.next_cursor else "",
            "prev_qs": urlencode({**base, "before": page.prev_cursor}) if page.prev_cursor else "",
            "full_phone": _is_operator(request),
        },
    )


def _sections(request, person, cluster: list[int]) -> list[dict]:
    """The registered sections in order, each rendered with the context its function returns
    (plus ``person`` and ``section``); a section whose function returns None is left out."""
    out = []
    for s in sections.all_sections():
        ctx = s.fn(person.id, cluster, request.user)
        if ctx is not None:
            html = render_to_string(s.template, {**ctx, "person": person, "section": s}, request=request)
            out.append({"key": s.key, "label": s.label, "html": html})
    return out


@role_required()
def person_detail(request, profile_id: int):
    scope = data_scope(request.user)
    view = selectors.profile_view(scope, profile_id, full_phone=_is_operator(request))  # 404 out of scope
    person = view["person"]
    if person.id != profile_id:  # a merged profile's address shows its person
        return redirect("profiles:detail", profile_id=person.id)
    form = ProfileEditForm(person=person, custom_fields=view["custom_fields"], attributes=_is_operator(request))
    return render(request, "profiles/detail.html", _detail_context(request, view, form))


def _detail_context(request, view: dict, form: ProfileEditForm) -> dict:
    return {
        **view,
        "form": form,
        "sections": _sections(request, view["person"], view["cluster"]),
        "can_merge": _is_operator(request),
        "history_kinds": dict(ProfileHistory.Kind.choices),
    }


@role_required()
@require_POST
def person_edit(request, profile_id: int):
    scope = data_scope(request.user)
    view = selectors.profile_view(scope, profile_id, full_phone=_is_operator(request))
    person = view["person"]
    form = ProfileEditForm(
        request.POST, person=person, custom_fields=view["custom_fields"], attributes=_is_operator(request)
    )
    if form.is_valid() and form.save(operator=request.user.get_username()) is not None:
        messages.success(request, _("客户档案已保存。"))
        return redirect("profiles:detail", profile_id=person.id)
    response = render(request, "profiles/detail.html", _detail_context(request, view, form))
    response.status_code = 400
    return response


@role_required()
def customer_person(request, customer_id: int):
    """The person of a WeCom customer (the customer page links here)."""
    scope = data_scope(request.user)
    customer_selectors.customer_in_scope(scope, customer_id)  # 404 / 403 like the customer page
    person = selectors.person_ids_of_customers([customer_id]).get(customer_id)
    if person is None:
        messages.info(request, _("这位客户的档案正在建立，请稍后再试。"))
        return redirect("customers:detail", customer_id=customer_id)
    return redirect("profiles:detail", profile_id=person)


# --- merge / unmerge (admin, operator) ------------------------------------------------------------
@role_required(*OPERATORS)
def merge_page(request, profile_id: int):
    scope = data_scope(request.user)
    person = selectors.person_in_scope(scope, profile_id)
    q = request.GET.get("q", "")[:64]
    candidates = []
    if q.strip():
        rows = selectors.person_page(scope, q, limit=20).rows
        candidates = [{"p": p, "refusal": services.merge_refusal(person.id, p.id)} for p in rows if p.id != person.id]
    return render(request, "profiles/merge.html", {"person": person, "q": q, "candidates": candidates})


@role_required(*OPERATORS)
@require_POST
def merge(request, profile_id: int):
    scope = data_scope(request.user)
    person = selectors.person_in_scope(scope, profile_id)
    try:
        other = selectors.person_in_scope(scope, int(request.POST.get("other", "")))
    except ValueError as exc:
        raise Http404 from exc
    survivor, merged = (other, person) if request.POST.get("survivor") == "other" else (person, other)
    try:
        services.merge(survivor.id, merged.id, operator=request.user.get_username())
    except services.MergeRefused as exc:
        messages.error(request, str(exc))
        return redirect(reverse("profiles:merge", args=[person.id]) + "?" + urlencode({"q": request.POST.get("q", "")}))
    messages.success(
        request, _("已合并：%(other)s 并入 %(name)s。") % {"other": merged.name or "—", "name": survivor.name or "—"}
    )
    return redirect("profiles:detail", profile_id=survivor.id)


@role_required(*OPERATORS)
@require_POST
def unmerge(request, profile_id: int):
    scope = data_scope(request.user)
    person = selectors.person_in_scope(scope, profile_id)  # the person the merged profile belongs to
    if person.id == profile_id:
        messages.error(request, _("这个档案没有被合并，无需拆分。"))
        return redirect("profiles:detail", profile_id=person.id)
    try:
        services.unmerge(profile_id, operator=request.user.get_username())
    except services.MergeRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("已拆分，拆出的档案恢复为独立的客户档案。"))
    return redirect("profiles:detail", profile_id=person.id)


# --- conflicts -------------------------------------------------------------------------------------
@role_required(*OPERATORS)
def conflict_list(request):
    status = request.GET.get("status", "open")
    if status not in IdentityConflict.Status.values and status != "all":
        status = "open"
    rows = selectors.conflicts("" if status == "all" else status)
    items = [
        {
            "c": c,
            "refusal": services.merge_refusal(selectors.live_id(c.profile_id) or 0, selectors.live_id(c.other_id) or 0),
        }
        for c in rows
    ]
    return render(
        request,
        "profiles/conflicts.html",
        {"items": items, "status": status, "statuses": IdentityConflict.Status.choices},
    )


@role_required(*OPERATORS)
@require_POST
def conflict_resolve(request, conflict_id: int):
    c = selectors.conflict_by_id(conflict_id)
    action = request.POST.get("action", "")
    survivor = request.POST.get("survivor", "")
    try:
        services.resolve_conflict(
            c.id,
            action,
            operator=request.user.get_username(),
            survivor_id=int(survivor) if survivor.isdigit() else None,
        )
    except services.MergeRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("冲突已处理。"))
    return redirect("profiles:conflicts")


# --- custom field settings ---------------------------------------------------------------------------
@role_required(*OPERATORS)
def field_list(request):
    form = FieldForm()
    if request.method == "POST":
        form = FieldForm(request.POST)
        if form.is_valid() and form.save() is not None:
            messages.success(request, _("字段已添加。"))
            return redirect("profiles:fields")
    return inputs.refused_if_invalid(
        render(request, "profiles/fields.html", {"fields": selectors.fields(active_only=False), "form": form}), form
    )


@role_required(*OPERATORS)
def field_edit(request, field_id: int):
    field = selectors.field_by_id(field_id)
    form = FieldForm(instance=field)
    if request.method == "POST":
        if request.POST.get("delete"):
            services.delete_field(field)
            messages.success(request, _("字段已删除。"))
            return redirect("profiles:fields")
        form = FieldForm(request.POST, instance=field)
        if form.is_valid() and form.save() is not None:
            messages.success(request, _("字段已保存。"))
            return redirect("profiles:fields")
    return inputs.refused_if_invalid(render(request, "profiles/field_edit.html", {"field": field, "form": form}), form)
