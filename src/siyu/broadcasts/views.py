"""Console pages for broadcasts: list, composer with estimate, detail with the funnel, exports."""

from __future__ import annotations

import csv
import json
import logging
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponseBadRequest, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from siyu.accounts.permissions import role_required
from siyu.accounts.selectors import data_scope
from siyu.broadcasts import audience as aud
from siyu.broadcasts import planning, selectors, services
from siyu.broadcasts.forms import MOMENT_SEGMENT_NOTE, ComposeForm, initial_from
from siyu.broadcasts.models import Broadcast, Media, Recipient
from siyu.core import inputs, preview
from siyu.core.text import safe_cell
from siyu.wecom import errcodes
from siyu.wecom.gateway import WeComAPIError

logger = logging.getLogger(__name__)
COMPOSERS = ("admin", "operator", "store_manager")


def _poll_s() -> int:
    return max(1, int(settings.SIYU_BROADCAST_POLL_S))


def _listing(request, moments: bool):
    """The task list (mass messages, or Moments); ``?part=rows`` is the table body alone, which
    the page re-reads every few seconds while a task on it is live (HTTP 286 stops the polling)."""
    scope = data_scope(request.user)
    qs = selectors.broadcasts_for(request.user, scope)
    qs = qs.filter(kind=Broadcast.MOMENT) if moments else qs.exclude(kind=Broadcast.MOMENT)
    status = request.GET.get("status", "")
    if status in dict(Broadcast.STATUS):
        qs = qs.filter(status=status)
    rows: list[dict[str, Any]] = [{"b": b, "p": selectors.progress(b)} for b in qs[:200]]
    live = any(bool(r["p"]["live"]) for r in rows)
    ctx = {
        "rows": rows,
        "statuses": Broadcast.STATUS,
        "status": status,
        "moments": moments,
        "live": live,
        "poll_s": _poll_s(),
    }
    if request.GET.get("part") == "rows":
        return render(request, "broadcasts/_list_rows.html", ctx, status=200 if live else 286)
    return render(request, "broadcasts/list.html", ctx)


@role_required()
def broadcast_list(request):
    return _listing(request, moments=False)


@role_required()
def moment_list(request):
    return _listing(request, moments=True)


def _form(request, scope, broadcast=None):
    choices = selectors.composer_choices(scope)
    # uploaded files stay with the draft; link and mini-program come back through their fields
    keep = [a for a in (broadcast.attachments if broadcast else []) if a.get("type") in ("image", "video", "file")]
    user = request.user
    if request.method == "POST":
        return ComposeForm(request.POST, request.FILES, scope=scope, keep_attachments=keep, user=user), choices
    initial = initial_from(broadcast) if broadcast else {"kind": request.GET.get("kind", Broadcast.CUSTOMER)}
    if broadcast is None and str(request.GET.get("segment", "")).isdigit():  # a segment page's "send to it"
        initial["segment"] = request.GET["segment"]
    return ComposeForm(initial=initial, scope=scope, keep_attachments=keep, user=user), choices


@role_required(*COMPOSERS)
def compose(request, pk: int | None = None):
    scope = data_scope(request.user)
    b = selectors.broadcast_for(request.user, scope, pk) if pk else None
    if b is not None and b.status != Broadcast.DRAFT:
        messages.error(request, _("只有草稿可以编辑"))
        return redirect("broadcasts:detail", b.id)
    form, choices = _form(request, scope, b)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        b = services.save_draft(
            kind=d["kind"],
            name=d["name"],
            text=d["text"],
            attachments=form.attachments(),
            audience=form.audience(),
            scope=scope,
            user=request.user,
            send_at=d.get("send_at"),
            broadcast=b,
        )
        if request.POST.get("op") == "send":
            services.submit(b)
            messages.success(request, _("已提交发送") if not b.send_at else _("已定时"))
        else:
            messages.success(request, _("草稿已保存"))
        return redirect("broadcasts:detail", b.id)
    return render(
        request,
        "broadcasts/compose.html",
        {
            "form": form,
            "broadcast": b,
            "choices": choices,
            "attachments": selectors.attachment_labels(b.attachments if b else []),
            "preview": preview.context(str(form["kind"].value() or Broadcast.CUSTOMER)),
            "moment_segment_note": MOMENT_SEGMENT_NOTE,
        },
    )


@role_required(*COMPOSERS)
@require_POST
def estimate_preview(request):
    """htmx: the estimate of the form as it stands (nothing is saved)."""
    scope = data_scope(request.user)
    form = ComposeForm(request.POST, scope=scope, user=request.user)
    form.is_valid()
    if any(
        k in form.errors
        for k in (
            "kind",
            "tags",
            "employees",
            "departments",
            "group_ids",
            "group_tags",
            "group_member",
            "added_from",
            "added_to",
            "state",
            "status",
            "segment",
        )
    ):
        return render(request, "broadcasts/_estimate.html", {"error": _("请检查受众条件")})
    kind = form.cleaned_data.get("kind") or Broadcast.CUSTOMER
    b = Broadcast(
        kind=kind,
        audience={
            **aud.from_json({**form.audience(), "type": aud.type_for(kind, form.audience())}).to_json(),
            "scope": aud.scope_to_json(scope),
        },
    )
    est = planning.estimate(b)
    skipped = [{"reason": k, "label": selectors.reason_label(k), "n": v} for k, v in sorted(est["skipped"].items())]
    return render(
        request,
        "broadcasts/_estimate.html",
        {"est": est, "skipped": skipped, "kind": kind, "segment": selectors.segment_audience(b, scope)},
    )


