"""Console pages of the insights app: the RFM page, the lifecycle funnel and the settings (with
"recompute now" and its progress). Thin: reads through selectors, writes through services."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from siyu.accounts.permissions import Role, role_required
from siyu.accounts.selectors import data_scope
from siyu.insights import compute, selectors, services
from siyu.insights.forms import SettingsForm

SETTINGS_ROLES = (Role.ADMIN, Role.OPERATOR)
SEGMENT_NEW = "/segments/new/"  # the segment builder (segments' console), prefilled by query
SEGMENT_QUICK = "/segments/quick/"  # one-click "save as segment" (POST rfm_class / stage)


def _routed(path: str) -> bool:
    """Whether a page of another part is installed (links to it are shown only then)."""
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


def _segment_links() -> dict[str, str]:
    return {
        "segment_new": SEGMENT_NEW if _routed(SEGMENT_NEW) else "",
        "segment_quick": SEGMENT_QUICK if _routed(SEGMENT_QUICK) else "",
    }


def _bar(labels: list[str], values: list[int], name: str) -> dict[str, Any]:
    return {
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 48, "right": 16, "top": 24, "bottom": 32},
        "xAxis": {"type": "category", "data": labels},
        "yAxis": {"type": "value", "minInterval": 1},
        "series": [{"type": "bar", "name": name, "data": values}],
    }


@role_required()
def rfm_page(request: HttpRequest) -> HttpResponse:
    scope = data_scope(request.user)
    classes = selectors.class_summary(scope)
    dist = selectors.score_distribution(scope)
    scores = [str(s) for s in range(1, 6)]
    pie = {
        "tooltip": {"trigger": "item"},
        "series": [
            {
                "type": "pie",
                "radius": ["40%", "70%"],
                "data": [{"name": c["label"], "value": c["count"]} for c in classes],
            }
        ],
    }
    return render(
        request,
        "insights/rfm.html",
        {
            "classes": classes,
            "scored": sum(c["count"] for c in classes),
            "class_chart": pie,
            "dist": [
                (_("R（最近一次消费）"), "r-chart", _bar(scores, dist["r"], "R")),
                (_("F（消费频次）"), "f-chart", _bar(scores, dist["f"], "F")),
                (_("M（消费金额）"), "m-chart", _bar(scores, dist["m"], "M")),
            ],
            "settings": selectors.current_settings(),
            "last_run": next(iter(selectors.last_runs(1)), None),
            **_segment_links(),
        },
    )


@role_required()
def lifecycle_page(request: HttpRequest) -> HttpResponse:
    scope = data_scope(request.user)
    stages = selectors.stage_counts(scope)
    funnel = {
        "tooltip": {"trigger": "item"},
        "series": [
            {
                "type": "funnel",
                "sort": "none",
                "left": "10%",
                "width": "80%",
                "label": {"show": True, "position": "inside"},
                "data": [{"name": s["label"], "value": s["count"]} for s in stages],
            }
        ],
    }
    history = selectors.weekly_history(scope)
    trend = None
    if history:
        weeks = list(reversed(history))
        trend = {
            "tooltip": {"trigger": "axis"},
            "legend": {"top": 0},
            "grid": {"left": 48, "right": 16, "top": 32, "bottom": 32},
            "xAxis": {"type": "category", "data": [w["week"].isoformat() for w in weeks]},
            "yAxis": {"type": "value", "minInterval": 1},
            "series": [
                {"type": "line", "name": s["label"], "data": [w["counts"].get(s["key"], 0) for w in weeks]}
                for s in stages
            ],
        }
    return render(
        request,
        "insights/lifecycle.html",
        {
            "stages": stages,
            "total": sum(s["count"] for s in stages),
            "funnel": funnel,
            "moves": selectors.moves_this_week(scope),
            "history": history,
            "trend": trend,
            "settings": selectors.current_settings(),
            **_segment_links(),
        },
    )


def _status_context() -> dict[str, Any]:
    runs = selectors.last_runs(5)
    return {"runs": runs, "busy": selectors.run_busy()}


@role_required(*SETTINGS_ROLES)
def settings_page(request: HttpRequest) -> HttpResponse:
    s = services.get_settings()
    groups = selectors.tag_group_choices()
    if request.method == "POST":
        form = SettingsForm(request.POST, groups=groups)
        if form.is_valid():
            services.update_settings(form.values())
            messages.success(request, _("设置已保存；规则有变化时会在后台重新计算。"))
            return redirect("insights:settings")
    else:
        form = SettingsForm(initial=SettingsForm.initial_of(s, selectors.band_list(s)), groups=groups)
    return render(
        request,
        "insights/settings.html",
        {"form": form, "weights": compute.WEIGHTS, **_status_context()},
    )


@role_required(*SETTINGS_ROLES)
def run_status(request: HttpRequest) -> HttpResponse:
    """The runs panel alone (htmx polls it while a run is queued or running)."""
    return render(request, "insights/_runs.html", _status_context())


@role_required(*SETTINGS_ROLES)
@require_POST
def recompute_now(request: HttpRequest) -> HttpResponse:
    if selectors.run_busy():
        messages.info(request, _("已有一次重新计算在进行中。"))
    else:
        services.start_full_run("manual")
        messages.success(request, _("已开始重新计算，后台 worker 会立即执行。"))
    return redirect("insights:settings")
