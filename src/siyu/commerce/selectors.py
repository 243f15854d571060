"""Reads of the commerce app.

A person's orders and events are those of every profile in their cluster (docs/cdp.md: keys,
orders and events never move; a person is a live profile and the profiles merged into it), so the
readers take ``cluster_ids`` (``profiles.selectors.cluster_ids``) or a person id, matched in SQL
as ``profile_id = P OR profile.merged_into_id = P``.

The import pages are for admins and operators (the views check the role): no data scope applies.
"""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from django.db import connection
from django.db.models import Prefetch, Q, QuerySet
from django.utils.translation import gettext_lazy as _

from siyu.commerce.models import Event, EventType, ImportJob, Order, OrderItem
from siyu.profiles import services as profile_services

# the built-in event types' names in the viewer's language (the stored label is the Chinese one)
BUILTIN_LABELS = {
    "browse_product": _("浏览商品"),
    "add_to_cart": _("加入购物车"),
    "coupon_claimed": _("领取优惠券"),
    "coupon_redeemed": _("核销优惠券"),
    "link_clicked": _("点击链接"),
    "store_visit": _("到店"),
    "points_change": _("积分变动"),
}
SECTION_ORDERS = 20  # orders shown in the profile page's section
SECTION_EVENTS = 50


def _person_q(person_id: int) -> Q:
    return Q(profile_id=person_id) | Q(profile__merged_into_id=person_id)


