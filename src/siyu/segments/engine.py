"""The in-memory index: numpy columns and posting lists over person ids, answering counts in
milliseconds with exactly the SQL compiler's answer (``sqlcompile``, the truth).

Layout (arrays indexed by profile id, so a person is its live profile's id):

- ``root[profile]`` → the person (``merged_into`` or itself); ``live`` (not merged);
- profile columns of the row itself: gender, points, birthday (ISO ordinal, month*100+day),
  member_joined_at (epoch s), level / join store (dictionary codes);
- metrics columns (r, f, m, class, stage, band codes, value score), defaults where no row;
- WeCom, per person (through ``customer_persons``): posting lists (sorted person ids) per tag,
  per employee with an active relation, per employee with any relation (the scope), per
  contact-way state, per group (current stays); masks has-customer / any relation / active
  relation / in any group; the first relation's ``added_at``;
- orders (paid_at order): profile, time, net cents, valid (not fully refunded), order id;
- items of the orders valid at load, per sku / category / brand: (profile, time, order id) sorted
  by (code, time), each code's rows one range; times as int32 seconds from 2000;
- events sorted by (type, time): profile, time.

Orders, items and events keep the *profile* of the row; the person is read through ``root`` at
query time, so a merge or unmerge only rebuilds ``root`` and the WeCom part.

Freshness (``Index.refresh``, run before a count at most every ``SIYU_SEGMENT_INDEX_CHECK_S``
seconds, 1 s by default; ``0`` checks on every count):

- orders, items, events: new rows by max id, appended to small unsorted deltas (merged into the
  sorted arrays past ``DELTA_MAX`` rows); changed orders (refunds) by ``Order.updated_at``
  (re-read with a 60 s overlap for late commits): their cents and validity change in place;
- profiles (member data, merges) by ``updated_at`` and the set of merged rows; metrics by
  ``computed_at``: the changed rows are re-read;
- the WeCom part (relations, tags, group stays, customer keys, merges) is rebuilt as a whole when
  one of its watermarks moves (max ids of relations, tags, stays and keys; the latest
  ``Customer.updated_at``; the merged pairs), checked at most every
  ``SIYU_SEGMENT_INDEX_WECOM_CHECK_S`` seconds (10), in a background thread in a web process
  (``SIYU_SEGMENT_INDEX_BACKGROUND``); until it is done, counts use the previous one. Tags taken
  off a relation and group stays ended are seen through the customers' timeline (every such
  change writes an entry) and the corp tags' ``updated_at`` (a retired tag); anything else is
  picked up by the full rebuild every ``SIYU_SEGMENT_INDEX_REBUILD_S`` seconds (600).

So with the same ``now`` and no write since the last refresh, a count equals the SQL count; after
a write, append-only sources and profile/metrics rows are current within the check interval, the
WeCom part within one rebuild. Conditions the index does not hold (custom fields) are answered by
the SQL compiler for that condition alone and combined in memory. ``SIYU_SEGMENT_INDEX = False``
turns the index off (every count in SQL) for tiny installs.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import os
import threading
import time as _time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection, connections
from django.db.models import Case, F, Func, IntegerField, Max, QuerySet, Value, When

from siyu.accounts.selectors import DataScope
from siyu.commerce import selectors as commerce_selectors
from siyu.customers import selectors as customer_selectors
from siyu.groups import selectors as group_selectors
from siyu.insights import selectors as insight_selectors
from siyu.org import selectors as org_selectors
from siyu.profiles import selectors as profile_selectors
from siyu.segments import sqlcompile
from siyu.segments.grammar import RFM_CLASSES, STAGES, Cond, Group, Node

logger = logging.getLogger("siyu.segments")
NONE_T = np.iinfo(np.int64).min  # "no time"
CHUNK = 50_000  # rows a fetch: the Python objects of one chunk are the build's transient memory
DELTA_MAX = 200_000
OVERLAP_S = 60
# An append walk (items, events: by id) may pass an id whose row commits later (its transaction
# took the id before another's, and committed after it): such an id is looked for this long
# (core.paging.SETTLE), then given up (a rolled-back insert's id never comes). At most GAPS_MAX.
GAP_S = 60.0
GAPS_MAX = 200_000


class Gaps:
    """The ids an append walk passed without finding their row, each with its deadline."""

    def __init__(self) -> None:
        self.due: dict[int, float] = {}

    def note(self, old: int, new: int, seen: Sequence[int]) -> None:
        """The walk read the rows of ids (old, new]: ``seen`` are their ids."""
        if new - old <= len(seen):
            return
        missing = np.setdiff1d(np.arange(old + 1, new + 1, dtype=I64), np.asarray(seen, I64), assume_unique=True)
        deadline = _time.monotonic() + GAP_S
        room = GAPS_MAX - len(self.due)
        if len(missing) > room:
            logger.warning("segment index: %d ids not found, %d followed", len(missing), max(room, 0))
        self.due.update(dict.fromkeys(missing[: max(room, 0)].tolist(), deadline))

    def pending(self) -> list[int]:
        """The ids still looked for (the expired ones are dropped)."""
        now = _time.monotonic()
        self.due = {i: d for i, d in self.due.items() if d >= now}
        return sorted(self.due)

    def found(self, ids: Iterable[int]) -> None:
        for i in ids:
            self.due.pop(i, None)


I32 = np.int32
I64 = np.int64


class Epoch(Func):
    """Unix seconds of a datetime column (floored), on SQLite and PostgreSQL."""

    output_field = IntegerField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        template = "CAST(strftime('%%%%s', %(expressions)s) AS INTEGER)"  # %%%% survives two % passes
        return self.as_sql(compiler, connection, template=template, **extra_context)

    def as_postgresql(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        template = "FLOOR(EXTRACT(EPOCH FROM %(expressions)s))::bigint"
        return self.as_sql(compiler, connection, template=template, **extra_context)


def _epoch(dt: datetime) -> int:
    return int(dt.timestamp())


def _rows(qs: QuerySet[Any], fields: Sequence[str]) -> Iterable[list[tuple[Any, ...]]]:
    """The rows of ``qs.values_list(*fields)`` in chunks, through a plain cursor (no model
    instances, no converters: epochs and ids come back as ints)."""
    sql, params = qs.values_list(*fields).query.sql_with_params()
    # PostgreSQL: a server-side cursor (Django's chunked cursor), so this process holds a chunk at
    # a time; a plain cursor has libpq buffer the whole result first (6 M items at 1 M customers:
    # the build's peak resident memory went over 1.5 GB). SQLite steps its rows lazily either way.
    with connection.chunked_cursor() as cur:
        cur.execute(sql, params)
        while True:
            rows = cur.fetchmany(CHUNK)
            if not rows:
                return
            yield rows


def _int_columns(qs: QuerySet[Any], fields: Sequence[str], dtype: Any = I64) -> list[np.ndarray]:
    """The integer columns of ``qs`` (None as NONE_T), each as an array of ``dtype`` (one dtype,
    or one per field). Kept per column and chunk, in the final dtype, then joined column by column:
    the peak is about the result plus one column (the index build's memory, issue 17)."""
    dtypes = list(dtype) if isinstance(dtype, list | tuple) else [dtype] * len(fields)
    parts: list[list[np.ndarray]] = [[] for _f in fields]
    for rows in _rows(qs, fields):
        a = np.array([tuple(NONE_T if v is None else v for v in r) for r in rows], dtype=I64)
        a = a.reshape(-1, len(fields))
        for i, dt in enumerate(dtypes):
            parts[i].append(a[:, i].astype(dt))
        del a
    out = []
    for i, dt in enumerate(dtypes):
        out.append(np.concatenate(parts[i]) if parts[i] else np.zeros(0, dtype=dt))
        parts[i] = []
    return out


class Codes:
    """A dictionary of strings to small ints (0 = the empty string)."""

    def __init__(self) -> None:
        self.by_text: dict[str, int] = {"": 0}

    def code(self, text: str | None) -> int:
        text = text or ""
        got = self.by_text.get(text)
        if got is None:
            got = self.by_text[text] = len(self.by_text)
        return got

    def codes(self, texts: Iterable[str]) -> list[int]:
        return [c for c in (self.by_text.get(t) for t in texts) if c is not None]


def _postings(keys: np.ndarray, persons: np.ndarray) -> dict[int, np.ndarray]:
    """{key: sorted unique person ids} from parallel arrays."""
    if not len(keys):
        return {}
    order = np.lexsort((persons, keys))
    keys, persons = keys[order], persons[order]
    bounds = np.flatnonzero(np.diff(keys)) + 1
    out = {}
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(keys)], strict=True):
        out[int(keys[lo])] = np.unique(persons[lo:hi]).astype(I32)
    return out


