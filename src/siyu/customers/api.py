"""REST API for customers and corp tags (mounted under /api/v1/ by ``siyu.api``).

Every read goes through the scoped selectors (``selectors.customer_page`` / ``customer_detail``),
so a token or session sees exactly what its user's DataScope allows: a customer outside the scope
is 403, an unknown one 404. Ids in the API are WeCom's where WeCom has them (tag ids, group ids,
employee userids, chat ids) and Siyu's row id for a customer (``id``, with ``external_userid``).

Tag changes and bulk tagging go to WeCom through the gateway first, like the console.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from django.http import Http404
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError

from siyu.accounts.permissions import Role, caller, require_role, scope_of
from siyu.core.api_schemas import Error, responses  # noqa: F401 (Error: the shared error body)
from siyu.core.inputs import ApiDate, DbId, InputSchema, Text
from siyu.customers import selectors, services
from siyu.customers.models import Customer, FollowRelation, Tag, TagGroup
from siyu.customers.tags import selectors as tag_selectors
from siyu.customers.tags import services as tag_services
from siyu.org import selectors as org_selectors

router = Router(tags=["customers"])
tags_router = Router(tags=["tags"])

TAG_EDITORS = (Role.ADMIN, Role.OPERATOR)
MAX_LIMIT = 200


# --- schemas -------------------------------------------------------------------------------------
class TagMode(StrEnum):
    any = "any"
    all = "all"
    none = "none"


class Status(StrEnum):
    active = "active"
    lost = "lost"


class Sort(StrEnum):
    added_desc = "-added"
    added = "added"
    name = "name"
    name_desc = "-name"
    updated_desc = "-updated"
    updated = "updated"


class CustomerQuery(InputSchema):
    """The console list's filters. Relation-level filters (employee, department, added_*, add_way,
    state, status) match a customer when one relation within the caller's scope meets them all."""

    tag: list[str] = Field(default_factory=list, description="WeCom tag ids (repeat the parameter)")
    tag_mode: TagMode = Field(TagMode.any, description="any / all / none of the tags")
    employee: str | None = Field(None, max_length=64, description="employee userid")
    department: DbId | None = Field(None, description="WeCom department id (its subtree)")
    added_from: ApiDate | None = None
    added_to: ApiDate | None = Field(None, description="inclusive")
    add_way: int | None = Field(None, ge=0, le=10_000)
    state: str | None = Field(None, max_length=64, description="contact way state (渠道)")
    status: Status | None = None
    group: str | None = Field(None, max_length=64, description="'any', 'none' or a group chat_id")
    q: str | None = Field(None, max_length=100, description="nickname, remark, corp name or mobile contains")
    sort: Sort = Sort.added_desc
    cursor: str | None = Field(None, max_length=512, description="next_cursor of the previous page")
    limit: int = Field(selectors.PER_PAGE, ge=1, le=MAX_LIMIT)


class TagOut(Schema):
    tag_id: str
    name: str
    group_id: str
    group_name: str


class RelationBrief(Schema):
    userid: str
    employee_name: str
    remark: str
    status: str
    added_at: datetime | None


class CustomerOut(Schema):
    id: int
    external_userid: str
    name: str
    avatar: str
    type: int
    gender: int
    corp_name: str
    status: str
    first_added_at: datetime | None
    lost_at: datetime | None
    relations: list[RelationBrief]
    tags: list[TagOut]


class CustomerPageOut(Schema):
    items: list[CustomerOut]
    next_cursor: str | None
    count: int = Field(description="matching customers, counted up to count_capped's cap")
    count_capped: bool


class RelationOut(Schema):
    userid: str
    employee_name: str
    remark: str
    description: str
    remark_corp_name: str
    remark_mobiles: list[str]
    add_way: int
    state: str
    added_at: datetime | None
    status: str
    status_changed_at: datetime | None
    tags: list[TagOut]
    personal_tags: list[str]


class GroupStayOut(Schema):
    chat_id: str
    name: str
    owner_userid: str | None
    join_time: datetime | None
    join_scene: int
    left_at: datetime | None


class EventOut(Schema):
    kind: str
    at: datetime
    userid: str | None
    detail: dict
    source: str


