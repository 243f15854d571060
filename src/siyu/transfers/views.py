"""Console pages of continuity (客户继承): resigned transfer, on-job transfer, the handover records
with each customer's status and 24 h clock, and churn alerts. Thin: reads in selectors, writes in
services; every read is scoped by the viewer's DataScope."""

from __future__ import annotations

import csv
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from siyu.accounts.permissions import check_role, role_required
from siyu.accounts.selectors import data_scope
from siyu.core import inputs
from siyu.core.paging import paginate
from siyu.customers import selectors as customer_selectors
from siyu.org import selectors as org_selectors
from siyu.org.selectors import EmployeeStatus
from siyu.transfers import forms, selectors, services
from siyu.transfers.models import ChurnEvent, ChurnRule, Handover, HandoverItem
from siyu.wecom import errcodes
from siyu.wecom.gateway import WeComAPIError

MANAGERS = ("admin", "operator", "store_manager")
ONJOB_LIST_MAX = 1000


def _employee(scope, employee_id):
    try:
        return selectors.employee_in_scope(scope, employee_id)
    except ObjectDoesNotExist:
        raise Http404 from None
    except PermissionDenied:
        raise PermissionDenied(_("这名员工不在你的数据范围内。")) from None


def _submit(request, h: Handover, blocked: int = 0, not_sent: int = 0):
    """Send the handover to WeCom, say what WeCom answered, show the handover."""
    try:
        stats = services.submit(h)
    except WeComAPIError as e:
        messages.error(request, _("企业微信调用失败：%(e)s") % {"e": errcodes.explain_error(e)})
    else:
        text = _("已提交：%(started)d 位客户等待接替，%(failed)d 位失败；%(gd)d 个群已转交，%(gf)d 个群失败。") % {
            "started": stats["started"],
            "failed": stats["failed"],
            "gd": stats["groups_done"],
            "gf": stats["groups_failed"],
        }
        if blocked:
            text += " " + _("%(n)d 位客户因90天内转接次数已达上限未提交。") % {"n": blocked}
        if not_sent:
            text += " " + _("%(n)d 位客户企业微信会拒绝，未提交（原因见下方明细）。") % {"n": not_sent}
        messages.success(request, text)
    return redirect("transfers:handover", handover_id=h.id)


# --- resigned transfer --------------------------------------------------------------------------
@role_required(*MANAGERS)
def resigned(request):
    scope = data_scope(request.user)
    wecom = selectors.unassigned_from_wecom()
    rows = selectors.departed(scope, wecom)
    return render(request, "transfers/resigned.html", {"rows": rows, "wecom_ok": wecom is not None})


@role_required(*MANAGERS)
def resigned_assign(request, employee_id: int):
    scope = data_scope(request.user)
    emp = _employee(scope, employee_id)
    if emp.status != EmployeeStatus.LEFT:
        messages.error(request, _("该员工尚未离职，请使用在职继承。"))
        return redirect("transfers:resigned")
    wecom = selectors.unassigned_from_wecom()
    check = services.precheck_resigned(emp, wecom)
    customers = check.sendable
    groups = selectors.groups_of(emp)
    takeovers = selectors.takeover_choices(scope).exclude(id=emp.id)
    stores = selectors.stores_in_scope(scope)
    if request.method == "POST":
        form = forms.ResignedAssignForm(request.POST, takeovers=takeovers, stores=stores)
        try:
            if not form.is_valid():
                raise services.TransferError(forms.error_text(form))
            if not check.wecom_ok:
                raise services.TransferError(services.wecom_unreadable_message())
            if not customers and not groups:
                raise services.TransferError(_("没有企业微信可以接受的客户或客户群，未提交。"))
            strategy = form.cleaned_data["strategy"]
            if strategy == Handover.Strategy.STORE:
                allowed = {e.id: e for e in form.takeovers}
                picked = org_selectors.contact_member_ids(form.cleaned_data["store"], {emp.id})
                chosen = [allowed[i] for i in sorted(i for i in picked if i in allowed)]
                if not chosen:
                    raise services.TransferError(_("所选门店没有可接替的成员。"))
            else:
                chosen = form.chosen()
            p = services.plan(
                strategy,
                external_userids=customers,
                chat_ids=[g.chat_id for g in groups],
                takeovers=[e.id for e in chosen],
                counts=form.per_takeover("count", chosen),
                caps=form.per_takeover("cap", chosen),
            )
            h = services.create_handover(
                Handover.RESIGNED, emp, p, strategy=strategy, user=request.user, refused=check.refused
            )
        except services.TransferError as e:
            messages.error(request, str(e))
        else:
            return _submit(request, h, not_sent=len(check.refused))
    return render(
        request,
        "transfers/resigned_assign.html",
        {
            "emp": emp,
            "customers": customers,
            "groups": groups,
            "takeovers": takeovers,
            "stores": stores,
            "store_pick": forms.StorePickForm(scope=scope),
            "strategies": Handover.STRATEGY,
            "wecom_ok": wecom is not None,
            "refused": selectors.refusal_rows(check.refused),
        },
    )


