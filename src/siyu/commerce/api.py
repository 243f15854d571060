"""REST endpoints of the commerce app: batches of orders, events and members from the brand's
other systems (docs/cdp.md "Ingestion rows"), and a person's orders.

``POST /api/v1/cdp/{orders,events,members}`` takes ``{"source": "pos", "dry_run": false, "rows":
[...]}`` with at most 1,000 rows (413 beyond). Each row is checked on its own: good rows are
written, bad ones come back in ``errors`` as ``{"row": i, "id": "<source id>", "errors": {field:
message}}`` (``row`` is the row's index in ``rows``). Re-sending the same rows answers
``unchanged`` and writes nothing. Admins and operators only.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError
from pydantic import ConfigDict

from siyu.accounts.permissions import Role, caller, require_role
from siyu.commerce import selectors, services
from siyu.core.api_schemas import responses
from siyu.core.inputs import DbId, Text

router = Router(tags=["cdp"])

WRITERS = (Role.ADMIN, Role.OPERATOR)

_KEYS = "Customer keys (at least one): unionid, phone, member_no, external_userid, openid."


class _Row(Schema):
    # Values are checked row by row by the service (a bad value fails its row, not the call), so
    # they are typed loosely here; the descriptions say what each must be.
    model_config = ConfigDict(extra="allow")

    unionid: Any = Field(None, description="WeChat unionid (≤ 64)")
    phone: Any = Field(None, description="mobile; normalised (+86 138-0013-8000 → 13800138000)")
    member_no: Any = Field(None, description="member number (≤ 64)")
    external_userid: Any = Field(None, description="WeCom customer id (≤ 128)")
    openid: Any = Field(None, description="mini-program openid (≤ 128)")


class ItemRow(Schema):
    model_config = ConfigDict(extra="allow")

    sku: Any = Field(None, description="≤ 64")
    name: Any = Field(None, description="≤ 128")
    category: Any = Field(None, description="≤ 64")
    brand: Any = Field(None, description="≤ 64")
    quantity: Any = Field(None, description="integer 0–1,000,000 (default 1)")
    price: Any = Field(None, description="yuan, ≥ 0, 2 decimals")


class OrderRow(_Row):
    order_no: Any = Field(None, description="required; the source's order id (≤ 64)")
    source: Any = Field(None, description="the sending system (≤ 32); default: the batch's source")
    store_code: Any = Field(None, description="≤ 64")
    guide_userid: Any = Field(None, description="the guide's WeCom account (≤ 64)")
    channel: Any = Field(None, description="≤ 32")
    paid_at: Any = Field(None, description="required; ISO 8601 (naive = Asia/Shanghai)")
    amount: Any = Field(None, description="required; paid, yuan, ≥ 0, 2 decimals")
    discount: Any = Field(None, description="yuan (default 0)")
    status: Any = Field(None, description="paid (default) | part_refunded | refunded")
    refunded_amount: Any = Field(None, description="yuan ≤ amount (refunded without it: the whole amount)")
    items: Any = Field(None, description="list of items (≤ 500); replaced when the order changes")


class EventRow(_Row):
    event_id: Any = Field(None, description="required; the source's event id (≤ 64)")
    source: Any = Field(None, description="the sending system (≤ 32); default: the batch's source")
    type: Any = Field(
        None,
        description=(
            "required; browse_product, add_to_cart, coupon_claimed, coupon_redeemed, link_clicked, "
            "store_visit, points_change, or any other [a-z0-9_]{1,32} (a custom type)"
        ),
    )
    at: Any = Field(None, description="required; ISO 8601 (naive = Asia/Shanghai)")
    props: Any = Field(None, description="JSON object (≤ 8 KB)")


class MemberRow(_Row):
    member_no: Any = Field(None, description="required (≤ 64)")
    name: Any = Field(None, description="≤ 128")
    gender: Any = Field(None, description="0 unknown, 1 male, 2 female (男/女 too)")
    level: Any = Field(None, description="member level (≤ 32)")
    points: Any = Field(None, description="integer")
    birthday: Any = Field(None, description="YYYY-MM-DD")
    join_store: Any = Field(None, description="≤ 64")
    joined_at: Any = Field(None, description="ISO 8601")
    attributes: Any = Field(None, description="JSON object, merged into the stored one")
    custom: Any = Field(None, description="{custom field key: value}, checked against the field's type")


class _Batch(Schema):
    source: Text = Field("", max_length=32, description="the sending system (e.g. pos, mall)")
    dry_run: bool = Field(False, description="check and count, write nothing")


class OrdersIn(_Batch):
    rows: list[OrderRow] = Field(description=f"≤ {services.MAX_BATCH} orders. {_KEYS}")


class EventsIn(_Batch):
    rows: list[EventRow] = Field(description=f"≤ {services.MAX_BATCH} events. {_KEYS}")


class MembersIn(_Batch):
    rows: list[MemberRow] = Field(description=f"≤ {services.MAX_BATCH} members. {_KEYS}")


class RowErrorOut(Schema):
    row: int = Field(description="the row's index in rows")
    id: str = Field(description="the row's source id (order_no / event_id / member_no) as sent")
    errors: dict[str, str] = Field(description="field → what is wrong")


class IngestOut(Schema):
    created: int
    updated: int
    unchanged: int
    failed: int
    errors: list[RowErrorOut]
    unknown_guides: list[str] = Field(
        description="orders: guide accounts (guide_userid) of the orders written that are not WeCom members, most "
        "orders first, at most 20. The orders are stored as sent; their guide shows once the account is a member."
    )


def _ingest(request, kind: str, payload: _Batch, rows: list[Any]):
    require_role(request, *WRITERS)
    if len(rows) > services.MAX_BATCH:
        raise HttpError(413, f"At most {services.MAX_BATCH} rows a call")
    plain = [r.model_dump(exclude_unset=True) for r in rows]
    result = services.ingest(
        kind, plain, source=payload.source, dry_run=payload.dry_run, operator=caller(request).username, via="api"
    )
    return result.as_dict()


@router.post("/cdp/orders", response=responses(IngestOut, 413), summary="Upsert a batch of orders")
def post_orders(request, payload: OrdersIn):
    return _ingest(request, "orders", payload, payload.rows)


@router.post("/cdp/events", response=responses(IngestOut, 413), summary="Insert a batch of events")
def post_events(request, payload: EventsIn):
    return _ingest(request, "events", payload, payload.rows)


@router.post("/cdp/members", response=responses(IngestOut, 413), summary="Upsert a batch of members")
def post_members(request, payload: MembersIn):
    return _ingest(request, "members", payload, payload.rows)


class ItemOut(Schema):
    sku: str
    name: str
    category: str
    brand: str
    quantity: int
    price: Decimal


class OrderOut(Schema):
    id: int
    source: str
    order_no: str
    profile_id: int
    store_code: str
    guide_userid: str
    channel: str
    paid_at: datetime
    amount: Decimal
    discount: Decimal
    refunded_amount: Decimal
    status: str
    updated_at: datetime
    items: list[ItemOut]


class OrderPageOut(Schema):
    items: list[OrderOut]
    next_cursor: str | None


class OrdersQuery(Schema):
    profile: DbId = Field(description="a profile id: the orders of its person (it and the profiles merged into it)")
    cursor: str | None = Field(None, max_length=200, description="next_cursor of the previous page")
    limit: int = Field(50, ge=1, le=200)


@router.get("/cdp/orders", response=responses(OrderPageOut, 400), summary="A person's orders, newest first")
def list_orders(request, query: Query[OrdersQuery]):
    require_role(request, *WRITERS)
    if query.cursor and selectors.decode_cursor(query.cursor) is None:
        raise HttpError(400, "cursor: not a cursor returned by this API")
    page = selectors.orders_page(person_id=query.profile, after=query.cursor or "", limit=query.limit)
    return {
        "items": [
            {
                **{f: getattr(o, f) for f in OrderOut.model_fields if f != "items"},
                "items": [
                    {f: getattr(i, f) for f in ("sku", "name", "category", "brand", "quantity", "price")}
                    for i in o.items.all()
                ],
            }
            for o in page.items
        ],
        "next_cursor": page.next_cursor,
    }