class CustomerDetailOut(Schema):
    id: int
    external_userid: str
    name: str
    avatar: str
    type: int
    gender: int
    unionid: str
    position: str
    corp_name: str
    corp_full_name: str
    status: str
    first_added_at: datetime | None
    lost_at: datetime | None
    relations: list[RelationOut]
    tags: list[TagOut]
    groups: list[GroupStayOut]
    past_groups: list[GroupStayOut]
    timeline: list[EventOut]


class BulkTagIn(InputSchema):
    customer_ids: list[DbId] = Field(min_length=1, max_length=services.BULK_TAG_LIMIT)
    add_tag: list[str] = Field(default_factory=list, max_length=100, description="WeCom tag ids")
    remove_tag: list[str] = Field(default_factory=list, max_length=100, description="WeCom tag ids")


class TagFailureOut(Schema):
    customer_id: int
    userid: str
    errcode: int | None
    errmsg: str


class BulkTagOut(Schema):
    relations: int
    succeeded: int
    customers: int
    failures: list[TagFailureOut]


# --- helpers ---------------------------------------------------------------------------------
def _tag(t: Tag) -> dict:
    return {"tag_id": t.tag_id, "name": t.name, "group_id": t.group.group_id, "group_name": t.group.name}


def _tag_pks(tag_ids: list[str], field: str) -> list[int]:
    """Row ids of live corp tags; 422 naming the unknown ones."""
    ids = list(dict.fromkeys(tag_ids))
    found = dict(Tag.objects.filter(tag_id__in=ids, deleted=False).values_list("tag_id", "id"))
    unknown = [t for t in ids if t not in found]
    if unknown:
        raise HttpError(422, f"{field}: unknown tag id(s): {', '.join(unknown[:20])}")
    return [found[t] for t in ids]


def _filters(query: CustomerQuery) -> selectors.CustomerFilters:
    f = selectors.CustomerFilters(tags=_tag_pks(query.tag, "tag") if query.tag else [], tag_mode=query.tag_mode.value)
    if query.employee:
        f.employee_id = org_selectors.employee_ids([query.employee]).get(query.employee)
        if f.employee_id is None:
            raise HttpError(422, f"employee: unknown userid {query.employee!r}")
    f.department_id = query.department
    f.added_from, f.added_to = query.added_from, query.added_to
    if f.added_from and f.added_to and f.added_from > f.added_to:
        raise HttpError(422, "added_from is after added_to")
    f.add_way = query.add_way
    f.state = query.state or ""
    f.status = query.status.value if query.status else ""
    if query.group:
        if query.group in ("any", "none"):
            f.group = query.group
        else:
            pk = selectors.group_chat_pk(query.group)
            if pk is None:
                raise HttpError(422, f"group: unknown chat_id {query.group!r}")
            f.group = str(pk)
    f.q = query.q or ""
    return f


def _stay(s) -> dict:
    return {
        "chat_id": s.group.chat_id,
        "name": s.group.name,
        "owner_userid": s.group.owner.userid if s.group.owner else None,
        "join_time": s.join_time,
        "join_scene": s.join_scene,
        "left_at": s.left_at,
    }


# --- customers -------------------------------------------------------------------------------
@router.get(
    "/customers",
    response=responses(CustomerPageOut, 400),
    summary="List customers (the console's filters, cursor pages)",
)
def list_customers(request, query: Query[CustomerQuery]):
    scope = scope_of(request)
    if query.cursor and selectors.decode_cursor(query.cursor) is None:
        raise HttpError(400, "cursor: not a cursor returned by this API")
    page = selectors.customer_page(
        scope, _filters(query), sort=query.sort.value, after=query.cursor or "", per_page=query.limit
    )
    details = selectors.page_row_details(scope, [c.id for c in page.rows])
    tag_rows = {
        t.id: t
        for t in Tag.objects.filter(id__in={t["id"] for d in details.values() for t in d["tags"]}).select_related(
            "group"
        )
    }
    items = []
    for c in page.rows:
        d = details[c.id]
        items.append(
            {
                "id": c.id,
                "external_userid": c.external_userid,
                "name": c.name,
                "avatar": c.avatar,
                "type": c.type,
                "gender": c.gender,
                "corp_name": c.corp_name,
                "status": c.status,
                "first_added_at": c.first_added_at,
                "lost_at": c.lost_at,
                "relations": [
                    {
                        "userid": r.employee.userid,
                        "employee_name": r.employee.name,
                        "remark": r.remark,
                        "status": r.status,
                        "added_at": r.added_at,
                    }
                    for r in d["relations"]
                ],
                "tags": [_tag(tag_rows[t["id"]]) for t in d["tags"] if t["id"] in tag_rows],
            }
        )
    return {
        "items": items,
        "next_cursor": page.next_cursor if page.has_next else None,
        "count": page.count or 0,
        "count_capped": page.count_capped,
    }


