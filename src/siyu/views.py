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


@role_required()
def overview(request):
    role = role_of(request.user)
    ctx = {"counters": dashboard.counters(role, data_scope(request.user)), "is_admin": role == "admin"}
    if ctx["is_admin"]:
        ctx.update(health=_health(), calls_chart=_calls_chart())
    return render(request, "core/overview.html", ctx)


@role_required("admin")
def overview_health(request):
    """The health panels alone, refreshed by htmx every few seconds."""
    return render(request, "core/_health.html", {"health": _health()})
