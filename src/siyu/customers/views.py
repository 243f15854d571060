"""Console pages for customers (客户): the list with filters, bulk tagging and exports, and the
customer detail. Every read goes through the scoped selectors (``data_scope(request.user)``)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from siyu.accounts.permissions import role_required
from siyu.accounts.selectors import data_scope, role_of
from siyu.core import inputs
from siyu.customers import exports, selectors, services
from siyu.customers.forms import CustomerFilterForm, TagPickForm
from siyu.customers.models import CustomerEvent, FollowRelation

FILTER_KEYS = (
    "q",
    "tags",
    "tag_mode",
    "employee",
    "department",
    "added_from",
    "added_to",
    "add_way",
    "state",
    "status",
    "group",
    "group_id",
)


def _filter_form(request, scope, data=None) -> tuple[CustomerFilterForm, selectors.FilterChoices]:
    choices = selectors.filter_choices(scope)
    return CustomerFilterForm(data if data is not None else request.GET, choices, scope=scope), choices


def _filter_query(data) -> str:
    """The filter part of a query string (no page cursor), for export / sort links."""
    pairs = [(k, v) for k in FILTER_KEYS for v in data.getlist(k) if v != ""]
    return urlencode(pairs)


def _list_context(request, scope) -> dict:
    form, choices = _filter_form(request, scope)
    filters = form.filters()
    sort = form.sort_key()
    page = selectors.customer_page(
        scope, filters, sort=sort, after=request.GET.get("after", ""), before=request.GET.get("before", "")
    )
    details = selectors.page_row_details(scope, [c.id for c in page.rows])
    # each relation's channel by its code's name (no query when no relation came through a code)
    channels = selectors.channel_names(r.state for d in details.values() for r in d["relations"])
    for d in details.values():
        for r in d["relations"]:
            r.channel_name = channels.get(r.state, "")  # type: ignore[attr-defined]  # for the template
    rows = [{"customer": c, **details[c.id]} for c in page.rows]
    filter_qs = _filter_query(request.GET)
    return {
        "form": form,
        "choices": choices,
        "page": page,
        "rows": rows,
        "sort": sort,
        "filter_qs": filter_qs,
        "selected_tags": set(filters.tags),
        "bulk_limit": services.BULK_TAG_LIMIT,
        "has_filters": bool(filter_qs),
        "tag_form": TagPickForm(scope=scope, prefix_id="bulk_"),
    }


@role_required()
def customer_list(request):
    scope = data_scope(request.user)
    ctx = _list_context(request, scope)
    partial = request.headers.get("HX-Request") and request.headers.get("HX-Target") == "customer-results"
    template = "customers/_results.html" if partial else "customers/list.html"
    return render(request, template, ctx)


@role_required()
def customer_detail(request, customer_id: int):
    scope = data_scope(request.user)
    detail = selectors.customer_detail(scope, customer_id)  # 404 / 403 (out of scope)
    ways = dict(selectors.ADD_WAYS)
    channels = selectors.channel_names(r.state for r in detail["relations"])
    for r in detail["relations"]:
        r.add_way_label = ways.get(r.add_way, r.add_way)
        r.channel_name = channels.get(r.state, "")  # type: ignore[attr-defined]  # for the template
    return render(
        request,
        "customers/detail.html",
        {
            **detail,
            "tag_form": TagPickForm(scope=scope, prefix_id="detail_"),
            "event_kinds": dict(CustomerEvent.KIND),
            "active": FollowRelation.ACTIVE,
        },
    )


@role_required()
@require_POST
def bulk_tag(request):
    """Add / remove tags on the selected customers, or on every customer matching the filter (up
    to BULK_TAG_LIMIT). Only the viewer's relations in scope are tagged, active ones only (WeCom
    refuses mark_tag on a relation that ended)."""
    scope = data_scope(request.user)
    add = inputs.id_list(request.POST.getlist("add_tags"))
    remove = inputs.id_list(request.POST.getlist("remove_tags"))
    truncated = False
    if request.POST.get("target") == "all":
        form, _choices = _filter_form(request, scope, data=request.POST)
        filters = form.filters()
        qs = selectors.customer_queryset(scope, filters).order_by("-first_added_at", "-id")
        ids = list(qs.values_list("id", flat=True)[: services.BULK_TAG_LIMIT + 1])
        if len(ids) > services.BULK_TAG_LIMIT and (add or remove):
            # more than one request should write: the worker tags them all, in batches
            job = services.start_bulk_tag_job(
                scope,
                filters,
                add_tag_pks=add,
                remove_tag_pks=remove,
                total=selectors.customer_queryset(scope, filters).count(),
                user_id=request.user.id,
                operator=request.user.get_username(),
            )
            return _bulk_job_response(request, job)
    else:
        ids = inputs.id_list(request.POST.getlist("ids"))
        ids = list(selectors.customer_queryset(scope).filter(id__in=ids).values_list("id", flat=True))
    if len(ids) > services.BULK_TAG_LIMIT:
        ids, truncated = ids[: services.BULK_TAG_LIMIT], True
    result = None
    if not ids:
        error = _("请先选择客户。")
    elif not add and not remove:
        error = _("请选择要添加或移除的标签。")
    else:
        error = ""
        relations = selectors.relations_for_tagging(scope, ids)
        result = services.bulk_mark_tags(
            relations, add_tag_pks=add, remove_tag_pks=remove, operator=request.user.get_username()
        )
        result.truncated = truncated
    ctx = {"result": result, "error": error, "bulk_limit": services.BULK_TAG_LIMIT, "selected": len(ids)}
    if request.headers.get("HX-Request"):
        response = render(request, "customers/_bulk_result.html", ctx)
        if result is not None and result.succeeded:
            response["HX-Trigger"] = "customers-changed"  # the list reloads with the new tags
        return response
    if error or result is None:  # no result exactly when there is an error
        messages.error(request, error)
    elif result.failures:
        messages.warning(
            request,
            _("%(ok)s 个跟进关系已更新，%(failed)s 个失败。")
            % {"ok": result.succeeded, "failed": len(result.failures)},
        )
    else:
        messages.success(request, _("%(ok)s 个跟进关系已更新。") % {"ok": result.succeeded})
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    back = reverse("customers:list")
    query = _filter_query(request.POST)
    return redirect(f"{back}?{query}" if query else back)


def _bulk_job_response(request, job):
    if request.headers.get("HX-Request"):
        return render(request, "customers/_bulk_job.html", {"job": job})
    messages.info(request, _("已开始在后台为 %(n)s 位客户批量打标签。") % {"n": job.total})
    return redirect(f"{reverse('customers:list')}?{_filter_query(request.POST)}")


@role_required()
def bulk_tag_job(request, job_id: int):
    """A background bulk-tag job's progress (the panel polls it until the job is finished)."""
    job = selectors.bulk_tag_job(job_id, user_id=request.user.id, is_admin=role_of(request.user) == "admin")
    if job is None:
        raise Http404(_("任务不存在"))
    response = render(request, "customers/_bulk_job.html", {"job": job})
    if job.finished and job.succeeded:  # the last poll: the list reloads with the new tags
        response["HX-Trigger"] = "customers-changed"
    return response


@role_required()
def export(request, fmt: str):
    scope = data_scope(request.user)
    form, _choices = _filter_form(request, scope)
    filters, sort = form.filters(), form.sort_key()
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    if fmt == "xlsx":
        response = HttpResponse(
            exports.xlsx_bytes(scope, filters, sort),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
        response["Content-Disposition"] = f'attachment; filename="customers-{stamp}.xlsx"'
        return response
    stream = StreamingHttpResponse(exports.csv_stream(scope, filters, sort), content_type="text/csv; charset=utf-8")
    stream["Content-Disposition"] = f'attachment; filename="customers-{stamp}.csv"'
    return stream
