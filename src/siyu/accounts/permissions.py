"""Role checks for console views (``@role_required("admin")``, ``RoleRequiredMixin``) and REST
routes (``require_role(request, ...)``, ``scope_of(request)``): the part of accounts' public face
that every other app's views and api modules use.

Anonymous users are sent to the login page; signed-in users without the role get 403.
``@role_required()`` with no roles admits any user who has a role.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, Concatenate, ParamSpec
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import resolve_url
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views import View
from ninja.errors import HttpError

from siyu.accounts.models import Profile
from siyu.accounts.selectors import DataScope, data_scope, role_of

Role = Profile.Role
ADMIN_ONLY = (Role.ADMIN,)

P = ParamSpec("P")
ViewFunc = Callable[Concatenate[HttpRequest, P], HttpResponseBase]


def check_role(request: HttpRequest, roles: tuple[str, ...]) -> None:
    """Raise ``PermissionDenied`` unless the signed-in user has one of ``roles`` (any role if empty)."""
    role = role_of(request.user)
    if role is None:
        raise PermissionDenied(_("此账号尚未分配角色，请联系管理员。"))
    if roles and role not in roles:
        labels = _("、").join(str(dict(Profile.ROLES)[r]) for r in roles)
        raise PermissionDenied(_("此页面仅限以下角色访问：%(roles)s") % {"roles": labels})


def login_redirect(request: HttpRequest) -> HttpResponseBase:
    """To the login page and back. An htmx request (a panel polling after the session expired) gets
    ``HX-Redirect`` so the whole page goes to the login form instead of the form being swapped
    into the panel."""
    if request.headers.get("HX-Request"):
        current = urlsplit(request.headers.get("HX-Current-URL", ""))
        back = current.path + (f"?{current.query}" if current.query else "") if current.path else "/"
        response = HttpResponse(b"")
        response["HX-Redirect"] = resolve_url(settings.LOGIN_URL) + "?" + urlencode({"next": back})
        return response
    return redirect_to_login(request.get_full_path())


def role_required(*roles: str) -> Callable[[ViewFunc[P]], ViewFunc[P]]:
    def decorator(view: ViewFunc[P]) -> ViewFunc[P]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
            if not request.user.is_authenticated:
                return login_redirect(request)
            check_role(request, roles)
            return view(request, *args, **kwargs)

        wrapped.__dict__["siyu_roles"] = roles  # the roles, for introspection (a plain function attribute)
        return wrapped

    return decorator


class RoleRequiredMixin(View):
    """For class-based views: ``roles = ("admin",)``; empty = any user with a role."""

    roles: tuple[str, ...] = ()

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return login_redirect(request)
        check_role(request, tuple(self.roles))
        return super().dispatch(request, *args, **kwargs)


# --- REST routes (request.auth is the caller, set by siyu.accounts.api's authenticators) ---


def caller(request: HttpRequest) -> User:
    """The REST caller: the user ``request.auth`` holds once an authenticator of siyu.accounts.api
    admitted the request (django-ninja sets the attribute at run time; this is its typed face)."""
    user = getattr(request, "auth", None)
    if not isinstance(user, User):
        raise HttpError(401, "Unauthorized")
    return user


def scope_of(request: HttpRequest) -> DataScope:
    """The caller's data scope (the selectors enforce it)."""
    return data_scope(caller(request))


def require_role(request: HttpRequest, *roles: str) -> None:
    role = role_of(caller(request))
    if role is None or role not in roles:
        raise HttpError(403, "Your role may not do this")
