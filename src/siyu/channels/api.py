"""REST API of the channels app (mounted by siyu.api under /api/v1/): channel codes, their
analytics. Reads honour the caller's DataScope; writes need admin or operator."""

from __future__ import annotations

import re
from datetime import timedelta

from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError

from siyu.accounts.permissions import Role, caller, require_role, scope_of
from siyu.channels import schedule, selectors, services
from siyu.channels.models import ChannelCode
from siyu.core.api_schemas import responses
from siyu.core.inputs import ApiDate, ApiDateTime, DbId, InputSchema
from siyu.wecom import gateway

router = Router(tags=["channels"])
MANAGERS = (Role.ADMIN, Role.OPERATOR)
USERID = r"^[A-Za-z0-9_.@-]{1,64}$"


class Slot(InputSchema):
    days: list[int] = Field(..., max_length=7, description="0 = Monday … 6 = Sunday")
    start: str = Field(..., pattern=r"^([01]?\d|2[0-3]):[0-5]\d$")
    end: str = Field(..., pattern=r"^([01]?\d|2[0-3]):[0-5]\d$")
    users: list[str] = Field(default_factory=list, max_length=100)


class Attachment(InputSchema):
    msgtype: str = Field(..., pattern="^(image|link|miniprogram|video|file)$")
    link: dict | None = None
    image: dict | None = Field(
        None, description='{"media": <id from POST /media>} (uploaded to WeCom when sent), or {"pic_url": ...}'
    )
    miniprogram: dict | None = Field(None, description="{title, appid, page, media: <cover image id>} or pic_media_id")
    video: dict | None = Field(None, description="{media: <id from POST /media>} or {media_id}")
    file: dict | None = Field(None, description="{media: <id from POST /media>} or {media_id}")


class CodeIn(InputSchema):
    name: str = Field(..., min_length=1, max_length=64)
    folder: str = Field("", max_length=64)
    kind: str = Field("channel", pattern="^(channel|store)$")
    department_id: DbId | None = None
    users: list[str] = Field(default_factory=list, max_length=100)
    backups: list[str] = Field(default_factory=list, max_length=100)
    schedule: list[Slot] = Field(default_factory=list, max_length=50)
    daily_cap: int = Field(0, ge=0, le=100000)
    skip_verify: bool = True
    skip_verify_start: str = Field("", pattern=r"^(([01]?\d|2[0-3]):[0-5]\d)?$")
    skip_verify_end: str = Field("", pattern=r"^(([01]?\d|2[0-3]):[0-5]\d)?$")
    tag_ids: list[str] = Field(default_factory=list, max_length=100)
    remark_template: str = Field("", max_length=64)
    description_template: str = Field("", max_length=255)
    welcome_text: str = Field("", max_length=4000)
    welcome_attachments: list[Attachment] = Field(default_factory=list, max_length=9)
    valid_until: ApiDateTime | None = None


class CodeOut(Schema):
    id: int
    name: str
    folder: str
    kind: str
    state: str
    config_id: str
    qr_url: str
    users: list[str]
    backups: list[str]
    active_users: list[str]
    on_backup: bool
    daily_cap: int
    schedule: list[dict]
    tag_ids: list[str]
    welcome: dict


def _data(body: CodeIn) -> dict:
    for u in body.users + body.backups + [u for s in body.schedule for u in s.users]:
        if not re.match(USERID, u):
            raise HttpError(422, f"invalid userid {u[:64]!r}")
    if body.kind == "channel" and not body.users:
        raise HttpError(422, "users must name at least one employee")
    if body.kind == "store" and not body.department_id:
        raise HttpError(422, "a store code needs department_id")
    try:
        atts = [{"msgtype": a.msgtype, a.msgtype: getattr(a, a.msgtype) or {}} for a in body.welcome_attachments]
        welcome = services.clean_welcome(body.welcome_text, atts)
        slots = services.clean_schedule([s.dict() for s in body.schedule])
    except services.ChannelError as e:
        raise HttpError(422, str(e)) from None
    return {
        "name": body.name,
        "folder": body.folder,
        "kind": body.kind,
        "department_id": body.department_id,
        "users": body.users,
        "backups": body.backups,
        "schedule": slots,
        "daily_cap": body.daily_cap,
        "skip_verify": body.skip_verify,
        "skip_verify_start": body.skip_verify_start,
        "skip_verify_end": body.skip_verify_end,
        "tag_ids": body.tag_ids,
        "remark_template": body.remark_template,
        "description_template": body.description_template,
        "welcome": welcome,
        "valid_until": body.valid_until,
    }


