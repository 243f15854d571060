"""REST API of continuity (mounted by siyu.api under /api/v1/transfers/...).

Every read is scoped like the console; starting a handover needs the admin, operator or store
manager role, and the employees involved must be in the caller's scope. An on-job transfer moves
only the handover employee's active customers and groups within that scope: any other id is refused
(422, one answer for unknown and out-of-scope ids). An on-job transfer of customers already at the
90-day limit is refused (422) before WeCom is asked."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from django.core.exceptions import PermissionDenied
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError

from siyu.accounts.permissions import Role, caller, require_role, scope_of
from siyu.core.api_schemas import Error, responses  # noqa: F401 (Error: the shared error body)
from siyu.core.inputs import ApiDate, DbId, InputSchema, Offset
from siyu.org import selectors as org_selectors
from siyu.org.selectors import EmployeeStatus
from siyu.transfers import selectors, services
from siyu.transfers.models import Handover
from siyu.wecom.gateway import WeComAPIError

router = Router(tags=["transfers"])
STARTERS = (Role.ADMIN, Role.OPERATOR, Role.STORE_MANAGER)
Count = Annotated[int, Field(ge=0, le=1_000_000)]


class ItemOut(Schema):
    external_userid: str
    customer_name: str
    takeover_userid: str
    status: str
    errcode: int
    reason: str
    started_at: datetime | None
    due_at: datetime | None
    finished_at: datetime | None


class HandoverOut(Schema):
    id: int
    kind: str
    handover_userid: str
    strategy: str
    message: str
    created_at: datetime
    counts: dict[str, int]
    unplaced: list[str]


class HandoverDetailOut(HandoverOut):
    items: list[ItemOut]
    groups: list[dict]


class ResignedIn(InputSchema):
    handover_userid: str = Field(..., max_length=64)
    strategy: str = Field("single", pattern="^(single|count|store|round_robin)$")
    takeover_userids: list[str] = Field(default_factory=list, max_length=200)
    counts: dict[str, Count] = Field(
        default_factory=dict, max_length=200, description="count strategy: userid → customers"
    )
    caps: dict[str, Count] = Field(
        default_factory=dict, max_length=200, description="round_robin/store: userid → at most"
    )
    store_ids: list[DbId] = Field(
        default_factory=list, max_length=500, description="store strategy: WeCom department ids"
    )
    include_groups: bool = True


class OnjobIn(InputSchema):
    handover_userid: str = Field(..., max_length=64)
    takeover_userid: str = Field(..., max_length=64)
    external_userids: list[str] = Field(default_factory=list, max_length=5000)
    chat_ids: list[str] = Field(default_factory=list, max_length=1000)
    message: str = Field("", max_length=200)


class PreviewIn(InputSchema):
    external_userids: list[str] = Field(..., max_length=5000)


class PreviewRow(Schema):
    external_userid: str
    transfers_90d: int
    allowed: bool
    message: str


class ChurnOut(Schema):
    id: int
    kind: str
    external_userid: str
    customer_name: str
    userid: str
    at: datetime
    manager_userid: str
    notify_status: str
    notified_at: datetime | None


class ChurnQuery(InputSchema):
    kind: str | None = Field(None, pattern="^(del_follow_user|del_external_contact)$")
    employee: str | None = Field(None, max_length=64)
    date_from: ApiDate | None = None
    date_to: ApiDate | None = None
    limit: int = Field(100, ge=1, le=1000)
    offset: Offset = 0


def _out(h: Handover, scope) -> dict:
    return {
        "id": h.id,
        "kind": h.kind,
        "handover_userid": h.handover.userid,
        "strategy": h.strategy,
        "message": h.message,
        "created_at": h.created_at,
        "counts": selectors.status_counts(h, scope),
        "unplaced": h.unplaced,
    }


def _emp(scope, userid: str):
    e = selectors.employee_by_userid(userid)
    if e is None:
        raise HttpError(404, f"unknown employee {userid}")
    try:
        return selectors.employee_in_scope(scope, e.id)
    except PermissionDenied:
        raise HttpError(403, f"employee {userid} is outside your data scope") from None


def _detail(h: Handover, scope) -> dict:
    items = [
        {
            "external_userid": i.external_userid,
            "customer_name": i.customer.name if i.customer else "",
            "takeover_userid": i.takeover_userid,
            "status": i.status,
            "errcode": i.errcode,
            "reason": i.reason,
            "started_at": i.started_at,
            "due_at": i.due_at,
            "finished_at": i.finished_at,
        }
        for i in selectors.items(scope, h)
    ]
    groups = [
        {
            "chat_id": g.chat_id,
            "new_owner": g.new_owner.userid,
            "status": g.status,
            "errcode": g.errcode,
            "reason": g.reason,
        }
        for g in selectors.group_items(scope, h)
    ]
    return {**_out(h, scope), "items": items, "groups": groups}


@router.get(
    "/transfers/unassigned",
    response=responses(None, 502),
    summary="Departed employees with customers or groups to hand over",
)
def unassigned(request):
    require_role(request, *STARTERS)
    scope = scope_of(request)
    wecom = selectors.unassigned_from_wecom()
    return [
        {
            "userid": r["employee"].userid,
            "name": r["employee"].name,
            "wecom_unassigned": r["wecom_unassigned"],
            "our_active": r["our_active"],
            "waiting": r["waiting"],
            "groups": r["groups"],
        }
        for r in selectors.departed(scope, wecom)
    ]


@router.get("/transfers/handovers", response=responses(list[HandoverOut]), summary="Handover records, newest first")
def list_handovers(request, limit: int = Query(50, ge=1, le=200), offset: Offset = 0):
    scope = scope_of(request)
    return [_out(h, scope) for h in selectors.handovers(scope)[offset : offset + limit]]


@router.get(
    "/transfers/handovers/{int:handover_id}",
    response=responses(HandoverDetailOut, 404),
    summary="One handover: counts, each customer's status, the groups",
)
def get_handover(request, handover_id: DbId):
    scope = scope_of(request)
    try:
        h = selectors.handover_in_scope(scope, handover_id)
    except Handover.DoesNotExist:
        return 404, {"detail": "not found"}
    except PermissionDenied:
        return 403, {"detail": "outside your data scope"}
    return 200, _detail(h, scope)


def _submit(h: Handover, scope) -> dict:
    try:
        services.submit(h)
    except WeComAPIError as e:
        raise HttpError(502, f"WeCom: {e}") from None
    h.refresh_from_db()
    return _detail(h, scope)


@router.post(
    "/transfers/resigned",
    response=responses(HandoverDetailOut, 404, 502),
    summary="Hand a departed employee's customers (and groups) over: one, by count, by store, round robin",
)
def start_resigned(request, body: ResignedIn):
    require_role(request, *STARTERS)
    scope = scope_of(request)
    emp = _emp(scope, body.handover_userid)
    if emp.status != EmployeeStatus.LEFT:
        return 422, {"detail": "the employee has not left: use an on-job transfer"}
    allowed = {e.userid: e for e in selectors.takeover_choices(scope).exclude(id=emp.id)}
    if body.strategy == "store":
        ids = [
            i
            for i in org_selectors.contact_member_ids(body.store_ids, {emp.id})
            if i in {e.id for e in allowed.values()}
        ]
        chosen = selectors.employees_by_id(ids)
    else:
        unknown = [u for u in body.takeover_userids if u not in allowed]
        if unknown:
            return 422, {"detail": f"not an active member with the customer-contact function in your scope: {unknown}"}
        chosen = [allowed[u] for u in dict.fromkeys(body.takeover_userids)]
    # WeCom's own list decides: customers it would refuse are recorded as not sent, with why
    check = services.precheck_resigned(emp, selectors.unassigned_from_wecom())
    if not check.wecom_ok:
        return 502, {"detail": "WeCom's list of unassigned customers could not be read; nothing was sent"}
    groups = [g.chat_id for g in selectors.groups_of(emp)] if body.include_groups else []
    if not check.sendable and not groups:
        return 422, {"detail": "WeCom lists no customer of this employee as waiting for a new owner"}
    try:
        p = services.plan(
            body.strategy,
            external_userids=check.sendable,
            chat_ids=groups,
            takeovers=[e.id for e in chosen],
            counts={e.id: body.counts.get(e.userid, 0) for e in chosen},
            caps={e.id: body.caps.get(e.userid, 0) for e in chosen},
        )
        h = services.create_handover(
            Handover.RESIGNED, emp, p, strategy=body.strategy, user=caller(request), refused=check.refused
        )
    except services.TransferError as e:
        return 422, {"detail": str(e)}
    return 200, _submit(h, scope)


@router.post(
    "/transfers/onjob/preview",
    response=responses(list[PreviewRow]),
    summary="The 90-day limit per customer, before an on-job transfer",
)
def onjob_preview(request, body: PreviewIn):
    require_role(request, *STARTERS)
    visible = selectors.customers_visible(scope_of(request), body.external_userids)
    hidden = [x for x in dict.fromkeys(body.external_userids) if x not in visible]
    if hidden:  # unknown or outside the scope: the same answer
        raise HttpError(422, f"not customers within your data scope: {', '.join(hidden[:20])}")
    counts = services.onjob_counts(body.external_userids)
    return [
        {
            "external_userid": x,
            "transfers_90d": n,
            "allowed": n < services.ONJOB_MAX_PER_90D,
            "message": services.limit_message(n) if n >= services.ONJOB_MAX_PER_90D else "",
        }
        for x, n in counts.items()
    ]


@router.post(
    "/transfers/onjob",
    response=responses(HandoverDetailOut, 404, 502),
    summary="On-job transfer of customers (and groups) to a new owner, with a message",
)
def start_onjob(request, body: OnjobIn):
    require_role(request, *STARTERS)
    scope = scope_of(request)
    emp = _emp(scope, body.handover_userid)
    takeover = _emp(scope, body.takeover_userid)
    if takeover.status != EmployeeStatus.ACTIVE or not takeover.contact_enabled or takeover.id == emp.id:
        return 422, {"detail": "the takeover must be another active member with the customer-contact function"}
    if not body.external_userids and not body.chat_ids:
        return 422, {"detail": "no customers or groups"}
    # one answer for unknown ids, other employees' customers and customers outside the scope: the
    # caller learns nothing about who they are (the console drops them the same way)
    xs, refused = selectors.onjob_selection(scope, emp, body.external_userids)
    if refused:
        return 422, {
            "detail": f"not active customers of {emp.userid} within your data scope: {', '.join(refused[:20])}"
        }
    check = services.precheck_onjob(emp, xs) if xs else services.Precheck()
    if not check.wecom_ok:
        return 502, {"detail": "WeCom's view of this employee's customers could not be read; nothing was sent"}
    if xs and not check.sendable and not body.chat_ids:
        return 422, {"detail": next(iter(check.refused.values())).reason}
    xs = check.sendable
    blocked = services.onjob_blocked(xs)
    if blocked and len(blocked) == len(xs) and not body.chat_ids:
        return 422, {"detail": services.limit_message(max(blocked.values()))}
    own_groups = {g.chat_id for g in selectors.groups_of(emp)}
    chats = list(dict.fromkeys(body.chat_ids))
    foreign = [c for c in chats if c not in own_groups]
    if foreign:
        return 422, {"detail": f"not active groups owned by {emp.userid}: {', '.join(foreign[:20])}"}
    try:
        p = services.plan(Handover.Strategy.SINGLE, external_userids=xs, chat_ids=chats, takeovers=[takeover.id])
        h = services.create_handover(
            Handover.ONJOB, emp, p, message=body.message, user=caller(request), blocked=blocked, refused=check.refused
        )
    except services.TransferError as e:
        return 422, {"detail": str(e)}
    return 200, _submit(h, scope)


@router.post("/transfers/poll", response=responses(None, 502), summary="Read the transfer results from WeCom now")
def poll(request):
    require_role(request, *STARTERS)
    try:
        return services.poll()
    except WeComAPIError as e:
        raise HttpError(502, f"WeCom: {e}") from None


@router.get("/transfers/churn", response=responses(list[ChurnOut], 404), summary="Lost relations (churn), newest first")
def list_churn(request, query: Query[ChurnQuery]):
    scope = scope_of(request)
    f = selectors.ChurnFilters(kind=query.kind or "", date_from=query.date_from, date_to=query.date_to)
    if query.employee:
        f.employee_id = _emp(scope, query.employee).id
    qs = selectors.churn(scope, f)[query.offset : query.offset + query.limit]
    return [
        {
            "id": e.id,
            "kind": e.kind,
            "external_userid": e.external_userid,
            "customer_name": e.customer.name if e.customer else "",
            "userid": e.userid,
            "at": e.at,
            "manager_userid": e.manager_userid,
            "notify_status": e.notify_status,
            "notified_at": e.notified_at,
        }
        for e in qs
    ]
