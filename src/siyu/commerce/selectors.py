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
from django.db.models import Max, Prefetch, Q, QuerySet
from django.utils.translation import gettext_lazy as _

from siyu.commerce.models import Event, EventType, ImportJob, Order, OrderItem
from siyu.core import paging
from siyu.org import selectors as org_selectors
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
    names = org_selectors.names_by_userid(o.guide_userid for o in page.items if o.guide_userid)
    for o in page.items:  # the guide's name; None: an account that is not a WeCom member
        o.guide_name = names.get(o.guide_userid)
    total = order_count_of(cluster_ids) if page.next_cursor else len(page.items)
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


# PostgreSQL: each column of a slice of orders as one array value in the server's binary form
# (``array_send(array_agg(...))``, a bytea read as raw bytes), parsed by numpy: a few values per
# million orders instead of a row each (libpq hands COPY data over one row at a time, ~3 µs each).
# ``paid_at`` is sent as stored (microseconds since 2000-01-01) and rounded to seconds here as
# ``EXTRACT(EPOCH FROM paid_at)::bigint`` would (half away from zero), which the server does slowly.
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in unix microseconds
_PG_SLICE = 1_000_000  # ids per statement


def _pg_facts_sql(where: str) -> str:
    table = connection.ops.quote_name(Order._meta.db_table)
    return (
        "SELECT array_send(array_agg(profile_id)), array_send(array_agg(paid_at)), "
        "array_send(array_agg(((amount - refunded_amount) * 100)::bigint)) "
        f"FROM {table} WHERE {_COUNTED}{where}"
    )


def _pg_int8_array(data: bytes | None) -> IntArray:
    """An ``int8[]`` / ``timestamptz[]`` in binary form (one dimension, no NULLs) as int64 values."""
    if not data:
        return np.zeros(0, dtype=np.int64)
    ndim = int.from_bytes(data[0:4], "big")
    if ndim == 0:
        return np.zeros(0, dtype=np.int64)
    items = np.frombuffer(data, dtype=np.dtype([("len", ">i4"), ("v", ">i8")]), offset=12 + 8 * ndim)
    return items["v"].astype(np.int64)