@dataclass
class WeComPart:
    """What comes from WeCom customers, per person (rebuilt as a whole)."""

    tag: dict[int, np.ndarray] = field(default_factory=dict)
    emp_active: dict[int, np.ndarray] = field(default_factory=dict)
    emp_any: dict[int, np.ndarray] = field(default_factory=dict)
    channel: dict[str, np.ndarray] = field(default_factory=dict)
    group: dict[int, np.ndarray] = field(default_factory=dict)
    has_customer: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    any_rel: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    active_rel: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    in_group: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    first_added: np.ndarray = field(default_factory=lambda: np.zeros(0, I64))
    watermark: tuple[Any, ...] = ()
    size: int = 0


T0 = 946_684_800  # 2000-01-01 UTC: item and event times are int32 seconds from it


def _rel(t: np.ndarray | int) -> Any:
    """Seconds since T0 as int32 (clipped to its range: 1932–2068); one temporary, clipped in place."""
    x = np.asarray(t, I64) - T0
    if not isinstance(x, np.ndarray) or x.ndim == 0:  # one time
        return np.clip(x, -(2**31) + 1, 2**31 - 1).astype(I32)
    np.clip(x, -(2**31) + 1, 2**31 - 1, out=x)
    return x.astype(I32)


_malloc_tuned = False


def _tune_malloc() -> None:
    """glibc: a fixed mmap threshold (128 KB), so the arrays of a build's chunks, once freed, go
    back to the system. By default glibc raises the threshold after the first large frees, and
    later chunks then come from the heap, which keeps the memory: at 1 M customers that was about
    100 MB more at the build's peak, and after it. Other C libraries: nothing to do."""
    global _malloc_tuned
    if _malloc_tuned:
        return
    _malloc_tuned = True
    if (libc := _glibc()) is not None:
        libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD


class KeyedTimes:
    """Rows sorted by (key, time) with their profile (and an optional extra column), plus an
    unsorted delta of recent rows. ``select(keys, since)`` answers the matching rows' profiles.
    Times are int32 seconds from ``T0``; each key's rows are one range (``bounds``)."""

    def __init__(self, keys: np.ndarray, times: np.ndarray, profiles: np.ndarray, extra: np.ndarray | None = None):
        # each column taken through the sort order in turn (no second copy when already int32):
        # the index build's peak memory at millions of items (issue 17)
        order = np.lexsort((times, keys))
        sorted_keys = keys[order]
        self.times = _rel(times[order])
        self.profiles = profiles[order].astype(I32, copy=False)
        self.extra = None if extra is None else extra[order].astype(I32, copy=False)
        del order
        self.bounds: dict[int, tuple[int, int]] = {}
        if len(sorted_keys):
            cuts = np.flatnonzero(np.diff(sorted_keys)) + 1
            starts, ends = np.r_[0, cuts], np.r_[cuts, len(sorted_keys)]
            for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
                self.bounds[int(sorted_keys[lo])] = (lo, hi)
        del sorted_keys
        self.d_keys: list[int] = []
        self.d_times: list[int] = []
        self.d_profiles: list[int] = []
        self.d_extra: list[int] = []
        self.dead: set[int] = set()  # extras (order ids) whose sorted rows are void

    def add(self, key: int, t: int, profile: int, extra: int = 0) -> None:
        self.d_keys.append(key)
        self.d_times.append(t)
        self.d_profiles.append(profile)
        self.d_extra.append(extra)

    def compact(self) -> None:
        if len(self.d_keys) < DELTA_MAX:
            return
        keys = np.zeros(len(self.times), I64)
        for k, (lo, hi) in self.bounds.items():
            keys[lo:hi] = k
        live = slice(None)
        if self.dead and self.extra is not None:
            live = ~np.isin(self.extra, np.fromiter(self.dead, I64))  # type: ignore[assignment]
        keys = np.concatenate([keys[live], np.array(self.d_keys, I64)])
        times = np.concatenate([self.times[live].astype(I64) + T0, np.array(self.d_times, I64)])
        profiles = np.concatenate([self.profiles[live], np.array(self.d_profiles, I32)])
        extra = None if self.extra is None else np.concatenate([self.extra[live], np.array(self.d_extra, I32)])
        self.__init__(keys, times, profiles, extra)  # type: ignore[misc]

    def drop_extra(self, extras: np.ndarray) -> None:
        """Void the rows whose extra column is one of ``extras`` (an order's items, rewritten): the
        delta's at once, the sorted rows' by a set ``select`` skips (removed at the next compaction)."""
        if self.extra is None or not len(extras):
            return
        if self.d_keys:
            keep = ~np.isin(np.array(self.d_extra, I64), extras)
            for name in ("d_keys", "d_times", "d_profiles", "d_extra"):
                setattr(self, name, np.array(getattr(self, name), I64)[keep].tolist())
        self.dead.update(int(x) for x in extras)

    def select(self, keys: Iterable[int], since: int | None) -> tuple[np.ndarray, np.ndarray | None]:
        """(profiles, extra) of the rows with one of ``keys`` and time ≥ ``since`` (unix s)."""
        keys = sorted(set(keys))
        profiles, extras = [], []
        rel_since = None if since is None else int(_rel(since))
        dead = np.fromiter(self.dead, I64) if self.dead and self.extra is not None else None
        for k in keys:
            lo, hi = self.bounds.get(k, (0, 0))
            if rel_since is not None and hi > lo:
                lo += int(np.searchsorted(self.times[lo:hi], rel_since, "left"))
            if dead is not None and self.extra is not None:
                live = ~np.isin(self.extra[lo:hi], dead)
                profiles.append(self.profiles[lo:hi][live])
                extras.append(self.extra[lo:hi][live])
                continue
            profiles.append(self.profiles[lo:hi])
            if self.extra is not None:
                extras.append(self.extra[lo:hi])
        if self.d_keys:
            dk, dt = np.array(self.d_keys, I64), np.array(self.d_times, I64)
            sel = np.isin(dk, keys)
            if since is not None:
                sel &= dt >= since
            profiles.append(np.array(self.d_profiles, I32)[sel])
            if self.extra is not None:
                extras.append(np.array(self.d_extra, I32)[sel])
        p = np.concatenate(profiles) if profiles else np.zeros(0, I32)
        if self.extra is None:
            return p, None
        return p, (np.concatenate(extras) if extras else np.zeros(0, I32))

    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.times, self.profiles) + (() if self.extra is None else (self.extra,)))


