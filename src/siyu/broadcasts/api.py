"""REST API of the broadcasts app (mounted by siyu.api at /api/v1/broadcasts/): the composer's
capabilities for integrations — create (draft), estimate, send, sync, remind, cancel, copy, read
results. Scoped like the console; input is validated by the same form as the composer."""

from __future__ import annotations

from datetime import datetime

from django.http import Http404
from ninja import Field, Router, Schema
from ninja.errors import HttpError

from siyu.accounts.api import require_role, scope_of
from siyu.broadcasts import planning, selectors, services
from siyu.broadcasts.forms import ComposeForm
from siyu.broadcasts.models import Broadcast, Recipient
from siyu.wecom.client import WeComAPIError

router = Router(tags=["broadcasts"])
COMPOSERS = ("admin", "operator", "store_manager")


class AttachmentIn(Schema):
    type: str = Field(pattern="^(image|link|miniprogram|video|file)$")
    media: int | None = Field(None, description="id of an uploaded file (POST /broadcasts/media/ in the console)")
    pic_url: str | None = Field(None, max_length=512)
    title: str | None = Field(None, max_length=128)
    url: str | None = Field(None, max_length=1024)
    desc: str | None = Field(None, max_length=512)
    appid: str | None = Field(None, max_length=64)
    page: str | None = Field(None, max_length=128)


class BroadcastIn(Schema):
    kind: str = Field("customer", pattern="^(customer|group|moment)$")
    name: str = Field(max_length=100, min_length=1)
    text: str = Field("", max_length=4000)
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=9)
    tags: list[int] = Field(default_factory=list, max_length=500)
    tag_mode: str = Field("any", pattern="^(any|all|none)$")
    employees: list[int] = Field(default_factory=list, max_length=5000)
    departments: list[int] = Field(default_factory=list, max_length=500)
    added_from: str | None = None
    added_to: str | None = None
    state: str = Field("", max_length=64)
    status: str = Field("", pattern="^(|active|lost)$")
    group: str = Field("", max_length=20)
    group_ids: list[int] = Field(default_factory=list, max_length=2000)
    group_tags: list[int] = Field(default_factory=list, max_length=500)
    send_at: datetime | None = None


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


class RecipientOut(Schema):
    target: str
    employee_id: int | None
    state: str
    reason: str
    received_at: int | None


def _out(b: Broadcast) -> dict:
    aud = {k: v for k, v in (b.audience or {}).items() if k not in ("scope",)}
    return {**{f: getattr(b, f) for f in ("id", "kind", "name", "status", "text", "attachments", "send_at", "created_at", "sent_at")},
            "audience": aud, "totals": b.totals or {}}


def _get(request, pk: int) -> Broadcast:
    try:
        return selectors.broadcast_for(request.auth, scope_of(request), pk)
    except Http404:
        raise HttpError(404, "Not found")


def _validate(request, payload: BroadcastIn) -> ComposeForm:
    scope = scope_of(request)
    data = {
        "kind": payload.kind, "name": payload.name, "text": payload.text, "tag_mode": payload.tag_mode,
        "added_from": payload.added_from or "", "added_to": payload.added_to or "", "state": payload.state,
        "status": payload.status, "group": payload.group, "send_at": payload.send_at.isoformat() if payload.send_at else "",
    }
    from django.utils.datastructures import MultiValueDict

    md = MultiValueDict({k: [v] for k, v in data.items()})
    md.setlist("tags", [str(x) for x in payload.tags])
    md.setlist("employees", [str(x) for x in payload.employees])
    md.setlist("departments", [str(x) for x in payload.departments])
    md.setlist("group_ids", [str(x) for x in payload.group_ids])
    md.setlist("group_tags", [str(x) for x in payload.group_tags])
    media_ok = set()
    from siyu.broadcasts.models import Media

    ids = [a.media for a in payload.attachments if a.media]
    media_ok = set(Media.objects.filter(id__in=ids).values_list("id", flat=True))
    if set(ids) - media_ok:
        raise HttpError(422, "unknown media id")
    keep = [{k: v for k, v in a.dict().items() if v not in (None, "")} for a in payload.attachments]
    form = ComposeForm(md, choices=selectors.composer_choices(scope), keep_attachments=keep)
    if not form.is_valid():
        raise HttpError(422, form.errors.as_json())
    return form


@router.get("/broadcasts/", response=list[BroadcastOut], summary="Broadcasts (newest first)")
def list_broadcasts(request, status: str = "", limit: int = 50):
    qs = selectors.broadcasts_for(request.auth, scope_of(request))
    if status:
        qs = qs.filter(status=status)
    return [_out(b) for b in qs[: max(1, min(limit, 200))]]


@router.post("/broadcasts/", response={201: BroadcastOut}, summary="Create a draft")
def create(request, payload: BroadcastIn):
    require_role(request, *COMPOSERS)
    form = _validate(request, payload)
    d = form.cleaned_data
    b = services.save_draft(kind=d["kind"], name=d["name"], text=d["text"], attachments=form.attachments(),
                            audience=form.audience(), scope=scope_of(request), user=request.auth, send_at=d.get("send_at"))
    return 201, _out(b)


@router.put("/broadcasts/{pk}", response=BroadcastOut, summary="Edit a draft")
def edit(request, pk: int, payload: BroadcastIn):
    require_role(request, *COMPOSERS)
    b = _get(request, pk)
    form = _validate(request, payload)
    d = form.cleaned_data
    try:
        b = services.save_draft(kind=d["kind"], name=d["name"], text=d["text"], attachments=form.attachments(),
                                audience=form.audience(), scope=scope_of(request), user=request.auth, send_at=d.get("send_at"), broadcast=b)
    except services.BroadcastError as e:
        raise HttpError(409, str(e))
    return _out(b)


@router.get("/broadcasts/{pk}", response=BroadcastOut)
def get(request, pk: int):
    return _out(_get(request, pk))


@router.get("/broadcasts/{pk}/estimate", summary="Recipients per employee and skips by rule, before sending")
def estimate(request, pk: int):
    return planning.estimate(_get(request, pk))


@router.post("/broadcasts/{pk}/{op}", response=BroadcastOut, summary="send | sync | remind | cancel | copy")
def act(request, pk: int, op: str):
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
            b = services.copy(b, request.auth)
        else:
            raise HttpError(404, "unknown action")
    except services.BroadcastError as e:
        raise HttpError(409, str(e))
    except WeComAPIError as e:
        raise HttpError(502, str(e))
    b.refresh_from_db()
    return _out(b)


@router.get("/broadcasts/{pk}/employees", summary="Per employee: recipients, confirmed, received, failed")
def employees(request, pk: int):
    b = _get(request, pk)
    return selectors.employee_table(b, scope_of(request))


@router.get("/broadcasts/{pk}/recipients", response=list[RecipientOut], summary="Per recipient: state and reason")
def recipients(request, pk: int, state: str = "", offset: int = 0, limit: int = 500):
    b = _get(request, pk)
    if state and state not in dict(Recipient.STATES):
        raise HttpError(422, "unknown state")
    rows = selectors.recipients(b, scope_of(request), state=state, limit=None)
    rows = rows[max(0, offset): max(0, offset) + max(1, min(limit, 5000))]
    return [{"target": x["r"].target, "employee_id": x["r"].employee_id, "state": x["r"].state, "reason": x["r"].reason,
             "received_at": x["r"].received_at} for x in rows]
