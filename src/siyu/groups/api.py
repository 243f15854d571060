"""REST API for customer groups (客户群), scoped like the console: a group is visible when its
owner is within the caller's DataScope; another's group is 403, an unknown one 404."""

from __future__ import annotations

from datetime import datetime

from django.http import Http404
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError

from siyu.accounts.permissions import scope_of
from siyu.core.api_schemas import OffsetPage, responses
from siyu.core.inputs import DbId, InputSchema, Text
from siyu.groups import selectors
from siyu.groups.models import GroupChat
from siyu.org import selectors as org_selectors

router = Router(tags=["groups"])
MAX_LIMIT = 200


class GroupQuery(InputSchema):
    owner: str | None = Field(None, max_length=64, description="owner's userid")
    department: DbId | None = Field(None, description="owner's department subtree (WeCom id)")
    status: str | None = Field(None, pattern="^(active|dismissed)$")
    q: str | None = Field(None, max_length=100, description="name contains")
    offset: int = Field(0, ge=0, le=1_000_000)
    limit: int = Field(50, ge=1, le=MAX_LIMIT)


class GroupOut(Schema):
    id: int
    chat_id: str
    name: str
    owner_userid: str | None
    owner_name: str | None
    status: str
    owner_status: int
    created_at: datetime | None
    dismissed_at: datetime | None
    member_count: int
    customer_count: int


class GroupPageOut(OffsetPage):
    items: list[GroupOut]


class MemberOut(Schema):
    userid: str
    type: int = Field(description="1 employee, 2 customer")
    name: str
    customer_id: int | None
    join_time: datetime | None
    join_scene: int
    invitor_userid: str
    is_admin: bool
    left_at: datetime | None
    quit_scene: int | None


class GroupDetailOut(GroupOut):
    notice: str
    members: list[MemberOut]
    history: list[MemberOut]


def _group(g: GroupChat) -> dict:
    return {
        "id": g.id,
        "chat_id": g.chat_id,
        "name": g.name,
        "owner_userid": g.owner.userid if g.owner else None,
        "owner_name": g.owner.name if g.owner else None,
        "status": g.status,
        "owner_status": g.owner_status,
        "created_at": g.created_at,
        "dismissed_at": g.dismissed_at,
        "member_count": g.member_count,
        "customer_count": g.customer_count,
    }


def _member(s) -> dict:
    return {
        "userid": s.userid,
        "type": s.type,
        "name": s.display_name,
        "customer_id": s.customer_id,
        "join_time": s.join_time,
        "join_scene": s.join_scene,
        "invitor_userid": s.invitor_userid,
        "is_admin": s.is_admin,
        "left_at": s.left_at,
        "quit_scene": s.quit_scene,
    }


@router.get("/groups", response=responses(GroupPageOut), summary="List customer groups (newest first)")
def list_groups(request, query: Query[GroupQuery]):
    owner_id = None
    if query.owner:
        owner_id = org_selectors.employee_ids([query.owner]).get(query.owner)
        if owner_id is None:
            raise HttpError(422, f"owner: unknown userid {query.owner!r}")
    qs = selectors.group_list(
        scope_of(request), owner_id=owner_id, department_id=query.department, status=query.status or "", q=query.q or ""
    )
    rows = list(qs[query.offset : query.offset + query.limit])
    return {"items": [_group(g) for g in rows], "count": qs.count(), "offset": query.offset, "limit": query.limit}


def _in_scope(request, lookup: dict) -> GroupChat:
    pk = selectors.group_pk(**lookup)
    if pk is None:
        raise Http404("unknown group")
    try:
        group = selectors.group_detail(scope_of(request), pk)
    except selectors.OutOfScope as e:
        raise HttpError(403, "This group is outside your data scope") from e
    if group is None:
        raise Http404("unknown group")
    return group


@router.get(
    "/groups/{chat_id}",
    response=responses(GroupDetailOut, 404),
    summary="One group with its members and join/leave history",
)
def get_group(request, chat_id: Text):
    group = _in_scope(request, {"chat_id": chat_id})
    m = selectors.group_members(group)
    return {
        **_group(group),
        "notice": group.notice,
        "members": [_member(s) for s in m["current"]],
        "history": [_member(s) for s in m["history"]],
    }
