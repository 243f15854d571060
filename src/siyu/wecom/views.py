"""Console pages for the WeCom connection (设置 › 企业微信 / 接口日志 / 回调). Admin only."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from siyu.accounts.permissions import ADMIN_ONLY, role_required
from siyu.core.paging import paginate
from siyu.wecom import errcodes, selectors, services
from siyu.wecom.forms import WeComSettingsForm
from siyu.wecom.models import CallbackInbox

RANDOM_FIELDS = ("callback_token", "callback_aes_key")


def _settings_context(
    request: HttpRequest, form: WeComSettingsForm, test_results: list[services.ConnectionCheck] | None = None
) -> dict[str, Any]:
    states = {s.name: s for s in selectors.effective_config()}
    form.describe_secrets(states)
    sections = [
        {
            "title": title,
            "fields": [
                {
                    "field": form[name],
                    "state": states[name],
                    "clear": form[f"clear_{name}"] if states[name].secret else None,
                    "random": name in RANDOM_FIELDS,
                }
                for name in names
            ],
        }
        for title, names in form.SECTIONS
    ]
    return {
        "form": form,
        "sections": sections,
        "status": selectors.connection_status(),
        "callback_url": request.build_absolute_uri(reverse("wecom-callback")),
        "test_results": test_results,
    }


@role_required(*ADMIN_ONLY)
@require_http_methods(["GET", "POST"])
def settings_page(request: HttpRequest) -> HttpResponseBase:
    row = selectors.settings_row()
    initial = {name: getattr(row, name) for name in ("corp_id", "api_base", "agent_id")} if row else {}
    if request.method == "POST":
        form = WeComSettingsForm(request.POST, initial=initial)
        if form.is_valid():
            services.save_settings(form.values(), form.cleared())
            messages.success(request, _("企业微信设置已保存，所有进程将在几秒内使用新配置。"))
            return redirect("wecom:settings")
        messages.error(request, _("请修正下面标出的错误。"))
    else:
        form = WeComSettingsForm(initial=initial)
    return render(request, "wecom/settings.html", _settings_context(request, form))


@role_required(*ADMIN_ONLY)
@require_POST
def test_connection(request: HttpRequest) -> HttpResponseBase:
    results = services.test_connection()
    if request.headers.get("HX-Request"):
        # the result, plus the status panel refreshed out of band (the calls just made are in it)
        return render(
            request, "wecom/_test_result.html", {"test_results": results, "oob_status": selectors.connection_status()}
        )
    row = selectors.settings_row()
    initial = {name: getattr(row, name) for name in ("corp_id", "api_base", "agent_id")} if row else {}
    return render(
        request, "wecom/settings.html", _settings_context(request, WeComSettingsForm(initial=initial), results)
    )


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


@role_required(*ADMIN_ONLY)
def api_calls(request: HttpRequest) -> HttpResponseBase:
    errors_only = request.GET.get("errors") == "1"
    path = request.GET.get("path", "").strip()
    errcode = _int_or_none(request.GET.get("errcode"))
    page = paginate(request, selectors.api_calls(errors_only=errors_only, path=path, errcode=errcode))
    rows = [
        {
            "call": c,
            "meaning": errcodes.meaning(c.errcode),
            "action": errcodes.action(c.errcode),
            "lookup": errcodes.lookup_url(c.errcode),
        }
        for c in page
    ]
    return render(
        request,
        "wecom/api_calls.html",
        {
            "page": page,
            "rows": rows,
            "filters": {"errors": errors_only, "path": path, "errcode": "" if errcode is None else errcode},
            "common_errcodes": errcodes.common_table(),
            "all_errcodes": errcodes.full_table(),
        },
    )


@role_required(*ADMIN_ONLY)
def callbacks(request: HttpRequest) -> HttpResponseBase:
    tab = "rejections" if request.GET.get("tab") == "rejections" else "inbox"
    ctx: dict[str, Any] = {"tab": tab, "summary": selectors.inbox_summary()}
    if tab == "inbox":
        status = request.GET.get("status", "")
        status = status if status in dict(CallbackInbox.STATUS) else ""
        event = request.GET.get("event", "").strip()
        change_type = request.GET.get("change_type", "").strip()
        page = paginate(request, selectors.inbox_rows(status=status, event=event, change_type=change_type))
        for row in page.object_list:  # Chinese names; the raw ones are shown grey beside them
            row.event_label = selectors.event_label(row.event)
            row.change_type_label = selectors.change_type_label(row.event, row.change_type)
        ctx.update(
            page=page,
            filters={"status": status, "event": event, "change_type": change_type},
            statuses=CallbackInbox.STATUS,
            event_choices=selectors.event_choices(),
            change_type_choices=selectors.change_type_choices(),
        )
    else:
        reason = request.GET.get("reason", "").strip()
        page = paginate(request, selectors.rejections(reason=reason))
        labels = dict(REJECTION_REASONS)
        for r in page.object_list:
            r.reason_label = labels.get(r.reason, r.reason)
        ctx.update(
            page=page,
            filters={"reason": reason},
            reasons=REJECTION_REASONS,
        )
    return render(request, "wecom/callbacks.html", ctx)


# CallbackRejection.reason values written by siyu.wecom.callbacks
REJECTION_REASONS = (
    ("signature", gettext_lazy("签名错误")),
    ("malformed", gettext_lazy("格式错误")),
    ("replay", gettext_lazy("时间戳超出范围（疑似重放）")),
    ("corp_id", gettext_lazy("企业ID不符")),
    ("config", gettext_lazy("回调未配置")),
)


@role_required(*ADMIN_ONLY)
def callback_payload(request: HttpRequest, row_id: int) -> HttpResponseBase:
    row = selectors.inbox_payload(row_id)
    if row is None:
        raise Http404
    return render(request, "wecom/_callback_payload.html", {"row": row})


@role_required(*ADMIN_ONLY)
@require_POST
def callback_retry(request: HttpRequest, row_id: int) -> HttpResponseBase:
    if services.retry_callback(row_id):
        messages.success(request, _("回调 #%(id)s 已重新排队。") % {"id": row_id})
    else:
        messages.warning(request, _("回调 #%(id)s 不是失败状态，未做更改。") % {"id": row_id})
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("wecom:callbacks")
    return redirect(target)
