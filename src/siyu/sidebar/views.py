"""The chat sidebar (聊天工具栏): a mobile page WeCom opens beside a chat.

Sign-in is WeCom's OAuth alone (no password): ``/sidebar/`` sends an unknown visitor to WeCom's
authorize page, which comes back to ``/sidebar/oauth/`` with a code; the member's account is then
signed in for this browser (``signin.services.sign_in_member``). The page registers the JS-SDK
(``wx.config`` and ``wx.agentConfig``, signed by ``/sidebar/signature``), asks the client which
chat it is beside, and loads the customer's or the group's panel.
"""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.contrib import auth
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from siyu.accounts.selectors import data_scope
from siyu.core import inputs
from siyu.customers import selectors as customer_selectors
from siyu.customers import services as customer_services
from siyu.guidetasks import selectors as task_selectors
from siyu.guidetasks import services as task_services
from siyu.sidebar import selectors, services
from siyu.signin import services as signin
from siyu.wecom import gateway

logger = logging.getLogger("siyu.sidebar")

SESSION_MEMBER = "sidebar_member"
SESSION_STATE = "sidebar_oauth_state"
SESSION_NEXT = "sidebar_oauth_next"
JS_APIS = ["getContext", "getCurExternalContact", "getCurExternalChat", "sendChatMessage", "openUserProfile"]


