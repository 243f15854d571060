"""Bulk inserts and upserts for the full sync's hot path, without the ORM's per-value cost.

``bulk_create`` sends every value through the field machinery (model instances, ``pre_save``,
``get_db_prep_save``): about 5 µs a value. A sync page writes some 3,000 values into four tables,
so at 100,000 customers that alone is most of the time budget. These helpers write the same
``INSERT ... ON CONFLICT ... DO UPDATE ... RETURNING`` statement (SQLite ≥ 3.35, PostgreSQL) from
plain dicts, adapting values once per column with the backend's own adapters.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from itertools import chain
from operator import itemgetter
from typing import Any, cast

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, models

_PLAIN = {
    "AutoField",
    "BigAutoField",
    "BigIntegerField",
    "BooleanField",
    "CharField",
    "ForeignKey",
    "IntegerField",
    "PositiveIntegerField",
    "SmallIntegerField",
    "TextField",
}


def _adapter(field: models.Field[Any, Any]) -> Callable[[Any], Any] | None:
    kind = field.get_internal_type()
    if kind in _PLAIN:
        return None
    # the connection object itself, not the thread-local proxy ``connection`` (a lookup per use)
    db = connections[DEFAULT_DB_ALIAS]
    ops = db.ops
    if kind == "DateTimeField":
        if db.vendor == "sqlite" and settings.USE_TZ:
            # Django's adapter (make_naive in the connection's zone, then ``str``) without its
            # per-value checks: the same text, several times faster
            zone = db.timezone

            def adapt_dt(v: Any) -> Any:
                if type(v) is datetime and v.tzinfo is not None:
                    return str(v.astimezone(zone).replace(tzinfo=None))
                return ops.adapt_datetimefield_value(v)

            return _memo(adapt_dt)
        return _memo(ops.adapt_datetimefield_value)
    if kind == "DecimalField":
        # a finite Decimal is what ``get_db_prep_save`` hands the driver unchanged (``to_python``
        # of a Decimal is itself; both drivers take Decimals): only other values go through Django
        slow = _memo(lambda v: field.get_db_prep_save(v, db))
        return lambda v: v if type(v) is Decimal and v.is_finite() else slow(v)
    if kind == "JSONField" and isinstance(field, models.JSONField):
        encoder = field.encoder
        adapt_json = ops.adapt_json_value
        if db.vendor == "sqlite":  # JSON text: an empty object (the default of most rows) as is
            return lambda v: "{}" if type(v) is dict and not v else adapt_json(v, encoder)
        return lambda v: adapt_json(v, encoder)
    return _memo(lambda v: field.get_db_prep_save(v, db))


def _memo(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``fn`` remembering its answers for one statement: a column's values often repeat (the same
    ``now`` in every row, an order's time on each of its items, common prices), and adapting a
    datetime or a decimal costs microseconds each (hashable values only: datetimes, decimals...)."""
    seen: dict[Any, Any] = {}

    def adapt(v: Any) -> Any:
        try:
            return seen[v]
        except KeyError:
            out = seen[v] = fn(v)
            return out
        except TypeError:  # unhashable
            return fn(v)

    return adapt


def _column_values(
    rows: list[dict[str, Any]], names: Sequence[str], adapters: Sequence[Callable[[Any], Any] | None]
) -> list[list[Any]]:
    """The rows' values column by column, adapted (None stays None): a C-speed ``itemgetter`` pass
    per column, and an adapter call only for the columns that have one."""
    out = []
    for n, a in zip(names, adapters, strict=True):
        values = list(map(itemgetter(n), rows))
        if a is not None:
            values = [v if v is None else a(v) for v in values]
        out.append(values)
    return out