@router.get(
    "/customers/{int:customer_id}",
    response=responses(CustomerDetailOut, 404),
    summary="One customer: profile, every follow relation, tags, groups, timeline",
)
def get_customer(request, customer_id: DbId):
    d = selectors.customer_detail(scope_of(request), customer_id)  # Http404 / PermissionDenied
    c: Customer = d["customer"]
    tags: dict[str, dict] = {}
    relations = []
    for r in d["relations"]:
        rel_tags = [_tag(t) for t in r.tag_list if not t.deleted]
        if r.status == FollowRelation.ACTIVE:
            for t in rel_tags:
                tags.setdefault(t["tag_id"], t)
        relations.append(
            {
                "userid": r.employee.userid,
                "employee_name": r.employee.name,
                "remark": r.remark,
                "description": r.description,
                "remark_corp_name": r.remark_corp_name,
                "remark_mobiles": [str(m) for m in r.remark_mobiles or []],
                "add_way": r.add_way,
                "state": r.state,
                "added_at": r.added_at,
                "status": r.status,
                "status_changed_at": r.status_changed_at,
                "tags": rel_tags,
                "personal_tags": [str(p) for p in r.personal_tags or []],
            }
        )
    return {
        "id": c.id,
        "external_userid": c.external_userid,
        "name": c.name,
        "avatar": c.avatar,
        "type": c.type,
        "gender": c.gender,
        "unionid": c.unionid,
        "position": c.position,
        "corp_name": c.corp_name,
        "corp_full_name": c.corp_full_name,
        "status": c.status,
        "first_added_at": c.first_added_at,
        "lost_at": c.lost_at,
        "relations": relations,
        "tags": list(tags.values()),
        "groups": [_stay(s) for s in d["current_groups"]],
        "past_groups": [_stay(s) for s in d["past_groups"]],
        "timeline": [
            {
                "kind": e.kind,
                "at": e.at,
                "userid": e.employee.userid if e.employee else None,
                "detail": e.detail or {},
                "source": e.source,
            }
            for e in d["events"]
        ],
    }


@router.post(
    "/customers/bulk-tag",
    response=responses(BulkTagOut, 404, 502),
    summary="Add / remove corp tags on customers (written to WeCom with mark_tag)",
)
def bulk_tag(request, body: BulkTagIn):
    """Tags every active relation the caller's scope holds with each customer (a guide tags only
    their own relation). All customers must exist (else 404) and be in scope (else 403)."""
    if not body.add_tag and not body.remove_tag:
        raise HttpError(422, "add_tag or remove_tag must name at least one tag")
    both = set(body.add_tag) & set(body.remove_tag)
    if both:
        raise HttpError(422, f"tag(s) both added and removed: {', '.join(sorted(both))}")
    add = _tag_pks(body.add_tag, "add_tag")
    remove = _tag_pks(body.remove_tag, "remove_tag")
    scope = scope_of(request)
    ids = list(dict.fromkeys(body.customer_ids))
    existing = selectors.existing_customer_ids(ids)
    missing = [i for i in ids if i not in existing]
    if missing:
        raise Http404(f"unknown customer id(s): {', '.join(map(str, missing[:20]))}")
    visible = set(selectors.customer_queryset(scope).filter(id__in=ids).values_list("id", flat=True))
    hidden = [i for i in ids if i not in visible]
    if hidden:
        raise HttpError(403, f"customer id(s) outside your data scope: {', '.join(map(str, hidden[:20]))}")
    rels = selectors.relations_for_tagging(scope, ids)
    result = services.bulk_mark_tags(
        rels, add_tag_pks=add, remove_tag_pks=remove, operator=caller(request).get_username()
    )
    return {
        "relations": result.relations,
        "succeeded": result.succeeded,
        "customers": result.customers,
        "failures": [
            {"customer_id": f.customer_id, "userid": f.userid, "errcode": f.errcode, "errmsg": f.errmsg}
            for f in result.failures
        ],
    }