def _framed(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """The sidebar runs in WeCom's client: in production a web view (nothing frames it), with the
    emulator a panel of its client page. Allow that frame and WeCom's JS-SDK script, nothing more."""
    origins = gateway.identity.browser_origins()
    jssdk = urlsplit(gateway.identity.jssdk_url())
    # read by django-csp's middleware: the script source is added, the frame ancestors replaced
    response._csp_update = {"script-src": [f"{jssdk.scheme}://{jssdk.netloc}"]}  # type: ignore[attr-defined]
    response._csp_replace = {"frame-ancestors": ["'self'", *origins]}  # type: ignore[attr-defined]
    if origins:
        response.xframe_options_exempt = True  # CSP frame-ancestors governs
    return response


def _page(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    """A whole page, or only its content for htmx (the panels load into the entry page)."""
    partial = request.headers.get("HX-Request") == "true"
    context["base"] = "sidebar/fragment.html" if partial else "sidebar/base.html"
    return _framed(request, render(request, template, context, status=status))


def _error(request: HttpRequest, message: str, status: int = 400) -> HttpResponse:
    logger.info("sidebar refused (%s): %s", status, message)
    return _page(request, "sidebar/error.html", {"message": message}, status=status)


def _viewer(request: HttpRequest) -> selectors.Viewer | None:
    userid = request.session.get(SESSION_MEMBER)
    if not userid or not request.user.is_authenticated:
        return None
    return selectors.Viewer(scope=data_scope(request.user), userid=userid)


def _member(*, json: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A view for a member signed in here: called as ``view(request, viewer, ...)``; anyone else
    gets a 401 saying to open the sidebar again (as JSON for the page's script)."""

    def wrap(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def inner(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            viewer = _viewer(request)
            if viewer is None:
                message = _("请重新打开侧边栏。")
                return _json_error(message, 401) if json else _error(request, message, status=401)
            return view(request, viewer, *args, **kwargs)

        return inner

    return wrap


def _start_oauth(request: HttpRequest, then: str = "sidebar:entry") -> HttpResponse:
    state = secrets.token_hex(16)
    request.session[SESSION_STATE] = state
    request.session[SESSION_NEXT] = then
    redirect_uri = request.build_absolute_uri(reverse("sidebar:oauth"))
    return HttpResponseRedirect(gateway.identity.oauth_url(redirect_uri, state))


@require_GET
def entry(request: HttpRequest) -> HttpResponse:
    if _viewer(request) is None:
        return _start_oauth(request)
    return _page(
        request,
        "sidebar/entry.html",
        {"jssdk_url": gateway.identity.jssdk_url(), "js_apis": JS_APIS},
    )


@require_GET
def oauth(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "")
    expected = request.session.pop(SESSION_STATE, None)
    if not expected or not secrets.compare_digest(state, expected):
        return _error(request, _("登录已过期或来源不明。请关闭侧边栏后重新打开。"))
    code = request.GET.get("code", "")
    if not code:
        return _error(request, _("你没有同意授权。请重新打开侧边栏并同意授权。"), status=403)
    try:
        user = signin.sign_in_member(code)
    except signin.SignInRefused as e:
        return _error(request, str(e), status=403)
    member = signin.member_of(user)
    auth.login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    request.session[SESSION_MEMBER] = member
    then = request.session.pop(SESSION_NEXT, "sidebar:entry")
    return HttpResponseRedirect(reverse(then if then in ("sidebar:entry", "sidebar:tasks") else "sidebar:entry"))


@require_GET
@_member(json=True)
def signature(request: HttpRequest, viewer: selectors.Viewer) -> JsonResponse:
    """``wx.config`` / ``wx.agentConfig`` parameters for the page at ``url`` (this site only)."""
    url = request.GET.get("url", "")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.netloc != request.get_host() or len(url) > 2048:
        return JsonResponse({"error": _("页面地址不属于本站。")}, status=400)
    try:
        signed = gateway.identity.signatures(url, fresh=request.GET.get("fresh") == "1")
    except gateway.WeComAPIError as e:
        logger.warning("JS-SDK signature failed: %s", gateway.redact(e))
        return JsonResponse(
            {"error": _("企业微信暂时无法签名（%(e)s）。请稍后重试。") % {"e": gateway.error_text(e)}}, status=502
        )
    for part in signed.values():
        part["jsApiList"] = JS_APIS
    return JsonResponse(signed)


def _customer_context(viewer: selectors.Viewer, external_userid: str) -> dict[str, Any]:
    card = selectors.customer_card(viewer, external_userid)
    card["tag_groups"] = selectors.tag_library() if card["own"] else []
    card["library"] = selectors.library(viewer, selectors.card_variables(viewer, card))
    card["chat"] = {"type": "single", "key": external_userid}
    return card


@require_GET
@_member()
def customer(request: HttpRequest, viewer: selectors.Viewer, external_userid: str) -> HttpResponse:
    try:
        context = _customer_context(viewer, external_userid)
    except selectors.NotInScope:
        return _error(request, _("这位客户不在你的客户范围内，或尚未同步到 Siyu。"), status=404)
    return _page(request, "sidebar/customer.html", context)


def _int_list(values: list[str]) -> list[int]:
    return [int(v) for v in values if v.isdigit()]


Outcome = tuple[str, str, dict[str, Any]]  # (error, saved, what to show again after an error)


def _edit(request: HttpRequest, viewer: selectors.Viewer, external_userid: str, refused: str, act: Any) -> HttpResponse:
    """A change to the member's own relation with the customer (``act(viewer, relation)`` answers
    an ``Outcome``), answered with the refreshed customer panel."""
    relation = selectors.own_relation(viewer, external_userid)
    if relation is None:
        return _error(request, refused, status=403)
    error, saved, keep = act(viewer, relation)
    context = _customer_context(viewer, external_userid)
    if error:
        context.update(error=error, **keep)
    else:
        context["saved"] = saved
    return _page(request, "sidebar/customer.html", context, status=400 if error else 200)


@require_POST
@_member()
def customer_tags(request: HttpRequest, viewer: selectors.Viewer, external_userid: str) -> HttpResponse:
    def act(member: selectors.Viewer, relation: Any) -> Outcome:
        chosen = set(_int_list(request.POST.getlist("tag")))
        shown = set(_int_list(request.POST.getlist("shown")))
        current = {t.id for t in customer_selectors.relation_tags(relation)}
        result = customer_services.bulk_mark_tags(
            [relation],
            add_tag_pks=sorted((chosen & shown) - current),
            remove_tag_pks=sorted((shown - chosen) & current),
            operator=signin.member_label(request.user),
        )
        if result.failures:
            f = result.failures[0]
            msg = _("企业微信拒绝了标签修改（%(code)s：%(msg)s）。请稍后重试。") % {"code": f.errcode, "msg": f.errmsg}
            return msg, "", {}
        return "", _("标签已保存"), {}

    return _edit(request, viewer, external_userid, _("只有添加了这位客户的成员才能修改其标签。"), act)


@require_POST
@_member()
def customer_remark(request: HttpRequest, viewer: selectors.Viewer, external_userid: str) -> HttpResponse:
    remark = request.POST.get("remark", "")
    description = request.POST.get("description", "")

    def act(member: selectors.Viewer, relation: Any) -> Outcome:
        keep = {"remark_input": remark, "description_input": description}
        try:
            customer_services.edit_remark(
                relation, remark=remark, description=description, operator=signin.member_label(request.user)
            )
        except ValueError:
            limits = {"r": customer_services.REMARK_MAX, "d": customer_services.DESCRIPTION_MAX}
            return _("备注最多 %(r)s 个字，描述最多 %(d)s 个字。") % limits, "", keep
        except gateway.WeComAPIError as e:
            return _("企业微信拒绝了修改（%(e)s）。请稍后重试。") % {"e": gateway.error_text(e)}, "", keep
        return "", _("备注已保存"), {}

    return _edit(request, viewer, external_userid, _("只有添加了这位客户的成员才能修改备注。"), act)


@require_POST
@_member()
def customer_followup(request: HttpRequest, viewer: selectors.Viewer, external_userid: str) -> HttpResponse:
    """A follow-up record (跟进记录), with the day to contact the customer next (a task that morning)."""
    text = request.POST.get("text", "")

    def act(member: selectors.Viewer, relation: Any) -> Outcome:
        try:
            next_at = inputs.query_date(request.POST, "next_at")
            task_services.add_followup(
                customer_id=relation.customer_id, userid=viewer.userid, text=text, next_at=next_at
            )
        except (task_services.TaskError, inputs.BadInput) as e:
            return str(e), "", {"followup_text": text[:500]}
        return "", _("跟进记录已保存"), {}

    return _edit(request, viewer, external_userid, _("只有添加了这位客户的成员才能写跟进记录。"), act)


@require_GET
@_member()
def group(request: HttpRequest, viewer: selectors.Viewer, chat_id: str) -> HttpResponse:
    try:
        context = selectors.group_card(viewer, chat_id)
    except selectors.NotInScope:
        return _error(request, _("这个客户群不在你的范围内，或尚未同步到 Siyu。"), status=404)
    context["library"] = selectors.library(viewer, selectors.variables(viewer, "group", chat_id))
    context["chat"] = {"type": "group", "key": chat_id}
    return _page(request, "sidebar/group.html", context)


@require_GET
@_member()
def library(request: HttpRequest, viewer: selectors.Viewer) -> HttpResponse:
    """The scripts and materials list, searched (htmx)."""
    chat_type, chat_key = request.GET.get("chat_type", ""), request.GET.get("chat_key", "")[:64]
    if not selectors.chat_in_scope(viewer, chat_type, chat_key):
        return _error(request, _("这个聊天不在你的范围内。"), status=404)
    context = {
        "library": selectors.library(
            viewer, selectors.variables(viewer, chat_type, chat_key), request.GET.get("q", "")
        ),
        "chat": {"type": chat_type, "key": chat_key},
    }
    return _framed(request, render(request, "sidebar/_library_items.html", context))


def _json_error(message: str, status: int) -> JsonResponse:
    logger.info("sidebar send refused (%s): %s", status, message)
    return JsonResponse({"error": message}, status=status)


@require_POST
@_member(json=True)
def prepare(request: HttpRequest, viewer: selectors.Viewer) -> JsonResponse:
    """The sendChatMessage body for a script or material in this chat (links made trackable,
    media uploaded to WeCom), and the token to report the send with."""
    item = request.POST.get("item", "")
    raw_id = request.POST.get("id", "")
    if item not in ("script", "material") or not raw_id.isdigit():
        return _json_error(_("未知的发送内容。"), 400)
    site = request.build_absolute_uri("/").rstrip("/")
    try:
        out = services.prepare_send(
            viewer, item, int(raw_id), request.POST.get("chat_type", ""), request.POST.get("chat_key", "")[:64], site
        )
    except services.SendRefused as e:
        return _json_error(str(e), 409)
    return JsonResponse(out)


@require_POST
@_member(json=True)
def sent(request: HttpRequest, viewer: selectors.Viewer) -> JsonResponse:
    """The client answered ``sendChatMessage:ok``: the send is counted (and completes tasks)."""
    try:
        services.record_send(viewer, request.POST.get("token", ""))
    except services.SendRefused as e:
        return _json_error(str(e), 409)
    return JsonResponse({"ok": True})


# --- the guide's tasks ----------------------------------------------------------------------------------
@require_GET
def workbench(request: HttpRequest) -> HttpResponse:
    """The guide's H5 task list (the morning summary's card opens it inside WeCom)."""
    viewer = _viewer(request)
    if viewer is None:
        return _start_oauth(request, then="sidebar:tasks")
    return _page(request, "sidebar/tasks.html", selectors.workbench(viewer))


@require_POST
@_member()
def task_done(request: HttpRequest, viewer: selectors.Viewer, pk: int) -> HttpResponse:
    """The guide marks a task done with its outcome; answers the panel it was marked from."""
    task = task_selectors.task_of_guide(viewer.userid, pk)
    if task is None:
        return _error(request, _("任务不存在或不是你的。"), status=404)
    error = ""
    try:
        task_services.mark_done(
            task, userid=viewer.userid, outcome=request.POST.get("outcome", ""), note=request.POST.get("note", "")
        )
    except task_services.TaskError as e:
        error = str(e)
    ext = request.POST.get("external_userid", "")
    if ext:
        try:
            context = _customer_context(viewer, ext)
        except selectors.NotInScope:
            return _error(request, _("这位客户不在你的客户范围内，或尚未同步到 Siyu。"), status=404)
        template = "sidebar/customer.html"
    else:
        context, template = selectors.workbench(viewer), "sidebar/tasks.html"
    if error:
        context["error"] = error
    else:
        context["saved"] = _("任务已完成")
    return _page(request, template, context, status=400 if error else 200)