def _max_params() -> int:
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        return int(connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    return connection.features.max_query_params or 999


def _columns(model: type[models.Model], names: Sequence[str]) -> list[models.Field[Any, Any]]:
    opts = model._meta
    return [cast("models.Field[Any, Any]", opts.get_field(n)) for n in names]  # concrete columns only


def insert(
    model: type[models.Model],
    rows: list[dict[str, Any]],
    *,
    conflict: Sequence[str] = (),
    update: Sequence[str] | None = None,
    returning: Sequence[str] = (),
    columns: Sequence[str] | None = None,
) -> list[tuple[Any, ...]]:
    """Insert ``rows`` (dicts keyed by field name; a foreign key by its name, e.g. ``customer``).

    ``conflict``: the unique fields; with ``update`` the conflicting row is overwritten with those
    fields (DO UPDATE), without it the row is skipped (DO NOTHING). ``returning``: fields to read
    back from every inserted or updated row (skipped rows return nothing). ``columns``: the fields
    written (default: the first row's keys; other keys of the rows are ignored). Use inside a
    transaction when the rows must land together.
    """
    if not rows:
        return []
    names = list(columns or rows[0])
    fields = _columns(model, names)
    adapters = [_adapter(f) for f in fields]
    qn = connection.ops.quote_name
    table = qn(model._meta.db_table)
    cols = ", ".join(qn(f.column) for f in fields)
    tail = ""
    if conflict:
        target = ", ".join(qn(f.column) for f in _columns(model, conflict))
        if update:
            sets = ", ".join(f"{qn(f.column)} = EXCLUDED.{qn(f.column)}" for f in _columns(model, update))
            tail = f" ON CONFLICT ({target}) DO UPDATE SET {sets}"
        else:
            tail = f" ON CONFLICT ({target}) DO NOTHING"
    if returning:
        tail += " RETURNING " + ", ".join(qn(f.column) for f in _columns(model, returning))
    if connection.vendor == "postgresql":
        # One array per column, bound server-side: a short statement whatever the number of rows,
        # which the driver neither parses nor quotes value by value (Django's cursors bind
        # client-side). Same connection, so the same transaction.
        import psycopg  # lazy: only on PostgreSQL (SQLite installs need not have the driver)

        params = _column_values(rows, names, adapters)
        connection.ensure_connection()
        if not tail:
            # a plain insert: COPY, the server's fastest way in (no statement to plan, no arrays
            # to unpack); rows written by the driver's C code
            with (
                psycopg.Cursor(connection.connection) as pg_cur,
                pg_cur.copy(f"COPY {table} ({cols}) FROM STDIN") as cp,
            ):
                for row in zip(*params, strict=True):
                    cp.write_row(row)
            return []
        # %b: arrays sent in binary (psycopg's text array format escapes every element with a regex)
        arrays = ", ".join(f"%b::{f.db_type(connection)}[]" for f in fields)
        with psycopg.Cursor(connection.connection) as pg_cur:
            pg_cur.execute(f"INSERT INTO {table} ({cols}) SELECT * FROM unnest({arrays}){tail}", params)
            return pg_cur.fetchall() if returning else []
    out: list[tuple[Any, ...]] = []
    with connection.cursor() as cur:
        # "?" (SQLite's own style), not "%s": Django rewrites every "%s" of a statement with a regex, a
        # cost that grows with the thousands of placeholders of a multi-row VALUES
        mark = "?" if connection.vendor == "sqlite" else "%s"
        placeholder = "(" + ", ".join([mark] * len(fields)) + ")"
        per_stmt = max(1, _max_params() // len(fields))
        for start in range(0, len(rows), per_stmt):
            chunk = rows[start : start + per_stmt]
            # row by row, as the statement's placeholders go
            params = list(chain.from_iterable(zip(*_column_values(chunk, names, adapters), strict=True)))
            cur.execute(f"INSERT INTO {table} ({cols}) VALUES {', '.join([placeholder] * len(chunk))}{tail}", params)
            if returning:
                out.extend(cur.fetchall())
    return out


def upsert_ids(
    model: type[models.Model],
    rows: list[dict[str, Any]],
    key: str,
    update: Sequence[str],
    conflict: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
) -> dict[Any, int]:
    """Upsert on ``conflict`` (default: the single unique field ``key``) and return row ids by
    ``key`` (for a composite ``conflict``, by the tuple of its values)."""
    conflict = list(conflict or [key])
    got = insert(model, rows, conflict=conflict, update=update, returning=["id", *conflict], columns=columns)
    if len(conflict) == 1:
        return {r[1]: r[0] for r in got}
    return {tuple(r[1:]): r[0] for r in got}


def insert_new(
    model: type[models.Model], rows: list[dict[str, Any]], conflict: Sequence[str], columns: Sequence[str]
) -> tuple[dict[tuple[Any, ...], int], list[dict[str, Any]]]:
    """Insert rows the caller found missing: their ids by the tuple of their ``conflict`` values,
    and the rows another writer stored in the meantime (not written here; the caller decides).

    PostgreSQL: ids drawn from the table's sequence, then COPY in a savepoint: a plain insert
    costs the server about half of ``ON CONFLICT`` (its speculative insertion) with ``RETURNING``.
    Should a row meet one stored meanwhile (a unique violation), the savepoint is rolled back and
    the batch goes again as ``ON CONFLICT DO NOTHING RETURNING``, the only path on SQLite."""
    if not rows:
        return {}, []
    key = itemgetter(*conflict) if len(conflict) > 1 else (lambda r: (r[conflict[0]],))
    if connection.vendor == "postgresql":
        import psycopg  # lazy: only on PostgreSQL (SQLite installs need not have the driver)
        from django.db import transaction

        qn = connection.ops.quote_name
        with connection.cursor() as cur:
            cur.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [qn(model._meta.db_table), model._meta.pk.column, len(rows)],
            )
            ids = [r[0] for r in cur.fetchall()]
        with_ids = [{**r, "id": i} for r, i in zip(rows, ids, strict=True)]
        try:
            with transaction.atomic():
                insert(model, with_ids, columns=["id", *columns])
        except psycopg.errors.UniqueViolation:
            pass
        else:
            return {key(r): i for r, i in zip(rows, ids, strict=True)}, []
    got = insert(model, rows, conflict=conflict, returning=["id", *conflict], columns=columns)
    out = {tuple(r[1:]): r[0] for r in got}
    return out, [r for r in rows if key(r) not in out]


def plain(model: type[models.Model], names: Sequence[str]) -> bool:
    """Are these fields stored as they are read (text, integers, keys: no converter)?"""
    return all(
        f.get_internal_type() in _PLAIN and f.get_internal_type() != "BooleanField" for f in _columns(model, names)
    )


def select_in(
    model: type[models.Model],
    columns: Sequence[str],
    where: dict[str, Any],
    in_field: str,
    values: Sequence[Any],
    *,
    chunk: int = 5000,
) -> list[tuple[Any, ...]]:
    """``model.objects.filter(**where, <in_field>__in=values).values_list(*columns)`` for plain
    columns (text, integers, foreign keys by their name) without the ORM's per-value preparation
    of the ``IN`` list (microseconds a value, which adds up at thousands of keys a batch): one
    statement a ``chunk`` of values (PostgreSQL: ``= ANY(array)``). The values come back as the
    driver reads them (no field converters: see ``plain``)."""
    if not values:
        return []
    qn = connection.ops.quote_name
    table = qn(model._meta.db_table)
    cols = ", ".join(qn(f.column) for f in _columns(model, columns))
    wfields = _columns(model, list(where))
    col_in = qn(_columns(model, [in_field])[0].column)
    pg = connection.vendor == "postgresql"
    mark = "?" if connection.vendor == "sqlite" else "%s"
    cond = "".join(f"{qn(f.column)} = {mark} AND " for f in wfields)
    out: list[tuple[Any, ...]] = []
    with connection.cursor() as cur:
        for start in range(0, len(values), chunk):
            part = list(values[start : start + chunk])
            if pg:
                cur.execute(f"SELECT {cols} FROM {table} WHERE {cond}{col_in} = ANY(%s)", [*where.values(), part])
            else:
                marks = ", ".join([mark] * len(part))
                cur.execute(f"SELECT {cols} FROM {table} WHERE {cond}{col_in} IN ({marks})", [*where.values(), *part])
            out.extend(tuple(r) for r in cur.fetchall())
    return out
