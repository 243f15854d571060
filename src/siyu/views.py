"""The console's home: the 概览 (overview) page, composed of what every app registers with
``siyu.core.dashboard`` and scoped to the user's role (a root module: it joins the kernel and
accounts, which the kernel does not import)."""

from __future__ import annotations

from django.shortcuts import render
from django.utils import formats
from django.utils.translation import gettext as _

from siyu.accounts.permissions import role_required
from siyu.accounts.selectors import data_scope, role_of
from siyu.core import dashboard, selectors


def _health() -> dict:
    workers = selectors.worker_heartbeats()
    return {
        "wecom": dashboard.health("wecom"),
        "inbox": dashboard.health("inbox"),
        "workers": workers,
        "workers_online": sum(1 for w in workers if w["online"]),
    }


def _calls_chart() -> dict:
    """An ECharts option (data only) for API calls per hour: successes and errors stacked."""
    hours = dashboard.health("calls_by_hour", [])
    return {
        "tooltip": {"trigger": "axis"},
        "legend": {"data": [_("成功"), _("失败")], "right": 0, "top": 0},
        "grid": {"left": 40, "right": 16, "top": 36, "bottom": 28},
        "xAxis": {"type": "category", "data": [formats.time_format(h["hour"], "H:i") for h in hours]},
        "yAxis": {"type": "value", "minInterval": 1},
        "color": ["#2f6fed", "#e5484d"],
        "series": [
            {"name": _("成功"), "type": "bar", "stack": "calls", "data": [h["ok"] for h in hours]},
            {"name": _("失败"), "type": "bar", "stack": "calls", "data": [h["errors"] for h in hours]},
        ],
    }


def _trend_chart(growth: dict) -> dict:
    """An ECharts option (data only): customers added and lost per day, and the net growth."""
    return {
        "tooltip": {"trigger": "axis"},
        "legend": {"data": [_("新增"), _("流失"), _("净增")], "right": 0, "top": 0},
        "grid": {"left": 40, "right": 16, "top": 36, "bottom": 28},
        "xAxis": {"type": "category", "data": [d[5:] for d in growth["days"]]},
        "yAxis": {"type": "value", "minInterval": 1},
        "color": ["#2f6fed", "#e5484d", "#16a34a"],
        "series": [
            {"name": _("新增"), "type": "bar", "data": growth["added"]},
            {"name": _("流失"), "type": "bar", "data": growth["lost"]},
            {
                "name": _("净增"),
                "type": "line",
                "data": [a - b for a, b in zip(growth["added"], growth["lost"], strict=True)],
            },
        ],
    }


@role_required()
def overview(request):
    """What an operator wants first (today's and this week's growth, the trend, the channels that
    bring customers, pending work), then the totals; the admin's system health last."""
    role = role_of(request.user)
    scope = data_scope(request.user)
    growth = dashboard.panel("growth", scope)
    ctx = {
        "counters": dashboard.counters(role, scope),
        "is_admin": role == "admin",
        "growth": growth,
        "trend_chart": _trend_chart(growth) if growth else None,
        "top_channels": dashboard.panel("top_channels", scope, []),
        "todos": dashboard.todos(role, scope),
    }
    if ctx["is_admin"]:
        ctx.update(health=_health(), calls_chart=_calls_chart())
    return render(request, "core/overview.html", ctx)


@role_required("admin")
def overview_health(request):
    """The health panels alone, refreshed by htmx every few seconds."""
    return render(request, "core/_health.html", {"health": _health()})
