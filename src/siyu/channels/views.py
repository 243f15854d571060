"""Console pages of acquisition (渠道活码, 门店活码, 群活码, 默认欢迎语, 渠道分析). Thin: forms
validate, services write (and call WeCom outside transactions), selectors read within scope."""

from __future__ import annotations

import csv
import json
import logging
from datetime import date, timedelta

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from siyu.accounts.permissions import role_required
from siyu.accounts.selectors import data_scope, role_of
from siyu.channels import forms, images, preview, schedule, selectors, services
from siyu.channels.models import ChannelCode
from siyu.core import inputs, pickers
from siyu.customers import selectors as customer_selectors
from siyu.org import selectors as org_selectors
from siyu.wecom import errcodes, gateway

MANAGE = ("admin", "operator")
QR_RETRY_AFTER_S = 60  # WeCom unreachable: how long a client should wait before asking again
logger = logging.getLogger("siyu.channels")


def _code_data(form, created_by: str = "") -> dict:
    d = form.cleaned_data
    data = {
        "name": d["name"],
        "folder": d.get("folder") or "",
        "kind": d["kind"],
        "department_id": d.get("department_id"),
        "users": d.get("users") or [],
        "backups": d.get("backups") or [],
        "schedule": d.get("schedule_slots") or [],
        "daily_cap": d.get("daily_cap") or 0,
        "skip_verify": bool(d.get("skip_verify")),
        "skip_verify_start": d.get("skip_verify_start") or "",
        "skip_verify_end": d.get("skip_verify_end") or "",
        "tag_ids": list(d.get("tag_ids") or []),
        "remark_template": d.get("remark_template") or "",
        "description_template": d.get("description_template") or "",
        "welcome": services.clean_welcome(d.get("welcome_text") or "", form.welcome_attachments(created_by)),
        "valid_until": d.get("valid_until"),
        "poster_text": d.get("poster_text") or "",
    }
    if d.get("poster_background"):
        data["poster_background"] = services.save_upload(d["poster_background"].read(), ".img")
    return data


@role_required()
def code_list(request):
    scope = data_scope(request.user)
    rows = selectors.codes(scope, q=request.GET.get("q", "")[:64], folder=request.GET.get("folder", "")[:64])
    counts = selectors.welcome_counts(scope, [c.id for c in rows])
    adds = selectors.add_counts(scope, [c.id for c in rows])
    names = org_selectors.names_by_userid(u for c in rows for u in c.active_users)
    return render(
        request,
        "channels/list.html",
        {
            "rows": [
                {
                    "code": c,
                    "adds": adds.get(c.id, 0),
                    "welcome": counts.get(c.id),
                    "active": _named(c.active_users, names),
                }
                for c in rows
            ],
            "folders": selectors.folders(),
            "can_manage": role_of(request.user) in MANAGE,
        },
    )


@role_required(*MANAGE)
def code_create(request):
    form = forms.ChannelCodeForm(request.POST or None, request.FILES or None, scope=data_scope(request.user))
    if request.method == "POST" and form.is_valid():
        try:
            code = services.create_code(
                _code_data(form, request.user.get_username()), created_by=request.user.get_username()
            )
        except (gateway.WeComAPIError, services.ChannelError) as e:
            form.add_error(None, _("企业微信返回错误：%(e)s") % {"e": _error_words(e)})
        else:
            schedule.ensure_scheduled()
            messages.success(request, _("渠道活码已创建"))
            return redirect("channels:detail", code_id=code.id)
    return render(request, "channels/form.html", {"form": form, "code": None, "preview": preview.for_form("welcome")})


