"""REST endpoints of the profiles app (mounted under /api/v1/ by ``siyu.api``): persons (cursor
pages, search, one person with identities, member data and custom values, edits), merge / unmerge,
identity conflicts and custom field definitions.

Scope: every read goes through ``profiles.selectors.person_queryset`` (a guide or store manager
sees the persons of the WeCom customers the customer list shows them); a person out of scope is
404. Merges, unmerges, conflicts and field definitions are for admins and operators (403 else).
A merge the rules refuse (two different unionids) is 409 with the reason.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from django.core.exceptions import ValidationError
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError
from ninja.errors import ValidationError as NinjaValidationError

from siyu.accounts.permissions import Role, caller, require_role, scope_of
from siyu.core.api_schemas import responses
from siyu.core.inputs import DbId, InputSchema
from siyu.profiles import selectors, services
from siyu.profiles.models import CustomField, IdentityConflict, Profile

router = Router(tags=["cdp: profiles"])

OPERATORS = (Role.ADMIN, Role.OPERATOR)
MAX_LIMIT = 200


# --- schemas -----------------------------------------------------------------------------------------
class KeyOut(Schema):
    kind: str
    value: str
    profile_id: int
    customer_id: int | None


class ProfileOut(Schema):
    id: int
    name: str
    unionid: str
    phone: str
    member_no: str
    gender: int
    birthday: date | None
    member_level: str
    points: int
    join_store: str
    member_joined_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ProfileDetailOut(ProfileOut):
    attributes: dict[str, Any]
    custom: dict[str, Any]
    keys: list[KeyOut]
    merged_profiles: list[int] = Field(description="profiles merged into this person (unmerge one to undo)")
    customer_ids: list[int] = Field(description="the person's WeCom customers (customers' row ids)")


class ProfilePageOut(Schema):
    items: list[ProfileOut]
    next_cursor: str | None


class ProfileQuery(InputSchema):
    q: str = Field("", max_length=64, description="name contains; or an exact phone, member number, unionid or key")
    cursor: str = Field("", max_length=200)
    limit: int = Field(50, ge=1, le=MAX_LIMIT)


class ProfilePatch(InputSchema):
    name: str | None = Field(None, max_length=128)
    member_level: str | None = Field(None, max_length=32)
    points: int | None = Field(None, ge=-(10**12), le=10**12)
    birthday: date | None = None
    gender: int | None = Field(None, ge=0, le=2)
    join_store: str | None = Field(None, max_length=64)
    custom: dict[str, Any] | None = Field(None, description='{field key: value}; null or "" removes a value')


class Survivor(StrEnum):
    this = "this"
    other = "other"


class MergeIn(InputSchema):
    other: DbId = Field(description="the other person's id")
    survivor: Survivor = Field(Survivor.this, description="which one stays the person: this (the path's) or other")


class ConflictOut(Schema):
    id: int
    profile_id: int
    other_id: int
    reason: str
    keys: dict[str, Any]
    source: str
    status: str
    resolved_by: str
    created_at: datetime
    resolved_at: datetime | None
    merge_allowed: bool
    why_not: str


class ConflictAction(StrEnum):
    keep_apart = "keep_apart"
    merge = "merge"


class ResolveIn(InputSchema):
    action: ConflictAction
    survivor: DbId | None = None


class FieldOut(Schema):
    id: int
    key: str
    label: str
    type: str
    options: list[str]
    order: int
    active: bool


class FieldIn(InputSchema):
    key: str = Field(max_length=32)
    label: str = Field(max_length=32)
    type: str = Field(description="text | number | date | choice | multi")
    options: list[str] = Field(default_factory=list, max_length=100)
    order: int = 0
    active: bool = True


class FieldPatch(InputSchema):
    label: str | None = Field(None, max_length=32)
    options: list[str] | None = Field(None, max_length=100)
    order: int | None = None
    active: bool | None = None


# --- helpers -----------------------------------------------------------------------------------------
def _invalid(exc: ValidationError) -> NinjaValidationError:
    """422 with a pydantic-style list of problems: ``{"loc": ["body", field], "msg": ...}``."""
    detail = exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages}
    return NinjaValidationError(
        [{"loc": ["body", *k.split(".")], "msg": "; ".join(v), "type": "value_error"} for k, v in detail.items()]
    )


def _detail(person: Profile) -> dict[str, Any]:
    cluster = selectors.cluster_ids(person.id)
    return {
        **{f: getattr(person, f) for f in ProfileOut.model_fields},
        "attributes": person.attributes if isinstance(person.attributes, dict) else {},
        "custom": person.custom if isinstance(person.custom, dict) else {},
        "keys": [dict(k) for k in selectors.keys_of(cluster)],
        "merged_profiles": cluster[1:],
        "customer_ids": selectors.customer_ids_of(cluster),
    }


# --- persons -------------------------------------------------------------------------------------------
@router.get("/cdp/profiles", response=responses(ProfilePageOut, 400), summary="List persons (search, cursor pages)")
def list_profiles(request, query: Query[ProfileQuery]):
    if query.cursor and selectors.decode_cursor(query.cursor) is None:
        raise HttpError(400, "cursor: not a cursor returned by this API")
    page = selectors.person_page(scope_of(request), query.q, after=query.cursor, limit=query.limit)
    return {"items": page.rows, "next_cursor": page.next_cursor or None}


@router.get(
    "/cdp/profiles/{int:profile_id}",
    response=responses(ProfileDetailOut, 404),
    summary="One person: identities, member data, custom fields (a merged profile answers its person)",
)
def get_profile(request, profile_id: DbId):
    return _detail(selectors.person_in_scope(scope_of(request), profile_id))


@router.patch(
    "/cdp/profiles/{int:profile_id}",
    response=responses(ProfileDetailOut, 404),
    summary="Edit a person's custom values (any role in scope) and name / member data (admin, operator)",
)
def patch_profile(request, profile_id: DbId, body: ProfilePatch):
    person = selectors.person_in_scope(scope_of(request), profile_id)
    data = body.model_dump(exclude_unset=True)
    custom = data.pop("custom", None)
    if data:  # member data is the brand's: guides and store managers edit custom values only
        require_role(request, *OPERATORS)
    try:
        services.update_profile(person.id, attributes=data, custom=custom, operator=caller(request).get_username())
    except ValidationError as exc:
        raise _invalid(exc) from exc
    return _detail(selectors.person_in_scope(scope_of(request), person.id))


@router.post(
    "/cdp/profiles/{int:profile_id}/merge",
    response=responses(ProfileDetailOut, 404, 409),
    summary="Merge another person with this one (admin, operator); answers the surviving person",
)
def merge_profiles(request, profile_id: DbId, body: MergeIn):
    require_role(request, *OPERATORS)
    scope = scope_of(request)
    person = selectors.person_in_scope(scope, profile_id)
    other = selectors.person_in_scope(scope, body.other)
    keep, gone = (other, person) if body.survivor == Survivor.other else (person, other)
    try:
        survivor = services.merge(keep.id, gone.id, operator=caller(request).get_username())
    except services.MergeRefused as exc:
        raise HttpError(409, str(exc)) from exc
    return _detail(survivor)


@router.post(
    "/cdp/profiles/{int:profile_id}/unmerge",
    response=responses(ProfileDetailOut, 404, 409),
    summary="Unmerge a merged profile (admin, operator): it is a person of its own again",
)
def unmerge_profile(request, profile_id: DbId):
    require_role(request, *OPERATORS)
    selectors.person_in_scope(scope_of(request), profile_id)
    try:
        p = services.unmerge(profile_id, operator=caller(request).get_username())
    except services.MergeRefused as exc:
        raise HttpError(409, str(exc)) from exc
    return _detail(p)


# --- conflicts -------------------------------------------------------------------------------------------
def _conflict(c: IdentityConflict) -> dict[str, Any]:
    why = services.merge_refusal(selectors.live_id(c.profile_id) or 0, selectors.live_id(c.other_id) or 0)
    return {
        **{f: getattr(c, f) for f in ConflictOut.model_fields if f not in ("merge_allowed", "why_not")},
        "merge_allowed": not why,
        "why_not": why,
    }


@router.get("/cdp/conflicts", response=responses(list[ConflictOut]), summary="Identity conflicts (admin, operator)")
def list_conflicts(request, status: IdentityConflict.Status | None = IdentityConflict.Status.OPEN):
    require_role(request, *OPERATORS)
    return [_conflict(c) for c in selectors.conflicts(status.value if status else "")]


@router.post(
    "/cdp/conflicts/{int:conflict_id}/resolve",
    response=responses(ConflictOut, 404, 409),
    summary="Resolve a conflict: keep_apart, or merge where the rules allow it",
)
def resolve_conflict(request, conflict_id: DbId, body: ResolveIn):
    require_role(request, *OPERATORS)
    c = selectors.conflict_by_id(conflict_id)
    try:
        c = services.resolve_conflict(
            c.id, body.action.value, operator=caller(request).get_username(), survivor_id=body.survivor
        )
    except services.MergeRefused as exc:
        raise HttpError(409, str(exc)) from exc
    return _conflict(c)


# --- custom fields ------------------------------------------------------------------------------------------
@router.get("/cdp/fields", response=responses(list[FieldOut]), summary="Custom field definitions")
def list_fields(request):
    return selectors.fields(active_only=False)


@router.post("/cdp/fields", response=responses(FieldOut, status=201), summary="Define a custom field (admin, operator)")
def create_field(request, body: FieldIn):
    require_role(request, *OPERATORS)
    try:
        return 201, services.save_field(body.model_dump())
    except ValidationError as exc:
        raise _invalid(exc) from exc


@router.get("/cdp/fields/{int:field_id}", response=responses(FieldOut, 404), summary="One custom field")
def get_field(request, field_id: DbId):
    return selectors.field_by_id(field_id)


@router.patch(
    "/cdp/fields/{int:field_id}",
    response=responses(FieldOut, 404),
    summary="Change a custom field's label, options, order or active flag (admin, operator)",
)
def patch_field(request, field_id: DbId, body: FieldPatch):
    require_role(request, *OPERATORS)
    field: CustomField = selectors.field_by_id(field_id)
    try:
        return services.save_field(body.model_dump(exclude_unset=True), instance=field)
    except ValidationError as exc:
        raise _invalid(exc) from exc


@router.delete(
    "/cdp/fields/{int:field_id}",
    response=responses(None, 404, status=204),
    summary="Delete a custom field (admin, operator)",
)
def delete_field(request, field_id: DbId):
    require_role(request, *OPERATORS)
    services.delete_field(selectors.field_by_id(field_id))
    return 204, None
