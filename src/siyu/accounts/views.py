"""Sign-in and sign-out (Django's auth views with the console's templates)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from siyu.accounts import selectors, services
from siyu.accounts.forms import ApiTokenForm, LoginForm
from siyu.accounts.permissions import ADMIN_ONLY, role_required


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    """POST only (Django 5): the top bar's sign-out button is a small form."""


# --- 设置 › API 令牌 (admin only) ---------------------------------------------------------------
@role_required(*ADMIN_ONLY)
@require_http_methods(["GET", "POST"])
def api_tokens(request):
    """List tokens and create one. The created token is rendered in this response only (never
    stored, never put in the session or a redirect)."""
    new_token = None
    form = ApiTokenForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            try:
                row, token = services.create_api_token(
                    form.cleaned_data["user"], form.cleaned_data["name"], created_by=request.user
                )
            except ValidationError as e:
                form.add_error(None, e)
            else:
                new_token = {"row": row, "token": token}
                form = ApiTokenForm()
        if not new_token:
            messages.error(request, _("请修正下面标出的错误。"))
    response = render(
        request,
        "accounts/api_tokens.html",
        {"form": form, "tokens": selectors.api_tokens(), "new_token": new_token, "role_labels": selectors.ROLE_LABELS},
    )
    if new_token:
        response["Cache-Control"] = "no-store"
    return response


@role_required(*ADMIN_ONLY)
@require_POST
def api_token_revoke(request, token_id: int):
    if services.revoke_api_token(token_id):
        messages.success(request, _("令牌 #%(id)s 已吊销，使用它的请求将返回 401。") % {"id": token_id})
    else:
        messages.warning(request, _("令牌 #%(id)s 不存在或已吊销。") % {"id": token_id})
    return redirect("apitokens:list")


def locked_out(request, original_response=None, credentials=None):
    """django-axes' answer to a sign-in while locked out (AXES_LOCKOUT_CALLABLE): the login page
    with the reason and the cool-off, status 429. Nothing says whether the password was right."""
    minutes = max(1, int(settings.AXES_COOLOFF_TIME.total_seconds() // 60))
    message = _("登录失败次数过多，已暂时锁定。请在 %(minutes)s 分钟后重试。") % {"minutes": minutes}
    context = {"form": LoginForm(request), "locked_out": message, "next": request.POST.get("next", "")}
    return render(request, "accounts/login.html", context, status=429)