@role_required(*COMPOSERS)
@require_POST
def upload_media(request):
    """Store an attachment file; WeCom's media/upload limits are checked by content (siyu.core.inputs)."""
    f = request.FILES.get("media")
    kind = request.POST.get("kind", "image")
    if f is None or kind not in dict(Media.KINDS):
        return JsonResponse({"detail": _("请上传图片、视频或文件。")}, status=400)
    if f.size > inputs.MEDIA_MAX[kind]:  # before reading it
        return JsonResponse(
            {"detail": _("文件太大：最大 %(mb)d MB。") % {"mb": inputs.MEDIA_MAX[kind] // (1024 * 1024)}}, status=400
        )
    data = f.read()
    try:
        content_type = inputs.check_media(kind, data, f.name, f.content_type or "")
    except inputs.MediaError as e:
        logger.info("media upload refused: %s", e)
        return JsonResponse({"detail": str(e)}, status=400)
    m = services.save_media(kind, f.name[:128], data, content_type)
    return JsonResponse({"id": m.id, "name": m.name, "size": m.size})


@role_required()
def detail(request, pk: int):
    scope = data_scope(request.user)
    b = selectors.broadcast_for(request.user, scope, pk)
    state = request.GET.get("state", "")
    if state not in dict(Recipient.STATES):
        state = ""
    p = selectors.progress(b)
    # ?part=live: the live part alone, re-read by the page while the task is live (286 stops it)
    live_part = request.GET.get("part") == "live"
    return render(
        request,
        "broadcasts/_live.html" if live_part else "broadcasts/detail.html",
        {
            "b": b,
            "p": p,
            "poll_s": _poll_s(),
            "oob": live_part,  # the fragment also redraws the heading's status and the actions
            "next_sync": selectors.next_sync(b) if p["live"] else None,
            "funnel_json": json.dumps(selectors.funnel(b), ensure_ascii=False),
            "employees": selectors.employee_table(b, scope),
            "recipients": [] if live_part else selectors.recipients(b, scope, state=state),
            "failed_reasons": selectors.failed_reasons(b),
            "error": selectors.error_text(b.error),
            "states": Recipient.STATES,
            "state": state,
            "t": b.totals or {},
            "attachments": selectors.attachment_labels(b.attachments),
            "preview": preview.render_context(b.kind, b.text, b.attachments),
            "segment": None if live_part else selectors.segment_audience(b, scope),
            "tagging": selectors.tagging_progress(b),
        },
        status=286 if live_part and not p["live"] else 200,
    )


@role_required(*COMPOSERS)
@require_POST
def act(request, pk: int, op: str):
    scope = data_scope(request.user)
    b = selectors.broadcast_for(request.user, scope, pk)
    try:
        if op == "send":
            services.submit(b)
            messages.success(request, _("已提交发送"))
        elif op == "copy":
            c = services.copy(b, request.user)
            return redirect("broadcasts:edit", c.id)
        elif op == "delete":
            services.delete_draft(b)
            return redirect("broadcasts:list")
        elif op == "sync":
            services.sync(b)
            messages.success(request, _("已同步结果"))
        elif op == "remind":
            n = services.remind(b)
            messages.success(request, _("已提醒 %(n)s 条未发送的群发") % {"n": n})
        elif op == "cancel":
            services.cancel(b)
            messages.success(request, _("已取消"))
        else:
            return HttpResponseBadRequest("unknown action")
    except services.BroadcastError as e:
        messages.error(request, str(e))
    except WeComAPIError as e:
        messages.error(request, errcodes.explain_error(e))
    return redirect("broadcasts:detail", b.id)


class _Echo:
    def write(self, value):
        return value


@role_required()
def export(request, pk: int, what: str):
    scope = data_scope(request.user)
    b = selectors.broadcast_for(request.user, scope, pk)
    w = csv.writer(_Echo())
    if what == "employees":

        def gen():
            yield "\ufeff" + w.writerow(
                [_("员工"), _("账号"), _("对象数"), _("已跳过"), _("已确认"), _("已送达"), _("未送达"), _("员工未发送")]
            )
            for r in selectors.employee_table(b, scope):
                yield w.writerow(
                    [
                        safe_cell(r["name"]),
                        r["userid"],
                        r["total"],
                        r["skipped"],
                        _("是") if r["confirmed"] else _("否"),
                        r["received"],
                        r["failed"],
                        r["declined"],
                    ]
                )
    elif what == "recipients":

        def gen():
            yield "\ufeff" + w.writerow([_("对象"), _("名称"), _("员工"), _("状态"), _("原因")])
            for r in selectors.recipients(b, scope, limit=None):
                yield w.writerow(
                    [r["r"].target, safe_cell(r["name"]), safe_cell(r["employee"]), r["state_label"], r["reason_label"]]
                )
    else:
        return HttpResponseBadRequest("unknown export")
    resp = StreamingHttpResponse(gen(), content_type="text/csv; charset=utf-8")
    resp["Content-Disposition"] = f'attachment; filename="broadcast-{b.id}-{what}.csv"'
    return resp