def encode_cursor(at: datetime, pk: int) -> str:
    raw = json.dumps([at.isoformat(), pk], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[datetime, int] | None:
    """(time, id) from a cursor, or None for junk."""
    try:
        at, pk = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(pk, int) or not isinstance(at, str):
            return None
        return datetime.fromisoformat(at), pk
    except (ValueError, TypeError):
        return None


@dataclass
class OrderPage:
    items: list[Order]
    next_cursor: str | None


def orders_page(
    *, person_id: int | None = None, cluster_ids: Sequence[int] | None = None, after: str = "", limit: int = 50
) -> OrderPage:
    """A person's orders, newest paid first, with their items (``order.items.all()`` prefetched);
    ``after`` is the previous page's ``next_cursor``."""
    qs: QuerySet[Order] = Order.objects.all()
    if cluster_ids is not None:
        qs = qs.filter(profile_id__in=list(cluster_ids))
    elif person_id is not None:
        person = profile_services.person_ids([person_id]).get(person_id, person_id)
        qs = qs.filter(_person_q(person))
    seek = decode_cursor(after) if after else None
    if seek is not None:
        at, pk = seek
        qs = qs.filter(Q(paid_at__lt=at) | Q(paid_at=at, id__lt=pk))
    rows = list(
        qs.order_by("-paid_at", "-id").prefetch_related(Prefetch("items", queryset=OrderItem.objects.order_by("id")))[
            : limit + 1
        ]
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return OrderPage(rows, encode_cursor(rows[-1].paid_at, rows[-1].id) if more and rows else None)


def events_of(cluster_ids: Sequence[int], *, limit: int = SECTION_EVENTS) -> list[dict[str, Any]]:
    """A person's latest events (newest first) with their type's label."""
    types = {pk: (code, label) for pk, code, label in EventType.objects.values_list("id", "code", "label")}
    out = []
    for e in Event.objects.filter(profile_id__in=list(cluster_ids)).order_by("-at", "-id")[:limit]:
        code, label = types.get(e.type_id, ("", ""))
        out.append(
            {
                "at": e.at,
                "code": code,
                "label": BUILTIN_LABELS.get(code) or label or code,
                "props": e.props,
                "source": e.source,
            }
        )
    return out


def orders_section(person_id: int, cluster_ids: list[int], viewer: Any) -> dict[str, Any] | None:
    """The profile page's orders section (``commerce/section_orders.html``)."""
    page = orders_page(cluster_ids=cluster_ids, limit=SECTION_ORDERS)
    total = Order.objects.filter(profile_id__in=cluster_ids).count() if page.next_cursor else len(page.items)
    return {"orders": page.items, "total": total, "more": page.next_cursor is not None}


def events_section(person_id: int, cluster_ids: list[int], viewer: Any) -> dict[str, Any] | None:
    """The profile page's events timeline (``commerce/section_events.html``)."""
    return {"events": events_of(cluster_ids)}


def event_types() -> list[EventType]:
    return list(EventType.objects.order_by("-builtin", "code"))


# --- import jobs -----------------------------------------------------------------------------------


def recent_jobs(limit: int = 20) -> list[ImportJob]:
    return list(ImportJob.objects.select_related("created_by").order_by("-created_at", "-id")[:limit])


def import_job(job_id: int) -> ImportJob | None:
    return ImportJob.objects.filter(id=job_id).first()


IntArray = npt.NDArray[np.int64]


# --- reads for insights (RFM, lifecycle and value recompute) ------------------------------------
# Owned by the insights part (issue 17, part C); they read orders only.
#
# The recompute reads millions of orders, so these answer plain numpy arrays straight from the
# cursor instead of model instances: (profile_id, paid_at as unix seconds, net amount in cents) of
# every order that counts (paid or part-refunded, not fully refunded).

OrderFacts = tuple[IntArray, IntArray, IntArray]
FACTS_CHUNK = 250_000

# a counted order: not refunded, and not refunded up to its whole amount (a zero-amount order counts)
_COUNTED = "status <> 'refunded' AND (refunded_amount < amount OR amount = 0)"


def _facts_sql(where: str) -> str:
    table = connection.ops.quote_name(Order._meta.db_table)
    if connection.vendor == "postgresql":
        cols = "profile_id, EXTRACT(EPOCH FROM paid_at)::bigint, ROUND((amount - refunded_amount) * 100)::bigint"
    else:
        # two columns, not three (the cursor's cost is per value): the profile id and the paid time
        # (unix seconds, kept within 32 bits) packed into one integer
        cols = (
            "(profile_id << 32) | MAX(0, MIN(unixepoch(paid_at), 4294967295)), "
            "CAST(ROUND((amount - refunded_amount) * 100) AS INTEGER)"
        )
    return f"SELECT {cols} FROM {table} WHERE {_COUNTED}{where}"


def _unpack(rows: list[tuple[int, int]]) -> OrderFacts:
    flat = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=2 * len(rows))
    packed, cents = flat[0::2], flat[1::2]
    return packed >> 32, packed & 0xFFFFFFFF, np.maximum(cents, 0)


def _pg_copy_facts(sql: str, params: Sequence[object]) -> Iterator[OrderFacts]:
    """PostgreSQL: the rows as binary COPY, parsed by numpy (three bigint columns, never NULL)."""
    # lazy: only on PostgreSQL (SQLite installs need not have the driver)
    import psycopg

    row = np.dtype(
        [("n", ">i2"), ("l0", ">i4"), ("a", ">i8"), ("l1", ">i4"), ("b", ">i8"), ("l2", ">i4"), ("c", ">i8")]
    )
    connection.ensure_connection()
    buf = bytearray()
    header_done = False
    with psycopg.ClientCursor(connection.connection) as cur:
        query = cur.mogrify(sql, params) if params else sql
        with cur.copy(f"COPY ({query}) TO STDOUT (FORMAT binary)") as copy:
            for data in copy:
                buf += data
                if not header_done:
                    if len(buf) < 19:
                        continue
                    ext = int.from_bytes(buf[15:19], "big")
                    del buf[: 19 + ext]
                    header_done = True
                whole = len(buf) // row.itemsize
                if whole >= FACTS_CHUNK:
                    arr = np.frombuffer(bytes(buf[: whole * row.itemsize]), dtype=row)
                    del buf[: whole * row.itemsize]
                    yield _struct(arr)
    # the trailer is a 2-byte -1
    whole = len(buf) // row.itemsize
    if whole:
        arr = np.frombuffer(bytes(buf[: whole * row.itemsize]), dtype=row)
        yield _struct(arr[arr["n"] == 3])


def _struct(arr: npt.NDArray[Any]) -> OrderFacts:
    return (
        arr["a"].astype(np.int64),
        arr["b"].astype(np.int64),
        np.maximum(arr["c"].astype(np.int64), 0),
    )


def order_facts(profile_ids: Iterable[int] | None = None) -> Iterator[OrderFacts]:
    """Chunks of ``(profile_ids, paid_ts, net_cents)`` int64 arrays of the counted orders (every
    order's, or those of ``profile_ids``)."""
    params: list[Any] = []
    if profile_ids is None:
        sql = _facts_sql("")
    else:
        ids = sorted({int(i) for i in profile_ids})
        if not ids:
            return
        if connection.vendor == "postgresql":
            sql, params = _facts_sql(" AND profile_id = ANY(%s)"), [ids]
        else:
            # one statement whatever the count: the ids as a JSON array
            sql = _facts_sql(" AND profile_id IN (SELECT value FROM json_each(%s))")
            params = [json.dumps(ids)]
    if connection.vendor == "postgresql":
        yield from _pg_copy_facts(sql, params)
        return
    with connection.cursor() as cur:
        cur.execute(sql, params)
        while True:
            rows = cur.fetchmany(FACTS_CHUNK)
            if not rows:
                break
            yield _unpack(rows)


def order_count() -> int:
    return Order.objects.count()


def orders_changed_since(
    at: datetime | None, after_id: int, limit: int = 50_000
) -> tuple[list[int], datetime | None, int]:
    """The profiles of orders written after the watermark ``(at, after_id)`` (by ``updated_at``,
    then id), at most ``limit`` orders, and the new watermark."""
    qs = Order.objects.all()
    if at is not None:
        qs = qs.filter(updated_at__gte=at).exclude(updated_at=at, id__lte=after_id)
    rows = list(qs.order_by("updated_at", "id").values_list("updated_at", "id", "profile_id")[:limit])
    if not rows:
        return [], at, after_id
    return sorted({r[2] for r in rows}), rows[-1][0], rows[-1][1]


def latest_order_mark() -> tuple[datetime | None, int]:
    """The newest ``(updated_at, id)`` of any order: where an incremental update starts after a
    full recompute that read everything written until now."""
    row = Order.objects.order_by("-updated_at", "-id").values_list("updated_at", "id").first()
    return (row[0], row[1]) if row else (None, 0)


# statuses, for readers that filter on them
ORDER_REFUNDED = Order.Status.REFUNDED


def orders() -> QuerySet[Order]:
    """Every order (each with ``profile_id``, ``paid_at``, ``amount``, ``refunded_amount``, ``status``)."""
    return Order.objects.all()


def order_items() -> QuerySet[OrderItem]:
    """Every order item (repeating its order's ``profile_id`` and ``paid_at``)."""
    return OrderItem.objects.all()


def events() -> QuerySet[Event]:
    """Every behaviour event (``type_id``, ``profile_id``, ``at``)."""
    return Event.objects.all()


def event_type_ids(codes: Iterable[str] | None = None) -> dict[str, int]:
    """Event type row ids by code (all types when ``codes`` is None)."""
    qs = EventType.objects.all()
    if codes is not None:
        qs = qs.filter(code__in=list(codes))
    return dict(qs.values_list("code", "id"))


# --- reads of the segment console (siyu.segments views) ------------------------------------


def event_type_choices() -> list[tuple[str, str]]:
    """Every event type (built-in first, then custom ones by code): (code, label)."""
    out = {k: str(v) for k, v in BUILTIN_LABELS.items()}
    for code, label in EventType.objects.order_by("-builtin", "code").values_list("code", "label"):
        if code not in BUILTIN_LABELS:  # a built-in type's name is ours (translated)
            out[code] = label or code
    return list(out.items())