def _pg_seconds(us: IntArray) -> IntArray:
    """Microseconds since 2000-01-01 as unix seconds, rounded half away from zero."""
    unix = us + _PG_EPOCH_US
    return np.asarray(np.sign(unix) * ((np.abs(unix) + 500_000) // 1_000_000), dtype=np.int64)


def _pg_facts(where: str, params: Sequence[object]) -> Iterator[OrderFacts]:
    # lazy: only on PostgreSQL (SQLite installs need not have the driver)
    import psycopg

    table = connection.ops.quote_name(Order._meta.db_table)
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cur:
        if params:
            slices = [(where, list(params))]
        else:
            low, high = cur.execute(f"SELECT min(id), max(id) FROM {table}").fetchone() or (None, None)
            if low is None or high is None:
                return
            slices = [
                (f" AND id >= %s AND id < %s{where}", [start, start + _PG_SLICE])
                for start in range(int(low), int(high) + 1, _PG_SLICE)
            ]
        for sql_where, args in slices:
            row = cur.execute(_pg_facts_sql(sql_where), args, binary=True).fetchone()
            if row is None or row[0] is None:
                continue
            pids, paid, cents = (_pg_int8_array(v) for v in row)
            yield pids, _pg_seconds(paid), np.maximum(cents, 0)


def order_facts(profile_ids: Iterable[int] | None = None) -> Iterator[OrderFacts]:
    """Chunks of ``(profile_ids, paid_ts, net_cents)`` int64 arrays of the counted orders (every
    order's, or those of ``profile_ids``)."""
    params: list[Any] = []
    pg = connection.vendor == "postgresql"
    if profile_ids is None:
        where = ""
    else:
        ids = sorted({int(i) for i in profile_ids})
        if not ids:
            return
        if pg:
            where, params = " AND profile_id = ANY(%s)", [ids]
        else:
            # one statement whatever the count: the ids as a JSON array
            where, params = " AND profile_id IN (SELECT value FROM json_each(%s))", [json.dumps(ids)]
    if pg:
        yield from _pg_facts(where, params)
        return
    with connection.cursor() as cur:
        cur.execute(_facts_sql(where), params)
        while True:
            rows = cur.fetchmany(FACTS_CHUNK)
            if not rows:
                break
            yield _unpack(rows)


def order_count() -> int:
    return Order.objects.count()


def _orders_changed_rows(
    at: datetime | None, after_id: int, limit: int, walk: str
) -> tuple[list[tuple[datetime, int, int]], datetime | None, int]:
    """``(updated_at, id, profile_id)`` of the orders written after the watermark ``(at, after_id)``
    (by ``updated_at``, then id), at most ``limit``, and the new watermark (with ``walk``, the walk's
    name: the orders not handed out yet, and a watermark over settled orders only:
    ``core.paging.settle``)."""
    cols = ("updated_at", "id", "profile_id")
    if at is None:
        rows = list(Order.objects.order_by("updated_at", "id").values_list(*cols)[:limit])
    else:
        # two seeks on the index (updated_at, id): the ties at ``at`` after ``after_id``, then the
        # later rows (``updated_at >= at`` minus the ties would walk every order written at
        # ``at``, which an import writes by the million; SQLite seeks a row value on its first
        # column only)
        ties = Order.objects.filter(updated_at=at, id__gt=after_id).order_by("id")
        rows = list(ties.values_list(*cols)[:limit])
        if len(rows) < limit:
            later = Order.objects.filter(updated_at__gt=at).order_by("updated_at", "id")
            rows += later.values_list(*cols)[: limit - len(rows)]
    if not rows:
        return [], at, after_id
    if walk:
        return paging.settle(walk, rows, at, after_id)
    return rows, rows[-1][0], rows[-1][1]


def orders_changed_since(
    at: datetime | None, after_id: int, limit: int = 50_000, walk: str = ""
) -> tuple[list[int], datetime | None, int]:
    """The profiles of orders written after the watermark ``(at, after_id)`` and the new watermark
    (``_orders_changed_rows``)."""
    rows, at, after_id = _orders_changed_rows(at, after_id, limit, walk)
    return sorted({r[2] for r in rows}), at, after_id


def order_ids_changed_since(
    at: datetime | None, after_id: int, limit: int = 5_000, walk: str = ""
) -> tuple[list[int], datetime | None, int]:
    """The orders (ids) written after the watermark ``(at, after_id)`` and the new watermark."""
    rows, at, after_id = _orders_changed_rows(at, after_id, limit, walk)
    return [r[1] for r in rows], at, after_id


def latest_order_mark() -> tuple[datetime | None, int]:
    """The newest ``(updated_at, id)`` of any order: where an incremental update starts after a
    full recompute that read everything written until now."""
    row = Order.objects.order_by("-updated_at", "-id").values_list("updated_at", "id").first()
    return (row[0], row[1]) if row else (None, 0)


# statuses, for readers that filter on them
ORDER_REFUNDED = Order.Status.REFUNDED


def max_order_id() -> int:
    """The newest order's row id (a primary-key read): a mark to count the orders after."""
    return Order.objects.aggregate(m=Max("id"))["m"] or 0


def orders_after(mark: int, at_least: int) -> bool:
    """Whether ``at_least`` orders came after the id ``mark``. The id distance first (a
    primary-key read; ids skip, so it only bounds the count), then a count stopped at
    ``at_least`` rows."""
    if max_order_id() - mark < at_least:
        return False
    return Order.objects.filter(id__gt=mark).order_by("id").values("id")[:at_least].count() >= at_least


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


def order_count_of(cluster_ids: Sequence[int]) -> int:
    """How many orders a person (their cluster of profiles) has."""
    return Order.objects.filter(profile_id__in=list(cluster_ids)).count()