# --- tags ------------------------------------------------------------------------------------
class TagItemOut(Schema):
    tag_id: str
    name: str
    order: int
    customers: int = Field(description="customers with this tag on an active relation, within the caller's scope")


class TagGroupOut(Schema):
    group_id: str
    name: str
    order: int
    tags: list[TagItemOut]


class TagGroupIn(InputSchema):
    name: str = Field(min_length=1, max_length=30)
    tags: list[str] = Field(min_length=1, max_length=100, description="names of the group's first tags")


class TagNamesIn(InputSchema):
    names: list[str] = Field(min_length=1, max_length=100)


class RenameIn(InputSchema):
    name: str = Field(min_length=1, max_length=30)


def _group_out(g: TagGroup, tags=None) -> dict:
    tags = tags if tags is not None else list(g.tags.filter(deleted=False).order_by("-order", "id"))
    return {
        "group_id": g.group_id,
        "name": g.name,
        "order": g.order,
        "tags": [
            {"tag_id": t.tag_id, "name": t.name, "order": t.order, "customers": getattr(t, "customer_count", 0)}
            for t in tags
        ],
    }


@tags_router.get(
    "/tags", response=responses(list[TagGroupOut]), summary="The corp tag library (groups in WeCom's order)"
)
def list_tags(request):
    return [_group_out(item["group"], item["tags"]) for item in tag_selectors.tag_library(scope_of(request))]


@tags_router.post(
    "/tags/groups",
    response=responses(TagGroupOut, 400, 502, status=201),
    summary="Create a tag group with its first tags",
)
def create_group(request, body: TagGroupIn):
    require_role(request, *TAG_EDITORS)
    group = tag_services.create_group(body.name, body.tags)
    return 201, _group_out(group)


def _live_group(group_id: str) -> TagGroup:
    group = TagGroup.objects.filter(group_id=group_id, deleted=False).first()
    if group is None:
        raise Http404("unknown tag group")
    return group


@tags_router.post(
    "/tags/groups/{group_id}/tags",
    response=responses(TagGroupOut, 400, 404, 502, status=201),
    summary="Add tags to a group",
)
def add_tags(request, group_id: Text, body: TagNamesIn):
    require_role(request, *TAG_EDITORS)
    group = _live_group(group_id)
    tag_services.add_tags(group_id, body.names)
    group.refresh_from_db()
    return 201, _group_out(group)


@tags_router.patch(
    "/tags/groups/{group_id}", response=responses(TagGroupOut, 400, 404, 502), summary="Rename a tag group"
)
def rename_group(request, group_id: Text, body: RenameIn):
    require_role(request, *TAG_EDITORS)
    group = _live_group(group_id)
    tag_services.rename(group_id, body.name)
    group.refresh_from_db()
    return _group_out(group)


@tags_router.delete(
    "/tags/groups/{group_id}",
    response=responses(None, 400, 404, 502, status=204),
    summary="Delete a tag group and its tags",
)
def delete_group(request, group_id: Text):
    require_role(request, *TAG_EDITORS)
    if not TagGroup.objects.filter(group_id=group_id, deleted=False).exists():
        raise Http404("unknown tag group")
    tag_services.delete_group(group_id)
    return 204, None


@tags_router.patch("/tags/{tag_id}", response=responses(TagOut, 400, 404, 502), summary="Rename a tag")
def rename_tag(request, tag_id: Text, body: RenameIn):
    require_role(request, *TAG_EDITORS)
    if not Tag.objects.filter(tag_id=tag_id, deleted=False).exists():
        raise Http404("unknown tag")
    tag_services.rename(tag_id, body.name)
    return _tag(Tag.objects.select_related("group").get(tag_id=tag_id))


@tags_router.delete("/tags/{tag_id}", response=responses(None, 400, 404, 502, status=204), summary="Delete a tag")
def delete_tag(request, tag_id: Text):
    require_role(request, *TAG_EDITORS)
    if not Tag.objects.filter(tag_id=tag_id, deleted=False).exists():
        raise Http404("unknown tag")
    tag_services.delete_tag(tag_id)
    return 204, None
