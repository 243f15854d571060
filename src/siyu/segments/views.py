"""Console pages of the segments app: the builder with its live count, saved segments (list,
detail with the count over time and the member list, export, archive), the one-click segment of an
RFM class or stage, and the segment picker's search. Every read is in the viewer's data scope."""

from __future__ import annotations

import json
import time

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from siyu.accounts.permissions import role_required
from siyu.accounts.selectors import data_scope
from siyu.core import pickers
from siyu.segments import describe, exports, selectors, services
from siyu.segments.forms import QuickForm, SegmentForm, clean_definition, prefill_definition

PICKER_SOURCES = tuple(dict.fromkeys(describe.PICKER_SOURCES.values()))


def _picker_templates(scope) -> list[dict]:
    """One empty picker per source, rendered by core.pickers' own widget: the builder clones them."""
    out = []
    for src in PICKER_SOURCES:
        widget = pickers.PickerWidget(src)
        widget.scope = scope
        out.append({"source": src, "html": widget.render(f"pick_{src}", [])})
    return out


def _strings() -> dict[str, str]:
    return {
        "and": _("且（满足全部）"),
        "or": _("或（满足任一）"),
        "not": _("非"),
        "match": _("条件组"),
        "combine": _("组合方式"),
        "add_condition": _("+ 条件"),
        "add_group": _("+ 条件组"),
        "remove": _("删除"),
        "field": _("字段"),
        "operator": _("运算"),
        "event_type": _("事件类型"),
        "in_last": _("近"),
        "days": _("天"),
        "any_time": _("不限"),
        "to": _("至"),
        "texts_hint": _("多个值用逗号分隔"),
        "empty": _("没有条件：全部客户"),
        "unknown_field": _("未知字段"),
        "about": _("约"),
        "persons": _("人"),
        "of_which": _("，其中"),
        "with_wecom": _("位有企业微信好友"),
        "took": _("（用时 %s 毫秒）"),
        "failed": _("计数失败，请稍后再试"),
    }


def _builder(request, form, segment=None, status=200):
    scope = data_scope(request.user)
    raw = form["definition"].value() or ""
    try:
        definition = json.loads(raw) if isinstance(raw, str) and raw.strip() else raw or {}
    except ValueError:
        definition = {}
    return render(
        request,
        "segments/builder.html",
        {
            "form": form,
            "segment": segment,
            "catalog": describe.catalog(),
            "labels": describe.picker_labels(definition, scope),
            "strings": _strings(),
            "picker_templates": _picker_templates(scope),
        },
        status=status,
    )


@role_required()
def build(request, pk: int | None = None):
    """New segment (``?rfm_class=`` / ``?stage=`` / ``?value_band=`` prefill it) or edit one."""
    scope = data_scope(request.user)
    segment = selectors.segment_for(request.user, scope, pk) if pk else None
    if request.method == "POST":
        form = SegmentForm(request.POST, scope=scope)
        if form.is_valid():
            d = form.cleaned_data
            if segment is None:
                segment = services.save_segment(
                    d["name"], d["definition"], user=request.user, description=d["description"]
                )
            else:
                segment = services.update_segment(
                    segment, name=d["name"], definition=d["definition"], description=d["description"]
                )
            messages.success(request, _("分群已保存"))
            return redirect("segments:detail", segment.id)
        return _builder(request, form, segment, status=400)
    if segment is not None:
        initial = {
            "name": segment.name,
            "description": segment.description,
            "definition": json.dumps(segment.definition, ensure_ascii=False),
        }
    else:
        initial = {"definition": json.dumps(prefill_definition(request.GET), ensure_ascii=False)}
    return _builder(request, SegmentForm(initial=initial, scope=scope), segment)


@role_required()
@require_POST
def count(request):
    """The live count of the posted definition (nothing saved): persons, and those of them with a
    WeCom customer followed by someone; errors as JSON (400), never a 500."""
    scope = data_scope(request.user)
    try:
        definition = clean_definition(request.POST.get("definition", ""), scope)
    except ValidationError as e:
        return JsonResponse({"ok": False, "error": "；".join(str(m) for m in e.messages)}, status=400)
    started = time.perf_counter()
    persons, customers = services.count_with_wecom(definition, scope)
    ms = round((time.perf_counter() - started) * 1000, 1)
    return JsonResponse({"ok": True, "persons": persons, "customers": customers, "ms": ms})


