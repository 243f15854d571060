"""Sign-in and sign-out (Django's auth views with the console's templates)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from siyu.accounts import selectors, services
from siyu.accounts.forms import ApiTokenForm, LoginForm, PasswordResetForm, UserCreateForm, UserRoleForm
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


# --- 设置 › 用户与角色 (admin only) ------------------------------------------------------------
def _shown_once(response):
    response["Cache-Control"] = "no-store"
    return response


@role_required(*ADMIN_ONLY)
@require_http_methods(["GET", "POST"])
def users(request):
    """Every console user, and the form to create one. A generated password is rendered in this
    response only (never stored in clear, never in the session or a redirect)."""
    form = UserCreateForm(request.POST or None)
    created: dict | None = None
    if request.method == "POST":
        if form.is_valid():
            generated = not form.cleaned_data["password"]
            password = form.cleaned_data["password"] or services.generate_password()
            try:
                user = services.create_user(
                    form.cleaned_data["username"], password, actor=request.user, **form.scope_kwargs()
                )
            except ValidationError as e:
                form.add_error("password" if not generated and _is_password_error(e) else None, e)
            else:
                created = {"user": user, "password": password if generated else None}
                form = UserCreateForm()
        if created is None:
            messages.error(request, _("请修正下面标出的错误。"))
        elif created["password"] is None:
            messages.success(request, _("用户“%(name)s”已创建。") % {"name": created["user"].get_username()})
    q = (request.GET.get("q") or "").strip()[:150]
    response = render(
        request,
        "accounts/users.html",
        {"form": form, "rows": selectors.user_rows(q), "q": q, "created": created},
    )
    return _shown_once(response) if created and created["password"] else response


def _is_password_error(e: ValidationError) -> bool:
    return any(getattr(err, "code", "") and str(err.code).startswith("password") for err in e.error_list)


@role_required(*ADMIN_ONLY)
@require_http_methods(["GET", "POST"])
def user_detail(request, user_id: int):
    """One user: change role and scope, reset the password, disable or enable."""
    user = selectors.user_by_id(user_id)
    if user is None:
        raise Http404(_("用户不存在"))
    role_form = UserRoleForm.for_user(user)
    password_form = PasswordResetForm()
    new_password = None
    action = request.POST.get("action", "") if request.method == "POST" else ""
    try:
        if action == "role":
            role_form = UserRoleForm(request.POST)
            if role_form.is_valid():
                services.change_role(user, actor=request.user, **role_form.scope_kwargs())
                messages.success(request, _("角色和数据范围已更新。"))
                return redirect("users:detail", user_id=user.id)
        elif action == "password":
            password_form = PasswordResetForm(request.POST)
            if password_form.is_valid():
                try:
                    new_password = services.set_password(
                        user, password_form.cleaned_data["password"], actor=request.user
                    )
                except ValidationError as e:
                    password_form.add_error("password", e)
        elif action in ("disable", "enable"):
            services.set_active(user, action == "enable", actor=request.user)
            messages.success(request, _("账号已启用。") if action == "enable" else _("账号已停用。"))
            return redirect("users:detail", user_id=user.id)
        elif request.method == "POST":
            return HttpResponseBadRequest(_("未知操作"))
    except ValidationError as e:
        messages.error(request, " ".join(e.messages))
        if action in ("disable", "enable"):
            return redirect("users:detail", user_id=user.id)
        role_form.add_error(None, e)
    if action in ("role", "password") and new_password is None:
        messages.error(request, _("请修正下面标出的错误。"))
    row = selectors.user_rows(user_id=user.id)[0]
    ctx = {
        "target": user,
        "row": row,
        "role_form": role_form,
        "password_form": password_form,
        "new_password": new_password,
        "is_self": user.id == request.user.id,
    }
    response = render(request, "accounts/user_detail.html", ctx)
    return _shown_once(response) if new_password else response
