"""REST endpoints of the segments app (mounted under /api/v1/ by ``siyu.api``).

Saved segments (create, update, list, get, archive), the live count of a definition without saving
it, a segment's members in cursor pages and its export (CSV / XLSX). Every count and member list
is within the caller's data scope (``siyu.accounts.permissions.scope_of``). A definition the
grammar refuses answers 422 with ``detail`` = [{"path", "message"}]. Segments are created, changed
and archived by admins and operators; every role may count, list and export within its scope.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError

from siyu.accounts.permissions import Role, caller, require_role, scope_of
from siyu.core.api_schemas import responses
from siyu.core.inputs import DB_ID_MAX, DbId, InputSchema
from siyu.segments import exports, selectors, services
from siyu.segments.grammar import DefinitionError, GroupSchema, schema_example
from siyu.segments.models import Segment

router = Router(tags=["segments"])
EDITORS = (Role.ADMIN, Role.OPERATOR)
VIEWERS = (Role.ADMIN, Role.OPERATOR, Role.STORE_MANAGER, Role.GUIDE)
DEFINITION_DOC = (
    "A segment definition: a group {op: and|or, items: [...], not?} of conditions "
    "{field, op, value, days?, type?, not?} and nested groups (at most 5 deep, 50 conditions). "
    "See the ConditionSchema description for every field and op."
)


class DefinitionIn(InputSchema):
    definition: GroupSchema = Field(..., description=DEFINITION_DOC, examples=[schema_example()])


class SegmentIn(InputSchema):
    name: str = Field(..., min_length=1, max_length=64)
    description: str = Field("", max_length=255)
    definition: GroupSchema = Field(..., description=DEFINITION_DOC, examples=[schema_example()])


class SegmentPatch(InputSchema):
    name: str | None = Field(None, min_length=1, max_length=64)
    description: str | None = Field(None, max_length=255)
    definition: GroupSchema | None = Field(None, description=DEFINITION_DOC)


class SegmentOut(Schema):
    id: int
    name: str
    description: str
    definition: dict[str, Any]
    count: int | None = Field(
        ...,
        description="the count when last recorded, over every person; null for a caller who does not see every "
        "person (count the definition in your own scope with POST /segments/count)",
    )
    counted_at: datetime | None
    archived: bool
    created_at: datetime
    updated_at: datetime


class CountOut(Schema):
    count: int
    at: datetime


class SegmentList(Schema):
    items: list[SegmentOut]


class Member(Schema):
    id: int = Field(..., description="the person (live profile) id")
    name: str
    member_no: str
    member_level: str
    points: int


class MemberPage(Schema):
    items: list[Member]
    next_cursor: int | None = Field(None, description="pass as ?after= for the next page; null on the last")


class MemberQuery(Schema):
    after: int | None = Field(None, ge=0, le=DB_ID_MAX)
    limit: int = Field(50, ge=1, le=selectors.MAX_PAGE)


class ExportQuery(Schema):
    format: str = Field("csv", pattern="^(csv|xlsx)$")


def _definition(definition: GroupSchema) -> dict[str, Any]:
    raw = definition.model_dump(by_alias=True, exclude_none=True)
    return _strip(raw)


def _strip(node: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in node.items() if not (k == "not" and v is False)}
    if "items" in out:
        out["items"] = [_strip(i) for i in out["items"]]
    return out


def _segment(request: HttpRequest, pk: int) -> Segment:
    """A segment the caller may see (the console's rule: admins and operators every one, other
    roles their own), else 404."""
    try:
        return selectors.segment_for(caller(request), scope_of(request), pk)
    except Http404:
        raise HttpError(404, "No such segment") from None


def _out(request: HttpRequest, seg: Segment) -> dict[str, Any]:
    """A segment as answered; its stored count is over every person, so it is kept from a caller
    who does not see every person."""
    out = {name: getattr(seg, name) for name in SegmentOut.model_fields}
    if not scope_of(request).everything:
        out["count"] = None
    return out


def _problems(exc: DefinitionError) -> tuple[int, dict[str, Any]]:
    return 422, {"detail": exc.problems}


@router.post("/segments/count", response=responses(CountOut, 422), summary="Count a definition (the live count)")
def count_definition(request: HttpRequest, body: DefinitionIn) -> Any:
    require_role(request, *VIEWERS)
    now = timezone.now()
    try:
        n = services.count(_definition(body.definition), scope_of(request), now)
    except DefinitionError as exc:
        return _problems(exc)
    return {"count": n, "at": now}


@router.get("/segments", response=responses(SegmentList), summary="Saved segments")
def list_segments(request: HttpRequest, archived: bool = False) -> Any:
    require_role(request, *VIEWERS)
    qs = selectors.segments_for(caller(request), scope_of(request), archived=archived)
    return {"items": [_out(request, s) for s in qs[:500]]}


@router.post("/segments", response=responses(SegmentOut, 422, status=201), summary="Save a segment")
def create_segment(request: HttpRequest, body: SegmentIn) -> Any:
    require_role(request, *EDITORS)
    try:
        seg = services.save_segment(
            body.name, _definition(body.definition), user=caller(request), description=body.description
        )
    except DefinitionError as exc:
        return _problems(exc)
    return 201, _out(request, seg)


@router.get("/segments/{segment_id}", response=responses(SegmentOut, 404), summary="A saved segment")
def get_segment(request: HttpRequest, segment_id: DbId) -> Any:
    require_role(request, *VIEWERS)
    return _out(request, _segment(request, segment_id))


@router.patch("/segments/{segment_id}", response=responses(SegmentOut, 404, 422), summary="Change a segment")
def update_segment(request: HttpRequest, segment_id: DbId, body: SegmentPatch) -> Any:
    require_role(request, *EDITORS)
    seg = _segment(request, segment_id)
    try:
        services.update_segment(
            seg,
            name=body.name,
            description=body.description,
            definition=_definition(body.definition) if body.definition is not None else None,
        )
    except DefinitionError as exc:
        return _problems(exc)
    return _out(request, seg)


@router.post("/segments/{segment_id}/archive", response=responses(SegmentOut, 404), summary="Archive a segment")
def archive_segment(request: HttpRequest, segment_id: DbId, archived: bool = True) -> Any:
    require_role(request, *EDITORS)
    return _out(request, services.archive_segment(_segment(request, segment_id), archived))


@router.get("/segments/{segment_id}/members", response=responses(MemberPage, 404, 422), summary="A segment's members")
def segment_members(request: HttpRequest, segment_id: DbId, q: Query[MemberQuery]) -> Any:
    require_role(request, *VIEWERS)
    seg = _segment(request, segment_id)
    try:
        page = selectors.member_page(seg, scope_of(request), after=q.after, limit=q.limit)
    except DefinitionError as exc:
        return _problems(exc)
    return {"items": page.items, "next_cursor": page.next_after}


@router.get(
    "/segments/{segment_id}/export",
    response=responses(None, 404, 422),
    summary="Export a segment's members (CSV or XLSX)",
)
def export_segment(request: HttpRequest, segment_id: DbId, q: Query[ExportQuery]) -> Any:
    require_role(request, *VIEWERS)
    seg = _segment(request, segment_id)
    scope = scope_of(request)
    try:
        services.tree(seg)
    except DefinitionError as exc:
        return _problems(exc)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    if q.format == "xlsx":
        resp = HttpResponse(
            exports.xlsx_bytes(seg, scope),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
        resp["Content-Disposition"] = f'attachment; filename="segment-{seg.pk}-{stamp}.xlsx"'
        return resp
    stream = StreamingHttpResponse(exports.csv_stream(seg, scope), content_type="text/csv; charset=utf-8")
    stream["Content-Disposition"] = f'attachment; filename="segment-{seg.pk}-{stamp}.csv"'
    return stream
