"""Reads of the commerce app (scoped by the viewer's DataScope)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from django.db import connection

from siyu.commerce.models import Order

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
