"""Console sign-in with WeCom (企业微信扫码登录, part 4 §1): the login page's button sends the browser
to WeCom's web-login page; WeCom comes back with a code, which names the member; their account is
signed in (made on first sign-in from their departments, ``services``). Password sign-in stays."""

from __future__ import annotations

import logging
import secrets

from django.contrib import auth, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from siyu.signin import services
from siyu.wecom import gateway

logger = logging.getLogger("siyu.signin")

SESSION_STATE = "wecom_login_state"
SESSION_NEXT = "wecom_login_next"


def _back_to_login(request: HttpRequest, message: str) -> HttpResponse:
    messages.error(request, message)
    return HttpResponseRedirect(reverse("accounts:login"))


@require_GET
def start(request: HttpRequest) -> HttpResponse:
    if not gateway.identity.web_login_ready():
        return _back_to_login(request, _("管理员尚未配置企业微信（企业 ID 与应用 AgentID），请用账号密码登录。"))
    state = secrets.token_hex(16)
    request.session[SESSION_STATE] = state
    nxt = request.GET.get("next", "")
    if nxt and url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()}):
        request.session[SESSION_NEXT] = nxt
    redirect_uri = request.build_absolute_uri(reverse("signin:callback"))
    return HttpResponseRedirect(gateway.identity.web_login_url(redirect_uri, state))


@require_GET
def callback(request: HttpRequest) -> HttpResponse:
    expected = request.session.pop(SESSION_STATE, None)
    if not expected or not secrets.compare_digest(request.GET.get("state", ""), expected):
        return _back_to_login(request, _("登录已过期或来源不明，请重新扫码。"))
    code = request.GET.get("code", "")
    if not code:
        return _back_to_login(request, _("已取消扫码登录。"))
    try:
        user = services.sign_in_member(code)
    except services.SignInRefused as e:
        return _back_to_login(request, str(e))
    auth.login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    logger.info("console sign-in with WeCom: %s", user.username)
    return HttpResponseRedirect(request.session.pop(SESSION_NEXT, "") or reverse("overview"))