# --- on-job transfer ----------------------------------------------------------------------------
@role_required(*MANAGERS)
def onjob(request):
    scope = data_scope(request.user)
    employees = selectors.takeover_choices(scope)
    source = request.POST if request.method == "POST" else request.GET
    emp_id = inputs.query_id(source, "handover")
    emp = _employee(scope, emp_id) if emp_id else None
    form = customer_selectors.filter_form(request.GET if request.method == "GET" else request.POST, scope)
    # the customers carry two display attributes set below (transfers_90d, blocked_message)
    rows: list[Any] = []
    wecom_ok = True
    blocked: dict[str, int] = {}
    groups: list[Any] = []
    if emp is not None:
        rows = list(selectors.onjob_customers(scope, emp, form.filters()).order_by("-id")[:ONJOB_LIST_MAX])
        counts = services.onjob_counts([c.external_userid for c in rows])
        blocked = {x: n for x, n in counts.items() if n >= services.ONJOB_MAX_PER_90D}
        view = services.precheck_onjob(emp, [c.external_userid for c in rows]) if rows else services.Precheck()
        wecom_ok = view.wecom_ok
        for c in rows:
            c.transfers_90d = counts.get(c.external_userid, 0)
            c.blocked_message = services.limit_message(c.transfers_90d) if c.external_userid in blocked else ""
            why = view.refused.get(c.external_userid)
            c.refused_message = why.reason if why is not None else ""
        groups = selectors.groups_of(emp)
    if request.method == "POST" and emp is not None:
        posted = forms.OnjobForm(request.POST, takeovers=employees.exclude(id=emp.id), groups=groups)
        try:
            if not posted.is_valid():
                raise services.TransferError(forms.error_text(posted))
            takeover = posted.takeover_employee()
            # the API's check too: the handover's active customers within scope (others are dropped)
            picked, _refused = selectors.onjob_selection(scope, emp, posted.cleaned_data["x"])
            # WeCom's own view decides what is sent: customers it would refuse are explained, not sent
            check = services.precheck_onjob(emp, picked) if picked else services.Precheck()
            if not check.wecom_ok:
                raise services.TransferError(services.wecom_unreadable_message())
            picked = check.sendable
            chat_ids = posted.cleaned_data["chat"]
            message = posted.cleaned_data["message"]
            if takeover is None:
                raise services.TransferError(_("请选择接替成员。"))
            if not picked and not chat_ids:
                if check.refused:
                    raise services.TransferError(
                        _("所选客户企业微信都会拒绝转接，未提交：") + next(iter(check.refused.values())).reason
                    )
                raise services.TransferError(_("请至少选择一位客户或一个群。"))
            now_blocked = services.onjob_blocked(picked)
            if now_blocked and len(now_blocked) == len(picked) and not chat_ids:
                raise services.TransferError(
                    _("所选客户均已达到90天内在职转接次数上限，未提交到企业微信。")
                    + " "
                    + services.limit_message(max(now_blocked.values()))
                )
            p = services.plan(
                Handover.Strategy.SINGLE, external_userids=picked, chat_ids=chat_ids, takeovers=[takeover.id]
            )
            h = services.create_handover(
                Handover.ONJOB, emp, p, message=message, user=request.user, blocked=now_blocked, refused=check.refused
            )
        except services.TransferError as e:
            messages.error(request, str(e))
        else:
            return _submit(request, h, blocked=len(now_blocked), not_sent=len(check.refused))
    return render(
        request,
        "transfers/onjob.html",
        {
            "employees": employees,
            "emp": emp,
            "form": form,
            "pick": forms.OnjobPickForm(initial={"handover": emp.id if emp else None}, scope=scope),
            "rows": rows,
            "blocked": blocked,
            "groups": groups,
            "limit": services.ONJOB_MAX_PER_90D,
            "list_max": ONJOB_LIST_MAX,
            "wecom_ok": wecom_ok,
        },
    )


# --- handover records ---------------------------------------------------------------------------
@role_required()
def handovers(request):
    scope = data_scope(request.user)
    page = paginate(request, selectors.handovers(scope))
    for h in page.object_list:
        h.counts = selectors.status_counts(h, scope)
    return render(request, "transfers/handovers.html", {"page": page})


