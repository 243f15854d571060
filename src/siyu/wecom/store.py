"""Group commit for the callback inbox (``siyu.core.groupcommit``): a callback is answered only
once its event is durable, and a burst costs one transaction per batch."""

from __future__ import annotations

import functools
from typing import Any

from django.db import connection

from siyu.core.groupcommit import GroupWriter
from siyu.wecom import inbox
from siyu.wecom.models import CallbackInbox


def _insert(rows: list[CallbackInbox]) -> None:
    """Insert, ignoring dedupe-key conflicts (WeCom's retries): one prepared statement per batch,
    not the ORM's per-call query compilation (this runs for every callback burst).

    A repeated key of a re-read event that was already processed is queued again: it may be a
    second, identical-looking event (two edits of one customer within a second carry the same
    fields), and processing a re-read twice changes nothing.
    """
    fields, ignore_sql, requeue_sql = _insert_sql(connection.vendor)
    plain: list[list[Any]] = []
    again: list[list[Any]] = []
    for row in rows:
        values = [f.get_db_prep_save(f.pre_save(row, True), connection) for f in fields]
        (again if inbox.rereads(row.event, row.change_type) else plain).append(values)
    with connection.cursor() as cur:
        if plain:
            cur.executemany(ignore_sql, plain)
        if again:
            cur.executemany(requeue_sql, [[*v, CallbackInbox.PENDING, CallbackInbox.DONE] for v in again])


@functools.cache
def _insert_sql(vendor: str) -> tuple[list[Any], str, str]:
    """The inbox's columns and its two insert statements (ignore a repeat / re-queue a processed
    re-read), built once per database vendor."""
    q = connection.ops.quote_name
    fields = [f for f in CallbackInbox._meta.concrete_fields if not f.primary_key]
    table = q(CallbackInbox._meta.db_table)
    cols = ", ".join(q(f.column) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {table} ({cols}) VALUES ({marks}) ON CONFLICT ({q('dedupe_key')}) "
    requeue = (
        f"DO UPDATE SET {q('status')} = %s, {q('run_after')} = 0, {q('attempts')} = 0, "
        f"{q('repeats')} = {table}.{q('repeats')} + 1 WHERE {table}.{q('status')} = %s"
    )
    return fields, sql + "DO NOTHING", sql + requeue


writer: GroupWriter[CallbackInbox] = GroupWriter(_insert, "inbox-writer")
