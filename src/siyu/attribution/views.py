"""业绩归因: the month's orders per guide and store with commission, the CSV, the commission rules."""

from __future__ import annotations

import csv
import datetime as dt
import io

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from siyu.accounts.permissions import role_required
from siyu.accounts.selectors import data_scope, role_of
from siyu.attribution import selectors, services
from siyu.attribution.models import CommissionRule
from siyu.core import inputs, text
from siyu.org import selectors as org_selectors

VIEWERS = ("admin", "operator", "store_manager")


def _month(request) -> dt.date:
    """The month asked for (YYYY-MM), else this month."""
    parts = request.GET.get("month", "").split("-")
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        y, m = int(parts[0]), int(parts[1])
        if 2000 <= y <= 2100 and 1 <= m <= 12:
            return dt.date(y, m, 1)
    today = timezone.localdate()
    return dt.date(today.year, today.month, 1)


@role_required(*VIEWERS)
def report(request):
    month = _month(request)
    context = selectors.report(data_scope(request.user), month)
    context["month_text"] = month.strftime("%Y-%m")
    context["rules"] = selectors.rules()
    context["scopes"] = CommissionRule.Scope.choices
    context["can_edit"] = role_of(request.user) in ("admin", "operator")
    return render(request, "attribution/report.html", context)


@role_required(*VIEWERS)
def guides(request):
    """导购排行: each guide's month (new customers, tasks on time, sends, clicks, orders and revenue
    attributed, repurchase rate), their score and tier, in a store or region."""
    scope = data_scope(request.user)
    month = _month(request)
    department = inputs.query_id(request.GET, "department")
    context = {
        "month_text": month.strftime("%Y-%m"),
        "rows": selectors.leaderboard(scope, month, department),
        "departments": org_selectors.department_choices(scope),
        "department": department,
        "weights": selectors.WEIGHTS,
    }
    return render(request, "attribution/guides.html", context)


@role_required(*VIEWERS)
def export(request):
    month = _month(request)
    header = [_("订单号"), _("支付时间"), _("导购"), _("导购账号"), _("门店"), _("渠道"), _("归因依据")]
    header += [_("实付金额"), _("退款金额"), _("净额"), _("提成")]
    out = io.StringIO()
    out.write("\ufeff")  # Excel reads UTF-8 with the mark
    writer = csv.writer(out)
    for row in [header, *selectors.export_rows(data_scope(request.user), month)]:
        writer.writerow([text.safe_cell(v) for v in row])
    resp = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    resp["Content-Disposition"] = f'attachment; filename="attribution-{month:%Y-%m}.csv"'
    return resp


@role_required("admin", "operator")
@require_POST
def rule_save(request):
    try:
        services.save_rule(
            request.POST.get("scope", ""), request.POST.get("value", ""), request.POST.get("percent", "")
        )
        messages.success(request, _("提成规则已保存。"))
    except services.RuleError as e:
        messages.error(request, str(e))
    return redirect("attribution:report")


@role_required("admin", "operator")
@require_POST
def rule_delete(request, pk: int):
    rule = CommissionRule.objects.filter(id=pk).first()
    if rule is None:
        raise Http404
    services.delete_rule(rule)
    messages.success(request, _("提成规则已删除。"))
    return redirect("attribution:report")