@role_required(*MANAGE)
def code_edit(request, code_id: int):
    code = selectors.code(data_scope(request.user), code_id) or _404()
    initial = {
        "name": code.name,
        "folder": code.folder,
        "kind": code.kind,
        "department_id": code.department_id,
        "users": code.users,
        "backups": code.backups,
        "schedule": json.dumps(code.schedule),
        "daily_cap": code.daily_cap,
        "skip_verify": code.skip_verify,
        "skip_verify_start": code.skip_verify_start,
        "skip_verify_end": code.skip_verify_end,
        "tag_ids": code.tag_ids,
        "remark_template": code.remark_template,
        "description_template": code.description_template,
        "welcome_text": (code.welcome or {}).get("text", ""),
        "valid_until": code.valid_until,
        "poster_text": code.poster_text,
    }
    form = forms.ChannelCodeForm(
        request.POST or None,
        request.FILES or None,
        initial=initial,
        scope=data_scope(request.user),
        attachments=(code.welcome or {}).get("attachments", []),
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.update_code(code, _code_data(form, request.user.get_username()))
        except (gateway.WeComAPIError, services.ChannelError) as e:
            form.add_error(None, _("企业微信返回错误：%(e)s") % {"e": _error_words(e)})
        else:
            schedule.ensure_scheduled()
            messages.success(request, _("已保存"))
            return redirect("channels:detail", code_id=code.id)
    return render(request, "channels/form.html", {"form": form, "code": code, "preview": preview.for_form("welcome")})


def _404():
    raise Http404


def _named(userids: list[str], names: dict[str, str]) -> list[tuple[str, str]]:
    """(name, account) of each employee account, the account standing in for an unknown name."""
    return [(names.get(u) or u, u) for u in userids]


@role_required()
def code_detail(request, code_id: int):
    scope = data_scope(request.user)
    code = selectors.code(scope, code_id) or _404()
    end = _range(request)[1]  # ?end=YYYY-MM-DD looks at an earlier window; today by default
    start = end - timedelta(days=29)
    data = selectors.analytics(scope, start, end, code_id=code.id, dimension="day")
    by_day = {r["key"]: r for r in data["rows"]}
    days = [(start + timedelta(days=i)).isoformat() for i in range(30)]
    chart = {
        "tooltip": {"trigger": "axis"},
        "legend": {"data": [_("新增"), _("流失"), _("净增")]},
        "xAxis": {"type": "category", "data": days},
        "yAxis": {"type": "value", "minInterval": 1},
        "series": [
            {"name": _("新增"), "type": "bar", "data": [by_day.get(d, {}).get("new", 0) for d in days]},
            {"name": _("流失"), "type": "bar", "data": [by_day.get(d, {}).get("lost", 0) for d in days]},
            {"name": _("净增"), "type": "line", "data": [by_day.get(d, {}).get("net", 0) for d in days]},
        ],
    }
    counts = selectors.welcome_counts(scope, [code.id]).get(
        code.id, {"sent": 0, "failed": 0, "pending": 0, "unknown": 0}
    )
    per_emp = selectors.analytics(scope, start, end, code_id=code.id, dimension="employee")
    slot_users = [u for slot in code.schedule for u in slot.get("users", [])]
    names = org_selectors.names_by_userid([*code.users, *code.backups, *code.active_users, *slot_users])
    failures = selectors.welcome_failures(scope, code)
    return render(
        request,
        "channels/detail.html",
        {
            "code": code,
            "auto_tags": _tag_names(code.tag_ids or []),
            "chart": chart,
            "totals": data["totals"],
            "welcome": counts,
            "failures": _named_failures(failures),
            "per_employee": per_emp["rows"],
            "sizes": images.SIZES,
            "welcome_text": (code.welcome or {}).get("text", ""),
            "welcome_attachments": (code.welcome or {}).get("attachments", []),
            "preview": preview.for_welcome(code.welcome or {}, code.users[:1]),
            "weekday_names": [str(n) for _, n in forms.WEEKDAYS],
            # employees by name, the account as secondary text
            "people": {
                "users": _named(code.users, names),
                "backups": _named(code.backups, names),
                "active": _named(code.active_users, names),
                "schedule": [(slot, _named(slot.get("users", []), names)) for slot in code.schedule],
            },
        },
    )


def _tag_names(tag_ids: list[str]) -> list[str]:
    """The auto-tags' names ("group / tag"), in the code's order; a tag deleted since is said so."""
    names = dict(customer_selectors.tag_choices())
    return [names.get(t) or _("已删除的标签") for t in tag_ids]


@role_required(*MANAGE)
@require_POST
def code_delete(request, code_id: int):
    code = selectors.code(data_scope(request.user), code_id) or _404()
    try:
        services.delete_code(code)
        messages.success(request, _("已删除"))
    except gateway.WeComAPIError as e:
        messages.error(request, _("企业微信返回错误：%(e)s") % {"e": _error_words(e)})
    return redirect("channels:list")


def _named_failures(failures: list) -> list[dict]:
    """Failed welcomes with the employee's and the customer's names (ids as secondary text)."""
    employees = org_selectors.names_by_userid(f.userid for f in failures)
    externals = [f.external_userid for f in failures]
    customers = customer_selectors.names_by_external(externals)
    ids = customer_selectors.customer_ids_by_external(externals)
    return [
        {
            "f": f,
            "employee": employees.get(f.userid) or f.userid,
            "customer": customers.get(f.external_userid, ""),
            "customer_id": ids.get(f.external_userid),
        }
        for f in failures
    ]


def _error_words(e: Exception) -> str:
    """A WeCom error in words (siyu.wecom.errcodes); our own refusals keep their message."""
    return errcodes.explain_error(e) if isinstance(e, gateway.WeComAPIError) else str(e)


def _qr_unavailable(code: ChannelCode, error: Exception) -> HttpResponse:
    """503 for a QR image WeCom could not serve (never cached, WeCom unreachable): a clear message,
    a Retry-After, and no detail of the failure (it may carry URLs)."""
    logger.warning("QR image of channel code %s unavailable: %s", code.id, type(error).__name__)
    resp = HttpResponse(
        _("二维码暂不可用：无法连接企业微信，请稍后重试。"), status=503, content_type="text/plain; charset=utf-8"
    )
    resp["Retry-After"] = str(QR_RETRY_AFTER_S)
    return resp


@role_required()
def code_png(request, code_id: int):
    code = selectors.code(data_scope(request.user), code_id) or _404()
    size = request.GET.get("size", "m")
    if size not in images.SIZES:
        size = "m"
    try:
        png = images.qr_png(code, size)
    except images.QR_UNAVAILABLE as e:
        return _qr_unavailable(code, e)
    resp = HttpResponse(png, content_type="image/png")
    # ?inline=1: the detail page's preview <img>; otherwise a download
    disposition = "inline" if request.GET.get("inline") else "attachment"
    resp["Content-Disposition"] = f'{disposition}; filename="channel-{code.id}-{images.SIZES[size]}.png"'
    return resp


@role_required()
def code_poster(request, code_id: int):
    code = selectors.code(data_scope(request.user), code_id) or _404()
    try:
        png, drawn = images.poster_png(code)
    except images.QR_UNAVAILABLE as e:
        return _qr_unavailable(code, e)
    resp = HttpResponse(png, content_type="image/png")
    resp["Content-Disposition"] = f'inline; filename="poster-{code.id}.png"'
    resp["X-Poster-Text"] = "drawn" if drawn else "omitted-no-cjk-font"
    return resp


@role_required(*MANAGE)
def default_welcomes(request):
    editing = selectors.default_welcome(inputs.query_id(request.GET, "edit")) if request.GET.get("edit") else None
    initial = {}
    if editing is not None:
        initial = {
            "userid": editing.userid,
            "department_id": editing.department_id,
            "text": (editing.welcome or {}).get("text", ""),
        }
    form = forms.DefaultWelcomeForm(
        request.POST or None,
        request.FILES or None,
        initial=initial,
        scope=data_scope(request.user),
        attachments=(editing.welcome or {}).get("attachments", []) if editing else None,
    )
    if request.method == "POST":
        if request.POST.get("delete"):
            services.delete_default_welcomes(inputs.id_list([request.POST.get("delete")]))
            return redirect("channels:welcomes")
        if form.is_valid():
            d = form.cleaned_data
            try:
                row = services.save_default_welcome(
                    d.get("text") or "",
                    userid=d.get("userid") or "",
                    department_id=d.get("department_id"),
                    attachments=form.welcome_attachments(request.user.get_username()),
                )
            except services.ChannelError as e:
                form.add_error(None, str(e))
            else:
                services.warm_welcome_media(row.welcome)
                messages.success(request, _("已保存"))
                return redirect("channels:welcomes")
    return render(
        request,
        "channels/welcomes.html",
        {
            "form": form,
            "rows": selectors.default_welcomes(),
            "editing": editing,
            "preview": preview.for_form("welcome"),
        },
    )


def _range(request) -> tuple[date, date, str, int | None]:
    end = services.local().date()
    start = end - timedelta(days=13)
    start = inputs.query_date(request.GET, "start") or start
    end = inputs.query_date(request.GET, "end") or end
    if start > end or (end - start).days > 366:
        start = end - timedelta(days=13)
    dim = request.GET.get("dim", "day")
    if dim not in ("day", "code", "employee", "department"):
        dim = "day"
    return start, end, dim, inputs.query_id(request.GET, "code")


@role_required()
def analytics(request):
    scope = data_scope(request.user)
    start, end, dim, code_id = _range(request)
    data = selectors.analytics(scope, start, end, code_id=code_id, dimension=dim)
    labels = [r["label"] for r in data["rows"]]
    chart = {
        "tooltip": {"trigger": "axis"},
        "legend": {"data": [_("新增"), _("流失"), _("净增")]},
        "xAxis": {"type": "category", "data": labels},
        "yAxis": {"type": "value", "minInterval": 1},
        "series": [
            {"name": _("新增"), "type": "bar", "data": [r["new"] for r in data["rows"]]},
            {"name": _("流失"), "type": "bar", "data": [r["lost"] for r in data["rows"]]},
            {"name": _("净增"), "type": "line", "data": [r["net"] for r in data["rows"]]},
        ],
    }
    return render(
        request,
        "channels/analytics.html",
        {
            "data": data,
            "chart": chart,
            "start": start,
            "end": end,
            "dim": dim,
            "code_id": code_id,
            "codes": selectors.codes(scope),
            "query": request.GET.urlencode(),
        },
    )


def _csv_cell(v) -> str:
    s = "" if v is None else str(v)
    return "'" + s if s[:1] in ("=", "+", "-", "@") else s  # no formula injection in spreadsheets


@role_required()
def analytics_export(request):
    scope = data_scope(request.user)
    start, end, dim, code_id = _range(request)
    data = selectors.analytics(scope, start, end, code_id=code_id, dimension=dim)
    resp = HttpResponse(content_type="text/csv; charset=utf-8")
    resp["Content-Disposition"] = f'attachment; filename="channels-{dim}-{start}-{end}.csv"'
    resp.write("\ufeff")
    w = csv.writer(resp)
    w.writerow([_("维度"), _("新增"), _("流失"), _("净增"), _("次日留存%"), _("7日留存%"), _("欢迎语成功率%")])
    for r in data["rows"]:
        w.writerow(
            [
                _csv_cell(r["label"]),
                r["new"],
                r["lost"],
                r["net"],
                _csv_cell(r["retention_1d"]),
                _csv_cell(r["retention_7d"]),
                _csv_cell(r["welcome_rate"]),
            ]
        )
    return resp


@role_required()
def pick(request):
    """The channel pickers' search (siyu.core.pickers): JSON, the codes the viewer may see."""
    items, more = selectors.search_codes(
        data_scope(request.user), pickers.query(request.GET), limit=pickers.SEARCH_LIMIT
    )
    return pickers.respond(items, more=more)