@role_required()
def handover(request, handover_id: int):
    scope = data_scope(request.user)
    try:
        h = selectors.handover_in_scope(scope, handover_id)
    except Handover.DoesNotExist:
        raise Http404 from None
    except PermissionDenied:
        raise PermissionDenied(_("这条继承记录不在你的数据范围内。")) from None
    status = request.GET.get("status", "")
    status = status if status in dict(HandoverItem.STATUS) else ""
    q = request.GET.get("q", "").strip()[:64]
    page = paginate(request, selectors.items(scope, h, status=status, q=q), per_page=100)
    now = timezone.now()
    for it in page.object_list:
        it.left = selectors.remaining(it, now)
        if it.left is not None:
            secs = int(it.left.total_seconds())
            it.left_h, it.left_m = secs // 3600, secs % 3600 // 60
    counts = selectors.status_counts(h, scope)
    # the page re-reads its counts and rows while customers are still waiting (callbacks and the
    # poll timer change them); a fragment answers 286 once nothing can change, which stops the polling
    live = bool(counts.get(HandoverItem.WAITING) or counts.get(HandoverItem.PLANNED))
    part = request.GET.get("part", "")
    query = request.GET.copy()
    query.pop("part", None)
    ctx = {
        "h": h,
        "page": page,
        "counts": counts,
        "count_rows": [(v, label, counts[v]) for v, label in HandoverItem.STATUS],
        "by_takeover": selectors.takeover_counts(h, scope),
        "group_items": selectors.group_items(scope, h),
        "statuses": HandoverItem.STATUS,
        "filters": {"status": status, "q": q},
        "live": live,
        "live_query": query.urlencode(),
        "poll_s": max(1, int(settings.SIYU_BROADCAST_POLL_S)),
    }
    if part in ("counts", "items"):
        request.GET = query  # the pagination links of the fragment point at the page, not the fragment
        return render(request, f"transfers/_handover_{part}.html", ctx, status=200 if live else 286)
    return render(request, "transfers/handover.html", ctx)


@require_POST
@role_required(*MANAGERS)
def refresh(request, handover_id: int):
    """Read the transfer results from WeCom now (the worker also does it every 15 minutes)."""
    scope = data_scope(request.user)
    try:
        selectors.handover_in_scope(scope, handover_id)
    except Handover.DoesNotExist:
        raise Http404 from None
    except PermissionDenied:
        raise PermissionDenied(_("这条继承记录不在你的数据范围内。")) from None
    try:
        stats = services.poll()
    except WeComAPIError as e:
        messages.error(request, _("企业微信调用失败：%(e)s") % {"e": errcodes.explain_error(e)})
    else:
        messages.success(request, _("已刷新接替状态：%(n)d 位客户状态有变化。") % {"n": stats["changed"]})
    return redirect("transfers:handover", handover_id=handover_id)


# --- churn ---------------------------------------------------------------------------------------
def _churn_filters(request) -> selectors.ChurnFilters:
    g = request.GET
    kind = g.get("kind", "")
    ns = g.get("notify", "")
    return selectors.ChurnFilters(
        kind=kind if kind in dict(ChurnEvent.KIND) else "",
        employee_id=inputs.query_id(g, "employee"),
        date_from=inputs.query_date(g, "from"),
        date_to=inputs.query_date(g, "to"),
        notify_status=ns if ns in dict(ChurnEvent.NOTIFY) else "",
        q=g.get("q", "").strip()[:64],
    )


@role_required()
def churn(request):
    scope = data_scope(request.user)
    f = _churn_filters(request)
    rule = services.churn_rule()
    if request.method == "POST":
        check_role(request, ("admin", "operator"))
        form = forms.ChurnRuleForm(request.POST)
        if form.is_valid():
            services.set_churn_rule(mode=form.cleaned_data["mode"], digest_hour=form.cleaned_data["digest_hour"])
            messages.success(request, _("流失提醒规则已保存。"))
        else:
            messages.error(request, _("规则无效：请选择通知方式，汇总时间为0–23点。"))
        return redirect("transfers:churn")
    page = paginate(request, selectors.churn(scope, f))
    managers = selectors.manager_names(page.object_list)
    for e in page.object_list:
        e.manager_name = managers.get(e.manager_userid, "")
    return render(
        request,
        "transfers/churn.html",
        {
            "page": page,
            "f": f,
            "rule": rule,
            "modes": ChurnRule.MODE,
            "kinds": ChurnEvent.KIND,
            "notify_statuses": ChurnEvent.NOTIFY,
            "pick": forms.ChurnPickForm(initial={"employee": f.employee_id}, scope=scope),
            "query": request.GET.urlencode(),
        },
    )


class _Echo:
    def write(self, value):
        return value


@role_required()
def churn_export(request):
    scope = data_scope(request.user)
    qs = selectors.churn(scope, _churn_filters(request))
    kinds, notes = dict(ChurnEvent.KIND), dict(ChurnEvent.NOTIFY)

    def cell(v) -> str:
        s = str(v or "")
        return "'" + s if s[:1] in ("=", "+", "-", "@", "\t", "\r") else s  # no formula injection

    def rows():
        w = csv.writer(_Echo())
        yield "\ufeff" + w.writerow(
            [_("流失时间"), _("类型"), _("客户"), _("客户ID"), _("员工"), _("上级"), _("通知状态")]
        )
        for e in qs.iterator(chunk_size=1000):
            yield w.writerow(
                [
                    timezone.localtime(e.at).strftime("%Y-%m-%d %H:%M:%S"),
                    kinds.get(e.kind, e.kind),
                    cell(e.customer.name if e.customer else ""),
                    cell(e.external_userid),
                    cell(e.employee.name if e.employee else e.userid),
                    cell(e.manager_userid),
                    notes.get(e.notify_status, ""),
                ]
            )

    resp = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    resp["Content-Disposition"] = f'attachment; filename="churn-{timezone.localtime():%Y%m%d-%H%M%S}.csv"'
    return resp