class Index:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.generation = 0
        self.cache: dict[Any, Any] = {}
        self.checked_at = 0.0
        self.built_at = 0.0
        self.rebuilding = False
        self.wecom_checked = 0.0
        self.levels, self.stores, self.bands = Codes(), Codes(), Codes()
        self.skus, self.categories, self.brands = Codes(), Codes(), Codes()
        self.size: int = 0
        self.root: np.ndarray = np.zeros(0, I32)
        self.live: np.ndarray = np.zeros(0, bool)
        self.exists: np.ndarray = np.zeros(0, bool)
        self._empty_profiles(0)

    # --- building ----------------------------------------------------------------------------
    def build(self) -> Index:
        _tune_malloc()
        with self.lock, _reads_without_mmap():
            started = _time.monotonic()
            self._watermarks = self._read_watermarks()
            self._build_profiles()
            self._build_metrics()
            self._build_orders()
            self._build_items()
            self._build_events()
            self.wecom = self._build_wecom()
            self.wecom_checked = _time.monotonic()
            self.built_at = _time.monotonic()
            self.checked_at = _time.time()
            self.generation += 1
            self.cache.clear()
            self.warm_caches()
            _give_back_memory()
            logger.info("segment index built in %.1f s (%d MB)", _time.monotonic() - started, self.nbytes() >> 20)
        return self

    def _grow(self, size: int) -> None:
        """Make the per-profile arrays hold ids below ``size``."""
        if size <= self.size:
            return
        size = max(size, int(self.size * 1.25) + 1024)
        old = self.size

        def grown(a: np.ndarray, fill: Any) -> np.ndarray:
            b = np.full(size, fill, dtype=a.dtype)
            b[:old] = a[:old]
            return b

        self.root = grown(self.root, 0)
        self.root[old:] = np.arange(old, size, dtype=I32)
        self.live = grown(self.live, False)
        self.exists = grown(self.exists, False)
        for name, fill in self._profile_fills() + self._metric_fills():
            setattr(self, name, grown(getattr(self, name), fill))
        w = getattr(self, "wecom", None)
        if w is not None and w.size < size:
            keep = w.size
            for name in ("has_customer", "any_rel", "active_rel", "in_group"):
                b = np.zeros(size, bool)
                b[:keep] = getattr(w, name)[:keep]
                setattr(w, name, b)
            fa = np.full(size, np.iinfo(I64).max, I64)
            fa[:keep] = w.first_added[:keep]
            w.first_added, w.size = fa, size
        self.size = size

    @staticmethod
    def _profile_fills() -> list[tuple[str, Any]]:
        return [
            ("gender", 0),
            ("points", 0),
            ("bday", -1),
            ("bday_mmdd", 0),
            ("joined", NONE_T),
            ("level", 0),
            ("store", 0),
        ]

    @staticmethod
    def _metric_fills() -> list[tuple[str, Any]]:
        return [("m_r", 0), ("m_f", 0), ("m_m", 0), ("m_class", 0), ("m_stage", 0), ("m_band", 0), ("m_score", 0)]

    def _empty_profiles(self, size: int) -> None:
        self.size = size
        self.root = np.arange(size, dtype=I32)
        self.live = np.zeros(size, bool)
        self.exists = np.zeros(size, bool)
        self.gender = np.zeros(size, np.int8)
        self.points = np.zeros(size, I64)
        self.bday = np.full(size, -1, I32)
        self.bday_mmdd = np.zeros(size, np.int16)
        self.joined = np.full(size, NONE_T, I64)
        self.level = np.zeros(size, I32)
        self.store = np.zeros(size, I32)
        self.m_r = np.zeros(size, np.int8)
        self.m_f = np.zeros(size, np.int8)
        self.m_m = np.zeros(size, np.int8)
        self.m_class = np.zeros(size, np.int8)
        self.m_stage = np.zeros(size, np.int8)  # index into STAGES; 0 = prospect (the default)
        self.m_band = np.zeros(size, I32)
        self.m_score = np.zeros(size, np.int16)

    def _profile_rows(self, qs: QuerySet[Any]) -> int:
        """Load profile rows (all, or the changed ones); answers how many."""
        qs = qs.annotate(
            t_joined=Epoch("member_joined_at"), merged=F("merged_into_id"), level_text=F("member_level")
        ).order_by()
        fields = ("id", "merged", "gender", "points", "birthday", "t_joined", "level_text", "join_store")
        n = 0
        for rows in _rows(qs, fields):
            ids = np.array([r[0] for r in rows], I64)
            self._grow(int(ids.max()) + 1)
            merged = [r[1] for r in rows]
            self.root[ids] = np.array(
                [m if m is not None else i for i, m in zip(ids.tolist(), merged, strict=True)], I32
            )
            self.live[ids] = np.array([m is None for m in merged], bool)
            self.exists[ids] = True
            self.gender[ids] = np.array([r[2] for r in rows], np.int8)
            self.points[ids] = np.array([r[3] for r in rows], I64)
            bdays = [_as_date(r[4]) for r in rows]
            self.bday[ids] = np.array([d.toordinal() if d else -1 for d in bdays], I32)
            self.bday_mmdd[ids] = np.array([d.month * 100 + d.day if d else 0 for d in bdays], np.int16)
            self.joined[ids] = np.array([NONE_T if r[5] is None else r[5] for r in rows], I64)
            self.level[ids] = np.array([self.levels.code(r[6]) for r in rows], I32)
            self.store[ids] = np.array([self.stores.code(r[7]) for r in rows], I32)
            n += len(rows)
        return n

    def _build_profiles(self) -> None:
        top = profile_selectors.all_profiles().aggregate(m=Max("id"))["m"] or 0
        self._empty_profiles(top + 1024)
        self._profile_rows(profile_selectors.all_profiles())

    def _metric_rows(self, qs: QuerySet[Any]) -> None:
        stages = {s: i for i, s in enumerate(STAGES)}
        classes = {c: i + 1 for i, c in enumerate(RFM_CLASSES)}
        fields = ("profile_id", "r", "f", "m", "rfm_class", "stage", "value_band", "value_score")
        for rows in _rows(qs.order_by(), fields):
            ids = np.array([r[0] for r in rows], I64)
            self._grow(int(ids.max()) + 1)
            self.m_r[ids] = np.array([r[1] for r in rows], np.int8)
            self.m_f[ids] = np.array([r[2] for r in rows], np.int8)
            self.m_m[ids] = np.array([r[3] for r in rows], np.int8)
            self.m_class[ids] = np.array([classes.get(r[4], 0) for r in rows], np.int8)
            self.m_stage[ids] = np.array([stages.get(r[5], -1) for r in rows], np.int8)
            self.m_band[ids] = np.array([self.bands.code(r[6]) for r in rows], I32)
            self.m_score[ids] = np.array([r[7] for r in rows], np.int16)

    def _build_metrics(self) -> None:
        self._metric_rows(insight_selectors.metrics())

    def _order_qs(self) -> QuerySet[Any]:
        return (
            commerce_selectors.orders()
            .annotate(t=Epoch("paid_at"), cents=sqlcompile.order_cents(), refunded=_is_refunded())
            .order_by()
        )

    def _build_orders(self) -> None:
        oid, prof, t, cents, refunded = _int_columns(
            self._order_qs(), ("id", "profile_id", "t", "cents", "refunded"), [I32, I32, I64, I64, I64]
        )
        order = np.argsort(t, kind="stable")
        self.o_id = oid[order]
        del oid
        self.o_profile = prof[order]
        del prof
        self.o_time = t[order]
        del t
        self.o_cents = cents[order]
        del cents
        self.o_valid = refunded[order] == 0
        del refunded, order
        self.o_by_id = np.argsort(self.o_id).astype(I32)
        self.o_delta: dict[int, int] = {}  # order id -> position, for orders appended since
        self.d_orders: dict[str, list[int]] = {"id": [], "profile": [], "t": [], "cents": [], "valid": []}
        # order id -> (its updated_at as last applied, when): orders seen in the last minutes
        self.o_seen: dict[int, tuple[Any, float]] = {}

    def _build_items(self) -> None:
        items = commerce_selectors.order_items().filter(id__lte=self._watermarks["item_id"])
        items = items.exclude(order__status=commerce_selectors.ORDER_REFUNDED).annotate(t=Epoch("paid_at")).order_by()
        parts: dict[str, list[np.ndarray]] = {k: [] for k in ("oid", "prof", "t", "sku", "cat", "brand")}
        for rows in _rows(items, ("order_id", "profile_id", "t", "sku", "category", "brand")):
            parts["oid"].append(np.array([r[0] for r in rows], I32))
            parts["prof"].append(np.array([r[1] for r in rows], I32))
            parts["t"].append(np.array([r[2] for r in rows], I64))
            parts["sku"].append(np.array([self.skus.code(r[3]) for r in rows], I32))
            parts["cat"].append(np.array([self.categories.code(r[4]) for r in rows], I32))
            parts["brand"].append(np.array([self.brands.code(r[5]) for r in rows], I32))
        cols = {}
        for k in list(parts):  # column by column, each column's chunks let go as it is joined
            v = parts.pop(k)
            cols[k] = np.concatenate(v) if v else np.zeros(0, I64 if k == "t" else I32)
            del v
        self.bought = {
            dim: KeyedTimes(cols[key], cols["t"], cols["prof"], cols["oid"])
            for dim, key in (("sku", "sku"), ("category", "cat"), ("brand", "brand"))
        }
        self.item_gaps = Gaps()

    def _build_events(self) -> None:
        events = commerce_selectors.events().filter(id__lte=self._watermarks["event_id"])
        tid, prof, t = _int_columns(events.annotate(t=Epoch("at")).order_by(), ("type_id", "profile_id", "t"))
        self.events = KeyedTimes(tid, t, prof)
        self.event_gaps = Gaps()

    def _build_wecom(self) -> WeComPart:
        size = self.size
        part = WeComPart(size=size)
        cust, person = _int_columns(profile_selectors.customer_persons().order_by(), ("customer_id", "person"))
        # customer id -> person (dense array over customer ids)
        top = int(cust.max()) + 1 if len(cust) else 1
        of = np.full(top, -1, I64)
        of[cust] = person

        def persons(customers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            ok = customers < top
            p = np.full(len(customers), -1, I64)
            p[ok] = of[customers[ok]]
            keep = p >= 0
            return p[keep], keep

        part.has_customer = np.zeros(size, bool)
        part.has_customer[person[person < size]] = True
        rel = customer_selectors.follow_relations().annotate(t=Epoch("added_at"), active=_is_active()).order_by()
        state_codes = Codes()
        parts: list[np.ndarray] = []
        for rows in _rows(rel, ("customer_id", "employee_id", "t", "active", "state")):
            parts.append(np.array([(c, e, t, a, state_codes.code(st)) for c, e, t, a, st in rows], I64).reshape(-1, 5))
        cols = np.concatenate(parts) if parts else np.zeros((0, 5), I64)
        r_cust, r_emp, r_t, r_active, r_state = (cols[:, i] for i in range(5))
        r_person, keep = persons(r_cust)
        r_emp, r_t, r_active, r_state = r_emp[keep], r_t[keep], r_active[keep], r_state[keep]
        part.any_rel = np.zeros(size, bool)
        part.any_rel[r_person] = True
        part.active_rel = np.zeros(size, bool)
        part.active_rel[r_person[r_active == 1]] = True
        part.first_added = np.full(size, np.iinfo(I64).max, I64)
        np.minimum.at(part.first_added, r_person, r_t)
        part.emp_any = _postings(r_emp, r_person)
        part.emp_active = _postings(r_emp[r_active == 1], r_person[r_active == 1])
        by_code = _postings(r_state, r_person)
        part.channel = {text: by_code[c] for text, c in state_codes.by_text.items() if c in by_code}
        t_cust, t_tag = _int_columns(customer_selectors.follow_tags().order_by(), ("customer_id", "tag_id"))
        t_person, keep = persons(t_cust)
        part.tag = _postings(t_tag[keep], t_person)
        g_cust, g_group = _int_columns(group_selectors.current_customer_stays().order_by(), ("customer_id", "group_id"))
        g_person, keep = persons(g_cust)
        part.group = _postings(g_group[keep], g_person)
        part.in_group = np.zeros(size, bool)
        part.in_group[g_person] = True
        part.watermark = self._wecom_watermark()
        return part

    # --- freshness ------------------------------------------------------------------------------
    def _wecom_watermark(self) -> tuple[Any, ...]:
        """Index reads only: new relations, tags, stays and keys by max id; changed customers
        (a relation lost changes its customer) by ``Customer.updated_at``; tags taken off and group
        stays ended by the timeline's newest entry and the corp tags' latest change; merges by
        the pairs."""
        return (
            customer_selectors.follow_relations().aggregate(m=Max("id"))["m"],
            customer_selectors.customers_changed_at(),
            customer_selectors.wecom_change_marks(),
            customer_selectors.follow_tags().aggregate(m=Max("id"))["m"],
            group_selectors.max_member_id(),
            profile_selectors.max_key_id(),
            tuple(self._merged_pairs()),
        )

    def _merged_pairs(self) -> list[tuple[int, int]]:
        qs = profile_selectors.all_profiles().filter(merged_into__isnull=False).order_by("id")
        return list(qs.values_list("id", "merged_into_id"))

    def _read_watermarks(self) -> dict[str, Any]:
        return {
            "order_id": commerce_selectors.orders().aggregate(m=Max("id"))["m"] or 0,
            "order_updated": commerce_selectors.orders().aggregate(m=Max("updated_at"))["m"],
            "item_id": commerce_selectors.order_items().aggregate(m=Max("id"))["m"] or 0,
            "event_id": commerce_selectors.events().aggregate(m=Max("id"))["m"] or 0,
            "profile_updated": profile_selectors.all_profiles().aggregate(m=Max("updated_at"))["m"],
            "profile_id": profile_selectors.all_profiles().aggregate(m=Max("id"))["m"] or 0,
            "metrics": insight_selectors.metrics().aggregate(m=Max("computed_at"))["m"],
        }

    def refresh(self, *, background: bool | None = None) -> bool:
        """Bring the index up to date with the database (see the module's docstring); answers
        whether anything changed."""
        if background is None:
            background = getattr(settings, "SIYU_SEGMENT_INDEX_BACKGROUND", True)
        rebuild_s = getattr(settings, "SIYU_SEGMENT_INDEX_REBUILD_S", 600)
        if rebuild_s and _time.monotonic() - self.built_at > rebuild_s and not self.rebuilding:
            self._rebuild_all(background)
        with self.lock:
            self.checked_at = _time.time()
            marks = self._read_watermarks()
            changed = self._apply_appends(marks)
            wecom_s = getattr(settings, "SIYU_SEGMENT_INDEX_WECOM_CHECK_S", 10.0)
            if _time.monotonic() - self.wecom_checked >= wecom_s:
                self.wecom_checked = _time.monotonic()
                if self._wecom_watermark() != self.wecom.watermark:
                    self._rebuild_wecom(background)
            if changed:
                self.generation += 1
                self.cache.clear()
                self.warm_caches()
            return changed

    def _rebuild_all(self, background: bool) -> None:
        def run() -> None:
            try:
                fresh = Index().build()
                _install(fresh)
            finally:
                self.rebuilding = False
                if background:
                    connections.close_all()  # this thread's own connections

        self.rebuilding = True
        if background:
            threading.Thread(target=run, name="segment-index-rebuild", daemon=True).start()
        else:
            run()

    def _rebuild_wecom(self, background: bool) -> None:
        def run() -> None:
            try:
                with self.lock:
                    merged = dict(self._merged_pairs())
                    self.root = np.arange(self.size, dtype=I32)
                    self.live[self.exists] = True
                    if merged:
                        ids = np.fromiter(merged.keys(), I64)
                        self.root[ids] = np.fromiter(merged.values(), I64).astype(I32)
                        self.live[ids] = False
                part = self._build_wecom()
                with self.lock:
                    self.wecom = part
                    self.generation += 1
                    self.cache.clear()
                    self.warm_caches()
            finally:
                self.rebuilding = False
                if background:
                    connections.close_all()  # this thread's own connections

        if self.rebuilding:
            return
        self.rebuilding = True
        if background:
            threading.Thread(target=run, name="segment-index-wecom", daemon=True).start()
        else:
            run()

    def _apply_appends(self, marks: dict[str, Any]) -> bool:
        old = self._watermarks
        changed = False
        if marks["profile_id"] != old["profile_id"] or marks["profile_updated"] != old["profile_updated"]:
            qs = profile_selectors.all_profiles()
            if old["profile_updated"] is not None:
                since = old["profile_updated"] - timedelta(seconds=OVERLAP_S)
                qs = qs.filter(updated_at__gte=since) | qs.filter(id__gt=old["profile_id"])
            changed |= self._profile_rows(qs) > 0
        if marks["metrics"] != old["metrics"]:
            metrics = insight_selectors.metrics()
            if old["metrics"] is not None:
                metrics = metrics.filter(computed_at__gte=old["metrics"] - timedelta(seconds=OVERLAP_S))
            self._metric_rows(metrics)
            changed = True
        rewritten: set[int] = set()
        if marks["order_id"] != old["order_id"] or marks["order_updated"] != old["order_updated"]:
            qs = self._order_qs().filter(id__gt=old["order_id"])
            if old["order_updated"] is not None:
                since = old["order_updated"] - timedelta(seconds=OVERLAP_S)
                qs = qs | self._order_qs().filter(updated_at__gte=since)
            changed |= self._apply_orders(qs, rewritten)
            self._compact_orders()
        items = commerce_selectors.order_items()
        changed |= self._append(self.item_gaps, items, old["item_id"], marks["item_id"], self._add_items)
        if rewritten:
            # a changed order's items were replaced (commerce writes them anew): its rows go, and
            # its items now are read again (none while it is fully refunded)
            gone = np.fromiter(rewritten, I64)
            for kt in self.bought.values():
                kt.drop_extra(gone)
            ids = sorted(rewritten)
            for i in range(0, len(ids), 5000):
                part = commerce_selectors.order_items().filter(order_id__in=ids[i : i + 5000])
                part = part.exclude(order__status=commerce_selectors.ORDER_REFUNDED)
                self._add_items(part)
            changed = True
        for kt in self.bought.values():
            kt.compact()
        events = commerce_selectors.events()
        changed |= self._append(self.event_gaps, events, old["event_id"], marks["event_id"], self._add_events)
        self.events.compact()
        self._grow(int(marks["profile_id"]) + 1)
        self._watermarks = marks
        return changed

    def _append(
        self, gaps: Gaps, source: QuerySet[Any], old: int, new: int, add: Callable[[QuerySet[Any]], list[int]]
    ) -> bool:
        """An append walk by id (items, events): the rows of ids (old, new] added, the ids it
        passed without their row noted, and those noted before looked for again. Answers whether
        anything was added."""
        late = gaps.pending()
        changed = False
        if new != old:
            gaps.note(old, new, add(source.filter(id__gt=old, id__lte=new)))
            changed = True
        for i in range(0, len(late), 5000):
            found = add(source.filter(id__in=late[i : i + 5000]))
            gaps.found(found)
            changed |= bool(found)
        return changed

    def _add_items(self, items: QuerySet[Any]) -> list[int]:
        """Add these items; their ids."""
        ids: list[int] = []
        items = items.annotate(t=Epoch("paid_at")).order_by("id")
        for rows in _rows(items, ("id", "order_id", "profile_id", "t", "sku", "category", "brand")):
            for iid, oid, prof, t, sku, cat, brand in rows:
                self.bought["sku"].add(self.skus.code(sku), t, prof, oid)
                self.bought["category"].add(self.categories.code(cat), t, prof, oid)
                self.bought["brand"].add(self.brands.code(brand), t, prof, oid)
                ids.append(iid)
        return ids

    def _add_events(self, events: QuerySet[Any]) -> list[int]:
        """Add these events; their ids."""
        ids: list[int] = []
        for rows in _rows(events.annotate(t=Epoch("at")).order_by("id"), ("id", "type_id", "profile_id", "t")):
            for eid, tid, prof, t in rows:
                self.events.add(tid, t, prof)
                ids.append(eid)
        return ids

    def _apply_orders(self, qs: QuerySet[Any], rewritten: set[int]) -> bool:
        """Apply new and changed orders; the ids of orders written again since they were last seen
        (their ``updated_at`` moved: items replaced) go to ``rewritten``. The re-read overlap
        brings the same rows again: ``o_seen`` remembers the ``updated_at`` last applied."""
        changed = False
        now = _time.monotonic()
        # forgotten after a while: an order re-read later counts as rewritten (work, never a wrong count)
        self.o_seen = {k: v for k, v in self.o_seen.items() if v[1] >= now - 2 * OVERLAP_S}
        for rows in _rows(qs, ("id", "profile_id", "t", "cents", "refunded", "updated_at")):
            for oid, prof, t, cents, refunded, u in rows:
                pos = self._order_pos(oid)
                valid = not refunded
                seen = self.o_seen.get(oid)
                self.o_seen[oid] = (u, now)  # u as the driver reads it: compared, never computed with
                if pos is not None and (seen is None or seen[0] != u):
                    rewritten.add(oid)
                if pos is None:
                    d = self.d_orders
                    self.o_delta[oid] = len(d["id"])
                    for k, v in (("id", oid), ("profile", prof), ("t", t), ("cents", cents), ("valid", int(valid))):
                        d[k].append(v)
                    changed = True
                    continue
                kind, i = pos
                if kind == "main":
                    was = (int(self.o_cents[i]), bool(self.o_valid[i]))
                    self.o_cents[i], self.o_valid[i] = cents, valid
                else:
                    was = (self.d_orders["cents"][i], bool(self.d_orders["valid"][i]))
                    self.d_orders["cents"][i], self.d_orders["valid"][i] = cents, int(valid)
                if was != (cents, valid):
                    changed = True
                    if was[1] != valid:  # refunded in full (its items go) or valid again (they come back)
                        rewritten.add(oid)
        return changed

    def _compact_orders(self) -> None:
        d = self.d_orders
        if len(d["id"]) < DELTA_MAX:
            return
        oid = np.concatenate([self.o_id, np.array(d["id"], I32)])
        prof = np.concatenate([self.o_profile, np.array(d["profile"], I32)])
        t = np.concatenate([self.o_time, np.array(d["t"], I64)])
        cents = np.concatenate([self.o_cents, np.array(d["cents"], I64)])
        valid = np.concatenate([self.o_valid, np.array(d["valid"], bool)])
        order = np.argsort(t, kind="stable")
        self.o_id, self.o_profile, self.o_time = oid[order], prof[order], t[order]
        self.o_cents, self.o_valid = cents[order], valid[order]
        self.o_by_id = np.argsort(self.o_id).astype(I32)
        self.o_delta = {}
        self.d_orders = {"id": [], "profile": [], "t": [], "cents": [], "valid": []}

    def _order_pos(self, oid: int) -> tuple[str, int] | None:
        if oid in self.o_delta:
            return "delta", self.o_delta[oid]
        j = int(np.searchsorted(self.o_id, oid, sorter=self.o_by_id))
        if j < len(self.o_id) and self.o_id[self.o_by_id[j]] == oid:
            return "main", int(self.o_by_id[j])
        return None

    def maybe_refresh(self) -> None:
        interval = getattr(settings, "SIYU_SEGMENT_INDEX_CHECK_S", 1.0)
        if _time.time() - self.checked_at >= interval:
            self.refresh()

    # --- evaluating -------------------------------------------------------------------------------
    def universe(self, scope: DataScope) -> np.ndarray:
        if scope.nothing:
            return np.zeros(self.size, bool)
        employees = org_selectors.employee_ids_for_scope(scope)
        if employees is None:
            return self.live
        return self.live & self._mask_of(self.wecom.emp_any, employees)

    def _mask(self, persons: np.ndarray) -> np.ndarray:
        m = np.zeros(self.size, bool)
        if len(persons):
            m[persons] = True
        return m

    def _mask_of(self, postings: dict[Any, np.ndarray], keys: Iterable[Any]) -> np.ndarray:
        arrays = [postings[k] for k in keys if k in postings]
        if not arrays:
            return np.zeros(self.size, bool)
        return self._mask(np.concatenate(arrays) if len(arrays) > 1 else arrays[0])

    def evaluate(self, node: Node, now: datetime) -> np.ndarray:
        if isinstance(node, Cond):
            m = self._cond(node, now)
            return ~m if node.negate else m
        assert isinstance(node, Group)
        if node.op == "and":
            m = np.ones(self.size, bool)
            for item in node.items:
                m &= self.evaluate(item, now)
        else:
            m = np.zeros(self.size, bool)
            for item in node.items:
                m |= self.evaluate(item, now)
        return ~m if node.negate else m

    def warm_caches(self) -> None:
        """Compute the per-generation caches now rather than in the first count after a change."""
        self._order_persons()
        self._last_order()
        self._per_person("order_count", None)
        self._per_person("amount_spent", None)

    def _order_persons(self) -> np.ndarray:
        """Each sorted order's person, or ``size`` (a slot no person has) when the order is not
        valid (fully refunded): counts and sums are then one bincount of a slice."""
        got = self.cache.get("o_pv")
        if got is None:
            prof = self.o_profile
            ok = self.o_valid & (prof < self.size)
            got = np.full(len(prof), self.size, I32)
            got[ok] = self.root[prof[ok]]
            self.cache["o_pv"] = got
        return got

    def _delta_orders(self, since: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(persons, cents, times) of the valid orders appended since the load."""
        d = self.d_orders
        if not d["id"]:
            return np.zeros(0, I32), np.zeros(0, I64), np.zeros(0, I64)
        dt, dv = np.array(d["t"], I64), np.array(d["valid"], bool)
        prof = np.array(d["profile"], I32)
        sel = dv & (prof < self.size)
        if since is not None:
            sel &= dt >= since
        return self.root[prof[sel]], np.array(d["cents"], I64)[sel], dt[sel]

    def _per_person(self, f: str, since: int | None) -> np.ndarray:
        key = (f, since)
        got = self.cache.get(key)
        if got is None:
            lo = 0 if since is None else int(np.searchsorted(self.o_time, since, "left"))
            persons = self._order_persons()[lo:]
            dp, dc, _dt = self._delta_orders(since)
            if f == "order_count":
                got = np.bincount(persons, minlength=self.size + 1)[: self.size]
                np.add.at(got, dp, 1)
            else:
                sums = np.bincount(persons, weights=self.o_cents[lo:], minlength=self.size + 1)[: self.size]
                got = sums.round().astype(I64)
                np.add.at(got, dp, dc)
            if since is None:
                self.cache[key] = got
        return got

    def _last_order(self) -> np.ndarray:
        got = self.cache.get("last_order")
        if got is None:
            ext = np.full(self.size + 1, NONE_T, I64)
            np.maximum.at(ext, self._order_persons(), self.o_time)
            got = ext[: self.size]
            dp, _dc, dt = self._delta_orders(None)
            np.maximum.at(got, dp, dt)
            self.cache["last_order"] = got
        return got

    def _cond(self, c: Cond, now: datetime) -> np.ndarray:  # noqa: C901 - one branch per field of the grammar
        f, op, v = c.field, c.op, c.value
        w = self.wecom
        since = _epoch(now - timedelta(days=c.days)) if c.days else None
        if f == "tag":
            if op == "all":
                m = np.ones(self.size, bool)
                for t in v:
                    m &= self._mask_of(w.tag, [t])
                return m
            m = self._mask_of(w.tag, v)
            return ~m if op == "none" else m
        if f in ("employee", "department"):
            employees = (
                set(v) if f == "employee" else set().union(*(org_selectors.employee_ids_in_subtree(d) for d in v))
            )
            m = self._mask_of(w.emp_active, employees)
            return ~m if op == "none" else m
        if f == "channel":
            m = self._mask_of(w.channel, v)
            return ~m if op == "none" else m
        if f == "group":
            m = self._mask_of(w.group, v) if v else w.in_group.copy()
            return ~m if op == "none" else m
        if f == "relation":
            if v == "active":
                return w.active_rel.copy()
            if v == "lost":
                return w.any_rel & ~w.active_rel
            return ~w.has_customer
        if f == "added_at":
            if op == "within_days":
                lo, hi = _epoch(now - timedelta(days=v)), None
            else:
                lo = _epoch(sqlcompile.day_start(v[0]))
                hi = _epoch(sqlcompile.day_start(v[1] + timedelta(days=1)))
            m = w.first_added >= lo
            if hi is not None:
                m &= w.first_added < hi
            return m & w.any_rel
        if f.startswith("profile."):
            return self._profile_cond(f[len("profile.") :], op, v, now)
        if f.startswith("custom."):
            bare = Cond(field=f, op=op, value=v, custom_type=c.custom_type)
            ids = np.fromiter(
                profile_selectors.all_profiles().filter(sqlcompile.cond_q(bare, now)).values_list("id", flat=True), I64
            )
            return self._mask(ids[ids < self.size])
        if f == "rfm_class":
            classes = [RFM_CLASSES.index(x) + 1 for x in v]
            return _among(self.m_class, classes)
        if f in ("rfm.r", "rfm.f", "rfm.m"):
            return _among(getattr(self, "m_" + f[-1]), list(v))
        if f == "stage":
            return _among(self.m_stage, [STAGES.index(x) for x in v])
        if f == "value_band":
            return _among(self.m_band, self.bands.codes(v))
        if f == "value_score":
            return _range_mask(self.m_score, op, v)
        if f == "bought":
            codes = {"sku": self.skus, "category": self.categories, "brand": self.brands}[op].codes(v)
            prof, _oids = self.bought[op].select(codes, since)
            return self._mask(self.root[prof[prof < self.size]])
        if f in ("order_count", "amount_spent"):
            return _range_mask(self._per_person(f, since), op, v)
        if f == "last_order_at":
            last = self._last_order()
            if op == "within_days":
                return last >= _epoch(now - timedelta(days=v))
            if op == "before_days":
                return (last != NONE_T) & (last < _epoch(now - timedelta(days=v)))
            lo = _epoch(sqlcompile.day_start(v[0]))
            hi = _epoch(sqlcompile.day_start(v[1] + timedelta(days=1)))
            return (last >= lo) & (last < hi)
        if f == "event":
            type_id = self._event_type(c.type)
            if type_id is None:
                counts = np.zeros(self.size, I64)
            else:
                prof, _x = self.events.select([type_id], since)
                counts = np.bincount(self.root[prof[prof < self.size]], minlength=self.size)
            return _range_mask(counts, op, v)
        raise ValueError(f"unknown field {f}")  # pragma: no cover

    def _event_type(self, code: str) -> int | None:
        types = self.cache.get("event_types")
        if types is None or code not in types:
            types = self.cache["event_types"] = commerce_selectors.event_type_ids()
        return types.get(code)

    def _profile_cond(self, name: str, op: str, v: Any, now: datetime) -> np.ndarray:
        if name == "member_level":
            return _among(self.level, self.levels.codes(v))
        if name == "join_store":
            return _among(self.store, self.stores.codes(v))
        if name == "gender":
            return _among(self.gender, list(v))
        if name == "points":
            return _range_mask(self.points, op, v)
        if name == "birthday":
            if op == "is_set":
                return (self.bday >= 0) == v
            if op == "birthday_within_days":
                return _among(self.bday_mmdd, sorted(sqlcompile.birthday_days(now, v)))
            return (self.bday >= v[0].toordinal()) & (self.bday <= v[1].toordinal())
        if op == "is_set":
            return (self.joined != NONE_T) == v
        lo = _epoch(sqlcompile.day_start(v[0]))
        hi = _epoch(sqlcompile.day_start(v[1] + timedelta(days=1)))
        return (self.joined >= lo) & (self.joined < hi)

    # --- answers ------------------------------------------------------------------------------------
    def matching(self, node: Node, scope: DataScope, now: datetime) -> np.ndarray:
        with self.lock:
            return self.evaluate(node, now) & self.universe(scope)

    def count(self, node: Node, scope: DataScope, now: datetime) -> int:
        return int(np.count_nonzero(self.matching(node, scope, now)))

    def person_ids(
        self, node: Node, scope: DataScope, now: datetime, *, after: int | None = None, limit: int | None = None
    ) -> list[int]:
        m = self.matching(node, scope, now)
        if after is not None:
            m[: min(after + 1, self.size)] = False
        ids = np.flatnonzero(m)
        if limit is not None:
            ids = ids[:limit]
        return [int(i) for i in ids]

    def nbytes(self) -> int:
        total = 0
        for value in vars(self).values():
            if isinstance(value, np.ndarray):
                total += value.nbytes
        total += sum(kt.nbytes() for kt in self.bought.values()) + self.events.nbytes()
        w = self.wecom
        for postings in (w.tag, w.emp_active, w.emp_any, w.channel, w.group):
            total += sum(a.nbytes for a in postings.values())
        return total


def _among(codes: np.ndarray, wanted: Iterable[int]) -> np.ndarray:
    """``codes`` (small non-negative ints, -1 = none) in ``wanted``, by a lookup table (a gather,
    much faster than ``np.isin`` on a million rows)."""
    wanted = [int(w) for w in wanted if int(w) >= 0]
    top = int(codes.max()) + 1 if len(codes) else 1
    lut = np.zeros(max(top, max(wanted, default=0) + 1) + 1, bool)
    lut[wanted] = True
    return lut[codes]


def _range_mask(values: np.ndarray, op: str, v: Any) -> np.ndarray:
    if op == "gte":
        return values >= v
    if op == "lte":
        return values <= v
    if op == "eq":
        return values == v
    return (values >= v[0]) & (values <= v[1])


@contextlib.contextmanager
def _reads_without_mmap() -> Iterator[None]:
    """SQLite: the build reads every table once, and through the connection's memory map (its
    ``mmap_size``, 256 MB: siyu.conf) those pages would stay in this process's resident size.
    They are read through SQLite's page cache instead, for the build only."""
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cur:
        cur.execute("PRAGMA mmap_size")
        row = cur.fetchone()
        cur.execute("PRAGMA mmap_size=0")
    try:
        yield
    finally:
        with connection.cursor() as cur:
            cur.execute(f"PRAGMA mmap_size={int(row[0]) if row else 0}")


def _give_back_memory() -> None:
    """Return the load's freed heap to the system (glibc keeps it otherwise), so the resident
    size is the index's, not the peak of reading the tables."""

    gc.collect()
    if (libc := _glibc()) is not None:  # not glibc: nothing to trim
        libc.malloc_trim(0)


def _glibc() -> Any:
    """glibc's handle (its malloc tuning calls), or None with another C library."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def _as_date(value: Any) -> Any:
    if value is None or hasattr(value, "toordinal"):
        return value

    return date.fromisoformat(str(value)[:10])


def _is_refunded() -> Any:

    return Case(When(status=commerce_selectors.ORDER_REFUNDED, then=Value(1)), default=Value(0))


def _is_active() -> Any:

    return Case(When(status=customer_selectors.RelationStatus.ACTIVE, then=Value(1)), default=Value(0))


# --- the process's index ------------------------------------------------------------------------------
_INDEX: Index | None = None
_INSTALL_LOCK = threading.Lock()
_BUILD_LOCK = threading.Lock()


def _install(index: Index | None) -> None:
    global _INDEX
    with _INSTALL_LOCK:
        _INDEX = index


def enabled() -> bool:
    """``SIYU_SEGMENT_INDEX`` (setting, else environment variable; on by default)."""
    value = getattr(settings, "SIYU_SEGMENT_INDEX", None)
    if value is None:
        value = os.environ.get("SIYU_SEGMENT_INDEX", "1").lower() not in ("0", "false", "no", "off")
    return bool(value)


def get_index(refresh: bool = True) -> Index | None:
    """The process's index (built on first use, then kept current), or None when disabled."""
    if not enabled():
        return None
    index = _INDEX
    if index is None:
        with _BUILD_LOCK:
            if _INDEX is None:
                _install(Index().build())
    elif refresh:
        index.maybe_refresh()
    return _INDEX


def reset() -> None:
    """Forget the process's index (tests; the next use builds it again)."""
    _install(None)


def warm() -> None:
    """Build the index now (the worker at start; a web process on first use)."""
    if enabled():
        try:
            get_index()
        except Exception:
            logger.exception("segment index warm-up failed")
