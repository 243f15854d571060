"""REST API authentication and the caller's identity.

Two ways in, tried in this order:

- ``Authorization: Bearer <token>``: an integration's API token (``ApiToken``); it acts with its
  owner's role and data scope. Missing, unknown or revoked tokens get 401.
- the console's session cookie (htmx calls from the console), with Django's CSRF check for
  unsafe methods (POST/PUT/PATCH/DELETE need the ``X-CSRFToken`` header).

A signed-in user without a role gets 403.
"""

from __future__ import annotations

from typing import Any, cast

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest
from ninja import Router, Schema
from ninja.errors import HttpError
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from siyu.accounts import services
from siyu.accounts.permissions import caller, scope_of
from siyu.accounts.selectors import role_of
from siyu.core.api_schemas import responses


class _AuthedRequest(HttpRequest):
    """The request as the authenticators leave it: how the caller got in ("token" or "session")."""

    siyu_auth: str


class TokenAuth(HttpBearer):
    """Bearer token → the token owner's user."""

    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        user = services.authenticate_api_token(token.strip())
        if user is not None:
            request.user = user
            cast(_AuthedRequest, request).siyu_auth = "token"
        return user


class ConsoleSessionAuth(APIKeyCookie):
    """The console's session. CSRF is checked only for a signed-in session (an anonymous request
    falls through to 401), and only for unsafe methods (Django's middleware logic)."""

    param_name = settings.SESSION_COOKIE_NAME
    openapi_description = "Console session cookie (htmx); unsafe methods need the X-CSRFToken header."

    def __init__(self) -> None:
        super().__init__(csrf=False)

    def __call__(self, request: HttpRequest) -> User | AnonymousUser | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        if check_csrf(request):
            raise HttpError(403, "CSRF check failed")
        if role_of(user) is None:
            raise HttpError(403, "This account has no role")
        cast(_AuthedRequest, request).siyu_auth = "session"
        return user

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:  # pragma: no cover - __call__ does the work
        return None


router = Router(tags=["account"])


class MeOut(Schema):
    username: str
    role: str
    auth: str
    scope: dict


@router.get("/me", response=responses(MeOut), summary="Who the caller is: role and data scope")
def me(request: HttpRequest) -> dict[str, object]:
    scope = scope_of(request)
    user = caller(request)
    return {
        "username": user.get_username(),
        "role": role_of(user) or "",
        "auth": getattr(request, "siyu_auth", ""),
        "scope": {
            "everything": scope.everything,
            "department_id": scope.department_id,
            "wecom_userid": scope.wecom_userid,
        },
    }
