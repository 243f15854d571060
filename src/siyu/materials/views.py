"""Console pages of the guide's library (话术库, 素材库): lists with search, add, edit, delete."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from siyu.accounts.permissions import role_required
from siyu.accounts.selectors import data_scope
from siyu.core import inputs
from siyu.materials import selectors, services
from siyu.materials.forms import MaterialForm, ScriptForm
from siyu.org import selectors as org_selectors
from siyu.wecom.media import selectors as media_selectors

EDITORS = ("admin", "operator")


def _label(items, media=None) -> None:
    """Names for the page: each item's departments, and a material's file."""
    names = org_selectors.department_names({d for i in items for d in i.departments})
    for i in items:
        i.department_names = [names.get(d, str(d)) for d in i.departments]
        if media is not None:
            i.media_info = media.get(i.media) if getattr(i, "media", None) else None


def _uses(item: str, pk: int) -> list[dict]:
    rows = selectors.use_counts_by_employee(item, pk)
    names = org_selectors.names_by_userid(u["employee_userid"] for u in rows)
    return [{"name": names.get(u["employee_userid"]) or u["employee_userid"], "n": u["n"]} for u in rows]


def _saved(request, form, save, done: str) -> bool:
    """Save a valid form through ``save(data)`` (its category made first if new); the service's
    refusal becomes the form's error. True once saved (``done`` is the flash)."""
    if not form.is_valid():
        return False
    data = form.to_input()
    data.category_id = form.category_id()
    try:
        save(data)
    except services.LibraryError as e:
        form.add_error(None, str(e))
        return False
    messages.success(request, done)
    return True


@role_required(*EDITORS)
def script_list(request):
    scope = data_scope(request.user)
    form = ScriptForm(scope=scope)
    if request.method == "POST":
        form = ScriptForm(request.POST, scope=scope)
        if _saved(request, form, lambda d: services.save_script(d, operator=request.user.username), _("话术已添加。")):
            return redirect("materials:scripts")
    q = request.GET.get("q", "")
    category = inputs.query_id(request.GET, "category")
    items = list(selectors.scripts(q, category)[:500])
    context = {
        "items": items,
        "form": form,
        "q": q,
        "category": category,
        "categories": selectors.categories("script"),
    }
    _label(items)
    return inputs.refused_if_invalid(render(request, "materials/scripts.html", context), form)


@role_required(*EDITORS)
def script_edit(request, pk: int):
    script = selectors.script_by_id(pk)
    if script is None:
        raise Http404
    scope = data_scope(request.user)
    form = ScriptForm(initial=ScriptForm.initial_of(script), scope=scope)
    if request.method == "POST":
        if request.POST.get("delete"):
            services.delete_script(script)
            messages.success(request, _("话术已删除。"))
            return redirect("materials:scripts")
        form = ScriptForm(request.POST, scope=scope)
        if _saved(request, form, lambda d: services.save_script(d, script=script), _("话术已保存。")):
            return redirect("materials:scripts")
    context = {"item": script, "form": form, "uses": _uses("script", script.id)}
    return inputs.refused_if_invalid(render(request, "materials/script_edit.html", context), form)


@role_required(*EDITORS)
def material_list(request):
    scope = data_scope(request.user)
    form = MaterialForm(scope=scope, operator=request.user.username)
    if request.method == "POST":
        form = MaterialForm(request.POST, request.FILES, scope=scope, operator=request.user.username)
        save = lambda d: services.save_material(d, operator=request.user.username)  # noqa: E731
        if _saved(request, form, save, _("素材已添加。")):
            return redirect("materials:materials")
    q = request.GET.get("q", "")
    category = inputs.query_id(request.GET, "category")
    kind = request.GET.get("kind", "")
    items = list(selectors.materials(q, category, kind if kind in dict(selectors.kind_choices()) else "")[:500])
    context = {
        "items": items,
        "form": form,
        "q": q,
        "category": category,
        "kind": kind,
        "kinds": selectors.kind_choices(),
        "categories": selectors.categories("material"),
    }
    _label(items, media_selectors.infos({i.media for i in items if i.media}))
    return inputs.refused_if_invalid(render(request, "materials/materials.html", context), form)


@role_required(*EDITORS)
def material_edit(request, pk: int):
    material = selectors.material_by_id(pk)
    if material is None:
        raise Http404
    scope = data_scope(request.user)
    form = MaterialForm(initial=MaterialForm.initial_of(material), scope=scope, instance=material)
    if request.method == "POST":
        if request.POST.get("delete"):
            services.delete_material(material)
            messages.success(request, _("素材已删除。"))
            return redirect("materials:materials")
        form = MaterialForm(request.POST, request.FILES, scope=scope, instance=material, operator=request.user.username)
        if _saved(request, form, lambda d: services.save_material(d, material=material), _("素材已保存。")):
            return redirect("materials:materials")
    context = {
        "item": material,
        "form": form,
        "uses": _uses("material", material.id),
    }
    _label([material], media_selectors.infos([material.media] if material.media else []))
    return inputs.refused_if_invalid(render(request, "materials/material_edit.html", context), form)