@role_required()
@require_POST
def quick(request):
    """One click: a saved segment of an RFM class or a lifecycle stage, then its page."""
    form = QuickForm(request.POST)
    if not form.is_valid():
        messages.error(request, "；".join(str(m) for m in form.errors.get("__all__", [_("参数无效")])))
        return redirect("segments:list")
    segment = services.save_segment(form.name(), form.definition(), user=request.user)
    messages.success(request, _("分群已保存"))
    return redirect("segments:detail", segment.id)


@role_required()
def segment_list(request):
    scope = data_scope(request.user)
    archived = request.GET.get("archived") == "1"
    rows = selectors.segments_for(request.user, scope, archived=archived)[:500]
    # the stored count is over every person: shown to those who see everyone
    return render(request, "segments/list.html", {"rows": rows, "archived": archived, "counts": scope.everything})


def _after(request) -> int | None:
    raw = str(request.GET.get("after", ""))
    return int(raw) if raw.isdigit() and len(raw) < 19 else None


@role_required()
def detail(request, pk: int):
    scope = data_scope(request.user)
    segment = selectors.segment_for(request.user, scope, pk)
    after = _after(request)
    try:
        page = selectors.member_page(segment.definition, scope, after=after)
        persons, customers = services.count_with_wecom(segment.definition, scope)
        error = ""
    except ValidationError as e:  # a definition that no longer parses (a custom field removed)
        page, persons, customers, error = selectors.MemberPage(), 0, 0, "；".join(e.messages)
    # the recorded counts are over every person: shown to those who see everyone
    history = list(reversed(selectors.count_history(segment))) if scope.everything else []
    chart = {
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 48, "right": 16, "top": 24, "bottom": 32},
        "xAxis": {"type": "category", "data": [timezone.localtime(h.at).strftime("%m-%d %H:%M") for h in history]},
        "yAxis": {"type": "value", "minInterval": 1},
        "series": [{"type": "line", "name": _("人数"), "data": [h.count for h in history], "smooth": True}],
    }
    return render(
        request,
        "segments/detail.html",
        {
            "segment": segment,
            "description": describe.describe(segment.definition, scope),
            "members": selectors.member_details(page.items),
            "next_after": page.next_after,
            "after": after,
            "persons": persons,
            "customers": customers,
            "error": error,
            "chart": chart,
            "has_history": bool(history),
            "show_recorded": scope.everything,
        },
    )


@role_required()
@require_POST
def recount(request, pk: int):
    scope = data_scope(request.user)
    segment = selectors.segment_for(request.user, scope, pk)
    try:
        services.recount(segment)
    except ValidationError as e:
        messages.error(request, "；".join(e.messages))
    return redirect("segments:detail", segment.id)


@role_required()
@require_POST
def archive(request, pk: int):
    scope = data_scope(request.user)
    segment = selectors.segment_for(request.user, scope, pk)
    services.archive_segment(segment, archived=request.POST.get("restore") != "1")
    messages.success(request, _("已归档") if request.POST.get("restore") != "1" else _("已恢复"))
    return redirect("segments:list")


@role_required()
def export(request, pk: int, fmt: str):
    scope = data_scope(request.user)
    segment = selectors.segment_for(request.user, scope, pk)
    if fmt not in ("csv", "xlsx"):
        raise Http404("unknown export format")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    if fmt == "xlsx":
        response = HttpResponse(
            exports.console_xlsx(segment.definition, scope),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
        response["Content-Disposition"] = f'attachment; filename="segment-{segment.id}-{stamp}.xlsx"'
        return response
    stream = StreamingHttpResponse(
        exports.console_csv(segment.definition, scope), content_type="text/csv; charset=utf-8"
    )
    stream["Content-Disposition"] = f'attachment; filename="segment-{segment.id}-{stamp}.csv"'
    return stream


@role_required()
def pick(request):
    """The segment picker's search (the broadcast composer): saved segments by name, in scope."""
    scope = data_scope(request.user)
    items, more = selectors.search_segments(selectors.Viewer(scope, request.user.id), pickers.query(request.GET))
    return pickers.respond(items, more=more)