def _out(c: ChannelCode) -> dict:
    return {
        "id": c.id,
        "name": c.name,
        "folder": c.folder,
        "kind": c.kind,
        "state": c.state,
        "config_id": c.config_id,
        "qr_url": c.qr_url,
        "users": c.users,
        "backups": c.backups,
        "active_users": c.active_users,
        "on_backup": c.on_backup,
        "daily_cap": c.daily_cap,
        "schedule": c.schedule,
        "tag_ids": c.tag_ids,
        "welcome": c.welcome,
    }


@router.get("/channel-codes", response=responses(list[CodeOut]), summary="Channel codes in the caller's scope")
def list_codes(request):
    return [_out(c) for c in selectors.codes(scope_of(request))]


@router.get("/channel-codes/{code_id}", response=responses(CodeOut, 404))
def get_code(request, code_id: DbId):
    c = selectors.code(scope_of(request), code_id)
    if c is None:
        return 404, {"detail": "not found"}
    return _out(c)


@router.post(
    "/channel-codes",
    response=responses(CodeOut, 502, status=201),
    summary="Create a channel code (a WeCom contact way with state ch:<id>)",
)
def create_code(request, body: CodeIn):
    require_role(request, *MANAGERS)
    try:
        c = services.create_code(_data(body), created_by=caller(request).get_username())
    except gateway.WeComAPIError as e:
        return 502, {"detail": f"WeCom {e.errcode}: {e.errmsg}"}
    except services.ChannelError as e:
        return 422, {"detail": str(e)}
    schedule.ensure_scheduled()
    return 201, _out(c)


@router.put("/channel-codes/{code_id}", response=responses(CodeOut, 404, 502))
def update_code(request, code_id: DbId, body: CodeIn):
    require_role(request, *MANAGERS)
    c = selectors.code(scope_of(request), code_id)
    if c is None:
        return 404, {"detail": "not found"}
    try:
        services.update_code(c, _data(body))
    except gateway.WeComAPIError as e:
        return 502, {"detail": f"WeCom {e.errcode}: {e.errmsg}"}
    except services.ChannelError as e:
        return 422, {"detail": str(e)}
    schedule.ensure_scheduled()
    return _out(c)


@router.delete("/channel-codes/{code_id}", response=responses(None, 404, 502, status=204))
def delete_code(request, code_id: DbId):
    require_role(request, *MANAGERS)
    c = selectors.code(scope_of(request), code_id)
    if c is None:
        return 404, {"detail": "not found"}
    try:
        services.delete_code(c)
    except gateway.WeComAPIError as e:
        return 502, {"detail": f"WeCom {e.errcode}: {e.errmsg}"}
    return 204, None


@router.get(
    "/channel-analytics",
    response=responses(None),
    summary="New / lost / net, retention and welcome success per day, code, employee or department",
)
def channel_analytics(
    request,
    start: ApiDate | None = None,
    end: ApiDate | None = None,
    dimension: str = Query("day", max_length=20),
    code: DbId | None = None,
):
    if dimension not in ("day", "code", "employee", "department"):
        raise HttpError(422, "dimension must be day, code, employee or department")
    end = end or services.local().date()
    start = start or end - timedelta(days=13)
    if start > end or (end - start).days > 366:
        raise HttpError(422, "start must be before end, at most 366 days apart")
    return selectors.analytics(scope_of(request), start, end, code_id=code, dimension=dimension)
