"""The REST API: one django-ninja instance mounted at /api/v1/ (siyu.urls), with the apps' routers.

- Auth: ``Authorization: Bearer <API token>`` (settings › API 令牌, or ``siyu apitoken create``) or
  the console session (+ CSRF header for unsafe methods). See ``siyu.accounts.api``.
- Scope: every endpoint reads through the apps' scoped selectors; out of scope → 403, unknown → 404.
- Errors are JSON ``{"detail": ...}``: 400 bad input, 401 no/invalid/revoked token, 403 scope or
  role, 404 unknown, 422 validation (``detail`` is then pydantic's list of problems), 502 when
  WeCom refuses a change for a reason other than the input.
- Docs: /api/v1/docs (Swagger UI bundled with django-ninja, served from our static files — no CDN)
  and the schema at /api/v1/openapi.json.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from ninja import NinjaAPI, Swagger
from ninja.errors import AuthenticationError

from siyu.accounts.api import ConsoleSessionAuth, TokenAuth
from siyu.accounts.api import router as account_router
from siyu.broadcasts.api import router as broadcasts_router
from siyu.channels.api import router as channels_router
from siyu.channels.groupcodes.api import router as group_welcome_router
from siyu.commerce.api import router as commerce_router
from siyu.customers.api import router as customers_router
from siyu.customers.api import tags_router
from siyu.customers.tags.services import TagChangeError
from siyu.groups.api import router as groups_router
from siyu.insights.api import router as insights_router
from siyu.org.api import router as employees_router
from siyu.profiles.api import router as profiles_router
from siyu.segments.api import router as segments_router
from siyu.transfers.api import router as transfers_router
from siyu.wecom import gateway
from siyu.wecom.media.api import router as media_router

api = NinjaAPI(
    title="Siyu API",
    version="1",
    description=(
        "Customers, tags, groups and employees of the Siyu SCRM, within the caller's data scope. "
        "Authenticate with `Authorization: Bearer <token>`."
    ),
    auth=[TokenAuth(), ConsoleSessionAuth()],
    urls_namespace="api-v1",
    docs=Swagger(settings={"validatorUrl": None, "persistAuthorization": False}),
    docs_url="/docs",
    openapi_url="/openapi.json",
)

api.add_router("", account_router)
api.add_router("", customers_router)
api.add_router("", tags_router)
api.add_router("", groups_router)
api.add_router("", employees_router)
api.add_router("", channels_router)
api.add_router("", group_welcome_router)
api.add_router("", media_router)
api.add_router("", broadcasts_router)
api.add_router("", transfers_router)
api.add_router("", profiles_router)
api.add_router("", commerce_router)
api.add_router("", insights_router)
api.add_router("", segments_router)


@api.exception_handler(AuthenticationError)
def _unauthorized(request, exc):
    response = api.create_response(request, {"detail": "Missing, invalid or revoked API token"}, status=401)
    response["WWW-Authenticate"] = 'Bearer realm="siyu"'
    return response


@api.exception_handler(PermissionDenied)
def _forbidden(request, exc):
    return api.create_response(request, {"detail": str(exc) or "Outside your data scope"}, status=403)


@api.exception_handler(RequestDataTooBig)
def _too_big(request, exc):
    mb = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // (1024 * 1024)
    return api.create_response(
        request, {"detail": f"The request body is over {mb} MB: send fewer rows per call"}, status=413
    )


@api.exception_handler(DjangoValidationError)
def _invalid(request, exc):
    return api.create_response(request, {"detail": "; ".join(exc.messages)}, status=400)


# WeCom refusals of a tag change: these errcodes are about the input (name invalid / duplicate /
# too long, unknown id, tag limit reached, empty group) → 400; anything else is WeCom's side → 502.
_INPUT_ERRCODES = {40071, 40072, 40068, 40126, 40058}


@api.exception_handler(TagChangeError)
def _tag_change(request, exc: TagChangeError):
    status = 400 if exc.errcode in _INPUT_ERRCODES else 502
    return api.create_response(request, {"detail": exc.message, "errcode": exc.errcode}, status=status)


@api.exception_handler(gateway.WeComAPIError)
def _wecom(request, exc):
    return api.create_response(
        request, {"detail": f"WeCom error {exc.errcode}: {exc.errmsg}", "errcode": exc.errcode}, status=502
    )
