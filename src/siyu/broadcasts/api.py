"""REST API of the broadcasts app (mounted by siyu.api at /api/v1/broadcasts/): the composer's
capabilities for integrations — create (draft), estimate, send, sync, remind, cancel, copy, read
results. Scoped like the console; input is validated by the same form as the composer."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.http import Http404, HttpRequest
from django.utils.datastructures import MultiValueDict
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError

from siyu.accounts.permissions import caller, require_role, scope_of
from siyu.broadcasts import planning, selectors, services
from siyu.broadcasts.forms import ApiComposeForm
from siyu.broadcasts.models import Broadcast, Recipient
from siyu.core.api_schemas import responses
from siyu.core.inputs import ApiDate, ApiDateTime, DbId, InputSchema, LinkUrl, Offset, Text
from siyu.wecom.gateway import WeComAPIError

router = Router(tags=["broadcasts"])
# query parameters typed `Text` (no control characters); defaults read from here, not called in a signature (B008)
_STATUS_FILTER = Query("", max_length=20)
_STATE_FILTER = Query("", max_length=20)
COMPOSERS = ("admin", "operator", "store_manager")


class AttachmentIn(InputSchema):
    type: str = Field(pattern="^(image|link|miniprogram|video|file)$")
    media: DbId | None = Field(None, description="id of an uploaded file (POST /broadcasts/media/ in the console)")
    pic_url: LinkUrl | None = Field(None, max_length=512)
    title: str | None = Field(None, max_length=128)
    url: LinkUrl | None = Field(None, max_length=1024)
    desc: str | None = Field(None, max_length=512)
    appid: str | None = Field(None, max_length=64)
    page: str | None = Field(None, max_length=128)


class BroadcastIn(InputSchema):
    kind: str = Field("customer", pattern="^(customer|group|moment)$")
    name: str = Field(max_length=100, min_length=1)
    text: str = Field(
        "",
        max_length=4000,
        description="variables: {员工姓名} (or {employee}), the sender's name, in customer and group mass messages; "
        "Moments take none. Any other {...} or %...% placeholder is refused (422): WeCom would send it as typed",
    )
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=9)
    tags: list[DbId] = Field(default_factory=list, max_length=500)
    tag_mode: str = Field("any", pattern="^(any|all|none)$")
    employees: list[DbId] = Field(default_factory=list, max_length=5000)
    departments: list[DbId] = Field(default_factory=list, max_length=500)
    added_from: ApiDate | None = None
    added_to: ApiDate | None = None
    state: str = Field("", max_length=64, description="channel (渠道): a contact way's state, e.g. ch:<code id>")
    status: str = Field("", pattern="^(|active|lost)$")
    group: str = Field("", max_length=20)
    group_ids: list[DbId] = Field(default_factory=list, max_length=2000)
    group_tags: list[DbId] = Field(default_factory=list, max_length=500)
    segment: DbId | None = Field(None, description="a saved segment (customer mass messages and Moments): its members")
    send_at: ApiDateTime | None = None


class BroadcastOut(Schema):
    id: int
    kind: str
    name: str
    status: str
    text: str
    attachments: list
    audience: dict
    send_at: datetime | None
    created_at: datetime
    sent_at: datetime | None
    totals: dict
    progress: str = Field(
        description="what the task is doing: draft, scheduled, creating, waiting (for employees to send), "
        "done, ended, empty, refused, cancelled, failed"
    )
    live: bool = Field(description="whether WeCom may still change the results (they are re-read in the background)")


class RecipientOut(Schema):
    target: str
    employee_id: int | None
    state: str
    reason: str
    received_at: int | None


def _out(b: Broadcast) -> dict:
    aud = {k: v for k, v in (b.audience or {}).items() if k not in ("scope",)}
    return {
        **{
            f: getattr(b, f)
            for f in ("id", "kind", "name", "status", "text", "attachments", "send_at", "created_at", "sent_at")
        },
        "audience": aud,
        "totals": b.totals or {},
        "progress": (p := selectors.progress(b))["code"],
        "live": p["live"],
    }


def _get(request, pk: int) -> Broadcast:
    try:
        return selectors.broadcast_for(caller(request), scope_of(request), pk)
    except Http404:
        raise HttpError(404, "Not found") from None


def _validate(request, payload: BroadcastIn) -> ApiComposeForm:
    scope = scope_of(request)
    data = {
        "kind": payload.kind,
        "name": payload.name,
        "text": payload.text,
        "tag_mode": payload.tag_mode,
        "added_from": payload.added_from.isoformat() if payload.added_from else "",
        "added_to": payload.added_to.isoformat() if payload.added_to else "",
        "state": payload.state,
        "status": payload.status,
        "group": payload.group,
        "send_at": payload.send_at.isoformat() if payload.send_at else "",
    }
    md = MultiValueDict({k: [v] for k, v in data.items()})
    md.setlist("tags", [str(x) for x in payload.tags])
    md.setlist("employees", [str(x) for x in payload.employees])
    md.setlist("departments", [str(x) for x in payload.departments])
    md.setlist("group_ids", [str(x) for x in payload.group_ids])
    md.setlist("group_tags", [str(x) for x in payload.group_tags])
    md.setlist("segment", [str(payload.segment)] if payload.segment else [])
    ids = [a.media for a in payload.attachments if a.media]
    if set(ids) - selectors.existing_media_ids(ids):
        raise HttpError(422, "unknown media id")
    keep = [{k: v for k, v in a.dict().items() if v not in (None, "")} for a in payload.attachments]
    form = ApiComposeForm(md, scope=scope, keep_attachments=keep, user=caller(request))
    if not form.is_valid():
        raise HttpError(422, form.errors.as_json())
    return form


def _save(request: HttpRequest, form: ApiComposeForm, broadcast: Broadcast | None = None) -> Broadcast:
    """A new draft from a validated form, or ``broadcast`` (a draft) edited to match it."""
    d = form.cleaned_data
    return services.save_draft(
        kind=d["kind"],
        name=d["name"],
        text=d["text"],
        attachments=form.attachments(),
        audience=form.audience(),
        scope=scope_of(request),
        user=caller(request),
        send_at=d.get("send_at"),
        broadcast=broadcast,
    )


@router.get("/broadcasts/", response=responses(list[BroadcastOut]), summary="Broadcasts (newest first)")
def list_broadcasts(request, status: Text = _STATUS_FILTER, limit: int = Query(50, ge=1, le=200)):
    qs = selectors.broadcasts_for(caller(request), scope_of(request))
    if status:
        qs = qs.filter(status=status)
    return [_out(b) for b in qs[: max(1, min(limit, 200))]]


@router.post("/broadcasts/", response=responses(BroadcastOut, status=201), summary="Create a draft")
def create(request, payload: BroadcastIn):
    require_role(request, *COMPOSERS)
    return 201, _out(_save(request, _validate(request, payload)))


@router.put("/broadcasts/{pk}", response=responses(BroadcastOut, 404, 409), summary="Edit a draft")
def edit(request, pk: DbId, payload: BroadcastIn):
    require_role(request, *COMPOSERS)
    b = _get(request, pk)
    form = _validate(request, payload)
    try:
        b = _save(request, form, broadcast=b)
    except services.BroadcastError as e:
        raise HttpError(409, str(e)) from None
    return _out(b)


@router.get("/broadcasts/{pk}", response=responses(BroadcastOut, 404))
def get(request, pk: DbId):
    return _out(_get(request, pk))


@router.get(
    "/broadcasts/{pk}/estimate",
    response=responses(None, 404),
    summary="Recipients per employee and skips by rule, before sending",
)
def estimate(request, pk: DbId):
    return planning.estimate(_get(request, pk))


# The GET routes under /broadcasts/{pk}/ come before POST /broadcasts/{pk}/{op}: Django tries the
# URL patterns in order, and {op} would capture them (405 for a GET).
@router.get(
    "/broadcasts/{pk}/employees",
    response=responses(None, 404),
    summary="Per employee: recipients, confirmed, received, failed",
)
def employees(request, pk: DbId):
    b = _get(request, pk)
    return selectors.employee_table(b, scope_of(request))


@router.get(
    "/broadcasts/{pk}/recipients",
    response=responses(list[RecipientOut], 404),
    summary="Per recipient: state and reason",
)
def recipients(
    request,
    pk: DbId,
    state: Text = _STATE_FILTER,
    offset: Offset = 0,
    limit: int = Query(500, ge=1, le=5000),
):
    b = _get(request, pk)
    if state and state not in dict(Recipient.STATES):
        raise HttpError(422, "unknown state")
    rows = selectors.recipients(b, scope_of(request), state=state, limit=None)
    rows = rows[offset : offset + limit]
    return [
        {
            "target": x["r"].target,
            "employee_id": x["r"].employee_id,
            "state": x["r"].state,
            "reason": x["r"].reason,
            "received_at": x["r"].received_at,
        }
        for x in rows
    ]


@router.post(
    "/broadcasts/{pk}/{op}",
    response=responses(BroadcastOut, 404, 409, 502),
    summary="send | sync | remind | cancel | copy",
)
def act(request, pk: DbId, op: Literal["send", "sync", "remind", "cancel", "copy"]):
    require_role(request, *COMPOSERS)
    b = _get(request, pk)
    try:
        if op == "send":
            services.submit(b)
        elif op == "sync":
            services.sync(b)
        elif op == "remind":
            services.remind(b)
        elif op == "cancel":
            services.cancel(b)
        elif op == "copy":
            b = services.copy(b, caller(request))
        else:
            raise HttpError(404, "unknown action")
    except services.BroadcastError as e:
        raise HttpError(409, str(e)) from None
    except WeComAPIError as e:
        raise HttpError(502, str(e)) from None
    b.refresh_from_db()
    return _out(b)
