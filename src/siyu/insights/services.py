"""Writes and rules of the insights app: the full and incremental recompute of ``Metrics``, the
weekly stage counts, the operator's settings and the mirror to WeCom corp tags.

Reads go through the owners' selectors: orders (``commerce.selectors.order_facts``), persons and
their clusters (``profiles.selectors``), WeCom customers lost (``customers.selectors``). The
arithmetic is ``insights.compute`` (numpy); rows are written in bulk by one upsert statement per
chunk that keeps ``stage_since`` and ``week_stage`` when the stage is unchanged and leaves a row
alone (``computed_at`` included) when nothing in it changed, so ``computed_at`` says when a
person's metrics last changed.
"""

from __future__ import annotations

import itertools
import logging
import time as _time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from django.db import connection, transaction
from django.db.models import Count, F
from django.utils import timezone

from siyu.accounts.selectors import DataScope
from siyu.commerce import selectors as commerce_selectors
from siyu.customers import selectors as customer_selectors
from siyu.customers import services as customer_services
from siyu.customers.tags import services as tag_services
from siyu.insights import compute
from siyu.insights.models import Cursor, Member, Metrics, RfmClass, Run, Settings, Stage, StageCount
from siyu.profiles import selectors as profile_selectors

logger = logging.getLogger("siyu.insights")

IntArray = npt.NDArray[np.int64]
WRITE_CHUNK = 100_000
RUN_STALE_S = 600  # a running full run untouched this long lost its worker


# --- settings ------------------------------------------------------------------------------------


def get_settings() -> Settings:
    s = Settings.objects.filter(pk=1).first()
    if s is None:
        s, _ = Settings.objects.get_or_create(pk=1, defaults={"value_bands": compute.DEFAULT_BANDS})
    return s


def bands_of(s: Settings) -> list[dict[str, Any]]:
    """The value bands, highest ``min`` first (the defaults when none are set)."""
    bands = s.value_bands if isinstance(s.value_bands, list) and s.value_bands else compute.DEFAULT_BANDS
    return sorted(bands, key=lambda b: -int(b["min"]))


def rules_of(s: Settings) -> compute.Rules:
    return compute.Rules(
        window_days=s.window_days,
        scoring=s.scoring if s.scoring == "thresholds" and s.thresholds else "quantile",
        thresholds=dict(s.thresholds or {}),
        loyal_orders=s.loyal_orders,
        loyal_days=s.loyal_days,
        dormant_days=s.dormant_days,
        lost_days=s.lost_days,
        bands=tuple((str(b["key"]), int(b["min"])) for b in bands_of(s)),
    )


SETTING_FIELDS = (
    "window_days",
    "scoring",
    "thresholds",
    "loyal_orders",
    "loyal_days",
    "dormant_days",
    "lost_days",
    "value_bands",
    "mirror_enabled",
    "mirror_tag_group_id",
)
RECOMPUTE_FIELDS = set(SETTING_FIELDS) - {"mirror_enabled", "mirror_tag_group_id"}


def update_settings(values: dict[str, Any], *, recompute: bool = True) -> Settings:
    """Store checked values (forms and the API check them); a change to a rule queues a full
    recompute."""
    s = get_settings()
    changed = [k for k in SETTING_FIELDS if k in values and getattr(s, k) != values[k]]
    for k in changed:
        setattr(s, k, values[k])
    if changed:
        s.save()
        if recompute and RECOMPUTE_FIELDS.intersection(changed):
            start_full_run("settings")
    return s


# --- runs ------------------------------------------------------------------------------------------


def running_run() -> Run | None:
    stale = timezone.now() - timedelta(seconds=RUN_STALE_S)
    return (
        Run.objects.filter(status__in=(Run.Status.QUEUED, Run.Status.RUNNING), updated_at__gte=stale)
        .order_by("-id")
        .first()
    )


def _last_done_run() -> Run | None:
    return Run.objects.filter(status=Run.Status.DONE).exclude(params={}).order_by("-id").first()


def start_full_run(trigger: str = "manual") -> Run:
    """Queue a full recompute in the worker (one at a time: an unfinished one is returned)."""
    current = running_run()
    if current is not None:
        return current
    run = Run.objects.create(trigger=trigger)
    # lazy: tasks.py imports this module (its task runs the recompute): a cycle inside the app
    from siyu.insights.tasks import full_recompute_task

    transaction.on_commit(lambda: full_recompute_task.enqueue(run.id))
    return run


def recompute_now(now: datetime | None = None, trigger: str = "manual") -> Run:
    """A full recompute right here (tests, the command line), recorded as a run."""
    run = Run.objects.create(trigger=trigger)
    out = run_full(run.id, now=now)
    assert out is not None
    return out


def run_full(run_id: int, now: datetime | None = None) -> Run | None:
    """The worker's side of ``start_full_run``."""
    run = Run.objects.filter(id=run_id).first()
    if run is None or run.status in (Run.Status.DONE, Run.Status.FAILED):
        return run
    Run.objects.filter(id=run.id).update(status=Run.Status.RUNNING, started_at=timezone.now(), progress=0)

    def progress(pct: int) -> None:
        Run.objects.filter(id=run_id).update(progress=pct, updated_at=timezone.now())

    try:
        max_order = commerce_selectors.max_order_id()  # read first: later orders count as drift
        out = full_recompute(now=now, progress=progress)
    except Exception as e:
        logger.exception("full recompute %s failed", run_id)
        Run.objects.filter(id=run_id).update(
            status=Run.Status.FAILED, error=f"{type(e).__name__}: {e}"[:500], finished_at=timezone.now()
        )
        raise
    Run.objects.filter(id=run_id).update(
        status=Run.Status.DONE,
        progress=100,
        persons=out.persons,
        orders=out.orders,
        params={**out.params.to_json(), "max_order_id": max_order},
        finished_at=timezone.now(),
    )
    weekly_snapshot(now)
    return Run.objects.get(id=run_id)


# --- the recompute ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    persons: int
    orders: int
    written: int
    params: compute.Params


def _now_ts(now: datetime | None) -> float:
    return (now or timezone.now()).timestamp()


def _index_of(persons: IntArray, profile_ids: IntArray, person_of: IntArray) -> IntArray:
    """A dense map profile id → index of its person in ``persons`` (-1: not one of them)."""
    top = int(max(profile_ids.max(initial=0), persons.max(initial=0))) + 1
    pos = np.full(top, -1, dtype=np.int64)
    pos[persons] = np.arange(len(persons), dtype=np.int64)
    out = np.full(top, -1, dtype=np.int64)
    out[profile_ids] = pos[person_of]
    return out


def _read_orders(index: IntArray, profile_ids: Iterable[int] | None) -> tuple[IntArray, IntArray, IntArray]:
    idx_parts, ts_parts, cents_parts = [], [], []
    for pids, ts, cents in commerce_selectors.order_facts(profile_ids):
        inside = pids < len(index)
        pids, ts, cents = pids[inside], ts[inside], cents[inside]
        idx = index[pids]
        keep = idx >= 0
        idx_parts.append(idx[keep])
        ts_parts.append(ts[keep])
        cents_parts.append(cents[keep])
    if not idx_parts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return np.concatenate(idx_parts), np.concatenate(ts_parts), np.concatenate(cents_parts)


def _relation_lost(n: int, index: IntArray, profile_ids: Iterable[int] | None) -> npt.NDArray[np.bool_]:
    """Per person: has a WeCom customer, and every one of them is lost."""
    link_profiles, link_customers = profile_selectors.customer_links(profile_ids)
    if not len(link_profiles):
        return np.zeros(n, dtype=bool)
    inside = link_profiles < len(index)
    idx = np.where(inside, index[np.minimum(link_profiles, len(index) - 1)], -1)
    keep = idx >= 0
    idx, customers = idx[keep], link_customers[keep]
    lost_ids = customer_selectors.lost_customer_ids(None if profile_ids is None else customers.tolist())
    lost = np.isin(customers, np.fromiter(lost_ids, dtype=np.int64, count=len(lost_ids)))
    have = np.bincount(idx, minlength=n)
    gone = np.bincount(idx[lost], minlength=n)
    return np.asarray((have > 0) & (gone == have))


def full_recompute(now: datetime | None = None, progress: Callable[[int], None] | None = None) -> Outcome:
    """Every person's metrics from every order; the scoring parameters are derived anew."""
    now_ts = _now_ts(now)
    say = progress or (lambda _pct: None)
    mark_at, mark_id = commerce_selectors.latest_order_mark()
    started = timezone.now()
    rules = rules_of(get_settings())
    profile_ids, person_of = profile_selectors.person_map()
    persons = np.sort(profile_ids[profile_ids == person_of])
    merged = profile_ids[profile_ids != person_of]
    index = _index_of(persons, profile_ids, person_of) if len(profile_ids) else np.zeros(1, dtype=np.int64)
    say(5)
    idx, ts, cents = _read_orders(index, None)
    say(35)
    relation_lost = _relation_lost(len(persons), index, None)
    agg = compute.aggregate(len(persons), idx, ts, cents, now_ts, rules)
    params = compute.derive_params(agg, now_ts, rules)
    result = compute.score(agg, relation_lost, now_ts, rules, params)
    say(50)
    written = _write(persons, result, rules, now_ts, progress=lambda f: say(50 + int(45 * f)))
    _delete_metrics(merged.tolist())
    with transaction.atomic():
        Member.objects.all().delete()
        pairs = profile_ids != person_of
        Member.objects.bulk_create(
            [
                Member(profile_id=a, person_id=b)
                for a, b in zip(profile_ids[pairs].tolist(), person_of[pairs].tolist(), strict=True)
            ],
            batch_size=5000,
        )
    cursor = _cursor()
    cursor.orders_at, cursor.orders_id = mark_at, mark_id
    cursor.profiles_at = cursor.profiles_at or started
    cursor.customers_at = cursor.customers_at or started
    cursor.save()
    return Outcome(len(persons), len(ts), written, params)


def _cursor() -> Cursor:
    c, _ = Cursor.objects.get_or_create(pk=1)
    return c


def _delete_metrics(profile_ids: list[int]) -> None:
    for start in range(0, len(profile_ids), 10_000):
        Metrics.objects.filter(profile_id__in=customer_selectors.id_set(profile_ids[start : start + 10_000])).delete()


INCREMENTAL_LIMIT = 50_000  # orders (and profiles, customers) read per tick
RECOMPUTE_CHUNK = 4_000


@dataclass
class Increment:
    persons: int = 0
    orders: int = 0
    written: int = 0


def incremental_update(now: datetime | None = None) -> Increment | None:
    """Recompute the persons whose orders, profiles (merges, unmerges) or WeCom customers changed
    since the cursor, with the last full run's parameters. None when no full run has finished.
    One transaction (with the cursor): one commit, and nothing half-done."""
    with transaction.atomic():
        return _incremental_update(now)


DRIFT_MIN_ORDERS = 1000  # new orders since the last full run that make its parameters stale...
DRIFT_SHARE = 0.2  # ...when they are also this share of the orders that run saw


def _drifted(run: Run) -> bool:
    """Many orders came since the full run ``run`` (a first install, then a year of history
    imported; a big import later): its quantile cuts and averages no longer describe the data, and
    every incremental result would be scored against them until the nightly run."""
    if "max_order_id" not in run.params:
        return False
    threshold = int(max(DRIFT_MIN_ORDERS, DRIFT_SHARE * run.orders))
    return commerce_selectors.orders_after(int(run.params["max_order_id"]), threshold)


def _incremental_update(now: datetime | None) -> Increment | None:
    run = _last_done_run()
    params = compute.Params.from_json(run.params) if run else None
    if run is None or params is None:
        return None
    if _drifted(run) and running_run() is None:
        start_full_run("drift")  # the increments go on meanwhile, with the old parameters
    cursor = _cursor()
    # settled walks (core.paging.settle): an order, a merge or a customer committed late with an
    # earlier time is still seen, at the next tick
    order_profiles, cursor.orders_at, cursor.orders_id = commerce_selectors.orders_changed_since(
        cursor.orders_at, cursor.orders_id, INCREMENTAL_LIMIT, walk="insights.orders"
    )
    changed_profiles, cursor.profiles_at = profile_selectors.profiles_changed_since(
        cursor.profiles_at, INCREMENTAL_LIMIT, walk="insights.profiles"
    )
    changed_customers, cursor.customers_at = customer_selectors.customers_changed_since(
        cursor.customers_at, INCREMENTAL_LIMIT, walk="insights.customers"
    )
    touched = set(order_profiles) | set(changed_profiles)
    if changed_customers:
        touched |= set(profile_selectors.profiles_of_customers(changed_customers))
    if not touched:
        cursor.save()
        return Increment()
    out = Increment()
    ordered = sorted(touched)
    # in chunks: each read names at most a few thousand ids (SQLite's bound-variable limit)
    for start in range(0, len(ordered), RECOMPUTE_CHUNK):
        part = recompute_profiles(ordered[start : start + RECOMPUTE_CHUNK], params, now=now)
        out.persons += part.persons
        out.orders += part.orders
        out.written += part.written
    cursor.save()
    return out


def recompute_profiles(profile_ids: Iterable[int], params: compute.Params, now: datetime | None = None) -> Increment:
    """Recompute the persons of ``profile_ids`` (whole clusters) with ``params``; profiles now
    merged into another lose their own metrics row."""
    ids = set(profile_ids)
    now_ts = _now_ts(now)
    rules = rules_of(get_settings())
    _delete_metrics(profile_selectors.merged_profile_ids(ids))
    # the persons these profiles were part of at their last recompute (an unmerge leaves one)
    ids |= set(Member.objects.filter(profile_id__in=customer_selectors.id_set(ids)).values_list("person_id", flat=True))
    clusters = profile_selectors.clusters(ids)
    if not clusters:
        return Increment()
    persons = np.array(sorted(clusters), dtype=np.int64)
    members = [(p, person) for person, ps in clusters.items() for p in ps]
    profile_arr = np.array([m[0] for m in members], dtype=np.int64)
    person_arr = np.array([m[1] for m in members], dtype=np.int64)
    index = _index_of(persons, profile_arr, person_arr)
    cluster_ids = profile_arr.tolist()
    idx, ts, cents = _read_orders(index, cluster_ids)
    relation_lost = _relation_lost(len(persons), index, cluster_ids)
    agg = compute.aggregate(len(persons), idx, ts, cents, now_ts, rules)
    result = compute.score(agg, relation_lost, now_ts, rules, params)
    written = _write(persons, result, rules, now_ts)
    with transaction.atomic():
        Member.objects.filter(person_id__in=customer_selectors.id_set(persons.tolist())).delete()
        Member.objects.filter(profile_id__in=customer_selectors.id_set(cluster_ids)).delete()
        Member.objects.bulk_create([Member(profile_id=a, person_id=b) for a, b in members if a != b])
    return Increment(len(persons), len(ts), written)


# --- writing Metrics -------------------------------------------------------------------------------


def _stage_since(result: compute.Result, rules: compute.Rules, now_ts: float) -> IntArray:
    """When a person entered its stage (used when the stage changed): the order that moved it
    there, the day its last order became ``dormant_days`` / ``lost_days`` old, or now."""
    last = result.last_ts
    since = np.full(len(last), int(now_ts), dtype=np.int64)
    by_order = (result.stage >= compute.NEW) & (result.stage <= compute.LOYAL)
    since[by_order] = last[by_order]
    dormant = result.stage == compute.DORMANT
    since[dormant] = last[dormant] + rules.dormant_days * compute.DAY
    lost = (result.stage == compute.LOST) & (last >= 0)
    lost_by_days = lost & (last + rules.lost_days * compute.DAY <= now_ts)
    since[lost_by_days] = last[lost_by_days] + rules.lost_days * compute.DAY
    return np.minimum(since, int(now_ts))


_COLS = (
    "profile_id",
    "orders",
    "amount",
    "orders_total",
    "amount_total",
    "first_order_at",
    "last_order_at",
    "r",
    "f",
    "m",
    "rfm_class",
    "stage",
    "stage_since",
    "value_score",
    "value_band",
    "week_stage",
    "computed_at",
)
# compared to decide whether a stored row changed
_VALUE_COLS = (*_COLS[1:12], "value_score", "value_band")


def _labels(rules: compute.Rules) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The texts of the class, stage and band codes of ``_columns`` (a code indexes its tuple)."""
    return ("", *compute.CLASS_KEYS), compute.STAGE_KEYS, ("", *(b[0] for b in rules.bands))


def _columns(persons: IntArray, result: compute.Result, rules: compute.Rules, now_ts: float) -> list[IntArray]:
    """The values of ``_COLS`` but ``week_stage`` and ``computed_at``, all int64: cents for the
    amounts, unix seconds (-1: none) for the times, codes (``_labels``) for the class, stage, band."""
    return [
        persons,
        result.orders,
        result.amount,
        result.orders_total,
        result.amount_total,
        result.first_ts,
        result.last_ts,
        result.r,
        result.f,
        result.m,
        result.cls + 1,
        result.stage,
        _stage_since(result, rules, now_ts),
        result.value,
        result.band + 1,
    ]


def _write(
    persons: IntArray,
    result: compute.Result,
    rules: compute.Rules,
    now_ts: float,
    progress: Callable[[float], None] | None = None,
) -> int:
    """Upsert the persons' rows: on SQLite chunk by chunk (each chunk its own transaction), on
    PostgreSQL every chunk copied into a temporary table, then one upsert from it."""
    cols = _columns(persons, result, rules, now_ts)
    labels = _labels(rules)
    n = len(persons)
    if connection.vendor == "postgresql":
        with transaction.atomic():
            written = _write_pg(cols, labels, _time.time())
        if progress:
            progress(1.0)
        return written
    written = 0
    for start in range(0, n, WRITE_CHUNK):
        part = [c[start : start + WRITE_CHUNK] for c in cols]
        with transaction.atomic():
            written += _write_sqlite(part, labels, _time.time())
        if progress:
            progress(min(1.0, (start + WRITE_CHUNK) / max(1, n)))
    return written


def _upsert_tail(distinct: str) -> str:
    qn = connection.ops.quote_name
    table = qn(Metrics._meta.db_table)
    sets = ", ".join(f"{qn(c)} = EXCLUDED.{qn(c)}" for c in _COLS[1:] if c not in ("stage_since", "week_stage"))
    keep_since = (
        f"{qn('stage_since')} = CASE WHEN {table}.{qn('stage')} = EXCLUDED.{qn('stage')} "
        f"THEN {table}.{qn('stage_since')} ELSE EXCLUDED.{qn('stage_since')} END"
    )
    changed = " OR ".join(f"{table}.{qn(c)} {distinct} EXCLUDED.{qn(c)}" for c in _VALUE_COLS)
    return f" ON CONFLICT ({qn('profile_id')}) DO UPDATE SET {sets}, {keep_since} WHERE {changed}"


def _write_sqlite(part: list[IntArray], labels: tuple[tuple[str, ...], ...], computed_ts: float) -> int:
    qn = connection.ops.quote_name
    table = qn(Metrics._meta.db_table)
    computed = connection.ops.adapt_datetimefield_value(datetime.fromtimestamp(computed_ts, tz=UTC))
    values = (
        "?, ?, ? / 100.0, ?, ? / 100.0, datetime(nullif(?, -1), 'unixepoch'), datetime(nullif(?, -1), 'unixepoch'), "
        "?, ?, ?, ?, ?, datetime(?, 'unixepoch'), ?, ?, '', ?"
    )
    sql = f"INSERT INTO {table} ({', '.join(qn(c) for c in _COLS)}) VALUES ({values}){_upsert_tail('IS NOT')}"
    classes, stages, bands = (np.array(x, dtype=object) for x in labels)
    lists = [c.tolist() for c in part]
    for i, texts in ((10, classes), (11, stages), (14, bands)):
        lists[i] = texts[part[i]].tolist()
    connection.ensure_connection()
    raw = connection.connection
    before = raw.total_changes
    raw.executemany(sql, zip(*lists, itertools.repeat(computed), strict=False))
    return int(raw.total_changes - before)


_PG_STAGING = "insights_metrics_in"


def _write_pg(
    cols: list[IntArray],
    labels: tuple[tuple[str, ...], ...],
    computed_ts: float,
) -> int:
    """PostgreSQL: the rows as binary COPY (built by numpy, chunk by chunk) into a temporary
    table, then one upsert from it (psycopg would adapt a million list items one by one, ~2 µs
    each); only new and changed rows reach the upsert."""
    # lazy: only on PostgreSQL (SQLite installs need not have the driver)
    import psycopg

    qn = connection.ops.quote_name
    table = qn(Metrics._meta.db_table)
    names = [f"a{i}" for i in range(1, len(cols) + 1)]
    row = np.dtype([("count", ">i2")] + [x for name in names for x in ((f"{name}_len", ">i4"), (name, ">i8"))])
    values = (
        "a1, a2, a3::numeric / 100, a4, a5::numeric / 100, to_timestamp(nullif(a6, -1)), "
        "to_timestamp(nullif(a7, -1)), a8, a9, a10, (%s::text[])[a11 + 1], (%s::text[])[a12 + 1], "
        "to_timestamp(a13), a14, (%s::text[])[a15 + 1], '', to_timestamp(%s)"
    )
    named = ", ".join(f"{qn(c)}" for c in _COLS)
    # ON CONFLICT locks (writes) every row it meets, even one its WHERE then leaves alone
    differs = " OR ".join(f"m.{qn(c)} IS DISTINCT FROM v.{qn(c)}" for c in _VALUE_COLS)
    select = (
        f"SELECT v.* FROM (SELECT {values} FROM {_PG_STAGING}) AS v ({named}) "
        f"LEFT JOIN {table} m ON m.{qn('profile_id')} = v.{qn('profile_id')} "
        f"WHERE m.{qn('profile_id')} IS NULL OR {differs}"
    )
    sql = f"INSERT INTO {table} ({named}) {select}{_upsert_tail('IS DISTINCT FROM')}"
    n = len(cols[0])
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cur:
        # derived rows, recomputable: the commit need not wait for the disk (a crash loses at most
        # the last moments' rows, with the cursor written beside them)
        cur.execute("SET LOCAL synchronous_commit TO OFF")
        cur.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {_PG_STAGING} ({', '.join(f'{a} bigint' for a in names)})")
        cur.execute(f"TRUNCATE {_PG_STAGING}")
        with cur.copy(f"COPY {_PG_STAGING} FROM STDIN (FORMAT binary)") as copy:
            copy.write(b"PGCOPY\n\xff\r\n\x00" + bytes(8))
            for start in range(0, n, WRITE_CHUNK):
                data = np.zeros(min(WRITE_CHUNK, n - start), dtype=row)
                data["count"] = len(names)
                for name, c in zip(names, cols, strict=True):
                    data[f"{name}_len"] = 8
                    data[name] = c[start : start + WRITE_CHUNK]
                copy.write(data.tobytes())
            copy.write(b"\xff\xff")
        cur.execute(f"ANALYZE {_PG_STAGING}")
        cur.execute(sql, [list(labels[0]), list(labels[1]), list(labels[2]), computed_ts])
        written = int(cur.rowcount)
        cur.execute(f"TRUNCATE {_PG_STAGING}")
    return written


# --- weekly stage counts -----------------------------------------------------------------------------


def week_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def weekly_snapshot(now: datetime | None = None, *, force: bool = False) -> bool:
    """Once a week (the first call in a week, or ``force``): the count of each stage and the moves
    between stages since the last snapshot, then every person's ``week_stage`` set to its stage."""
    week = week_of(timezone.localdate(now or timezone.now()))
    if not force and StageCount.objects.filter(week=week).exists():
        return False
    with transaction.atomic():
        StageCount.objects.filter(week=week).delete()
        counts = dict(Metrics.objects.values_list("stage").annotate(n=Count("pk")).values_list("stage", "n"))
        moves = (
            Metrics.objects.exclude(week_stage="")
            .exclude(week_stage=F("stage"))
            .values_list("week_stage", "stage")
            .annotate(n=Count("pk"))
            .values_list("week_stage", "stage", "n")
        )
        rows = [StageCount(week=week, from_stage="", stage=s, count=counts.get(s, 0)) for s in compute.STAGE_KEYS]
        rows += [StageCount(week=week, from_stage=a, stage=b, count=n) for a, b, n in moves if a != b]
        StageCount.objects.bulk_create(rows)
        Metrics.objects.exclude(week_stage=F("stage")).update(week_stage=F("stage"))
    return True


def tick() -> Increment | None:
    """The worker's frequent timer: the incremental update (none while a full run is under way)."""
    if Run.objects.filter(
        status=Run.Status.RUNNING, updated_at__gte=timezone.now() - timedelta(seconds=RUN_STALE_S)
    ).exists():
        return None
    t0 = _time.monotonic()
    out = incremental_update()
    if out and out.persons:
        logger.info("insights: %d person(s) recomputed in %.2fs", out.persons, _time.monotonic() - t0)
    return out


# --- mirror to WeCom corp tags ---------------------------------------------------------------------

MIRROR_BATCH = 200  # persons per pass (each of their active relations is one mark_tag call)
MIRROR_OPERATOR = "RFM"


@dataclass
class MirrorPass:
    persons: int = 0
    relations: int = 0
    succeeded: int = 0
    failures: int = 0


def mirror_names(s: Settings) -> dict[str, str]:
    """The corp tag kept for each class, stage and band: ``{"rfm:<key>" | "stage:<key>" |
    "band:<key>": tag name}`` (the names a person reads, in the site's language)."""
    out = {f"rfm:{c.value}": str(c.label) for c in RfmClass}
    out.update({f"stage:{st.value}": str(st.label) for st in Stage})
    out.update({f"band:{b['key']}": str(b["label"]) for b in bands_of(s)})
    return out


def ensure_mirror_tags(s: Settings) -> dict[str, int] | None:
    """The mirror's tags in the chosen group, created (through WeCom) when missing: row ids by
    mirror key. None when the group is gone."""
    names = mirror_names(s)
    by_name = tag_services.ensure_tags(int(s.mirror_tag_group_id or 0), names.values())
    if by_name is None:
        return None
    return {key: by_name[name] for key, name in names.items() if name in by_name}


def mirror_pass(limit: int = MIRROR_BATCH) -> MirrorPass | None:
    """Re-tag the WeCom customers of the persons whose metrics changed since the last pass (by
    ``computed_at``): each relation gets its person's class, stage and band tags and loses the
    mirror's other tags. Calls WeCom: never inside a transaction. None when the mirror is off."""
    s = get_settings()
    if not s.mirror_enabled or not s.mirror_tag_group_id:
        return None
    tags = ensure_mirror_tags(s)
    if tags is None:
        return None
    cursor = _cursor()
    qs = Metrics.objects.all()
    if cursor.mirror_at is not None:
        qs = qs.filter(computed_at__gte=cursor.mirror_at).exclude(
            computed_at=cursor.mirror_at, profile_id__lte=cursor.mirror_id
        )
    rows = list(
        qs.order_by("computed_at", "profile_id").values_list(
            "profile_id", "rfm_class", "stage", "value_band", "computed_at"
        )[:limit]
    )
    out = MirrorPass(persons=len(rows))
    if not rows:
        return out
    wanted = {r[0]: (f"rfm:{r[1]}", f"stage:{r[2]}", f"band:{r[3]}") for r in rows}
    clusters = profile_selectors.clusters(wanted)
    person_of = {p: person for person, ps in clusters.items() for p in ps}
    link_profiles, link_customers = profile_selectors.customer_links(list(person_of))
    by_tags: dict[tuple[str, ...], list[int]] = {}
    for pid, cid in zip(link_profiles.tolist(), link_customers.tolist(), strict=True):
        person = person_of.get(pid)
        if person in wanted:
            by_tags.setdefault(wanted[person], []).append(cid)
    every = set(tags.values())
    for keys, customers in by_tags.items():
        add = [tags[k] for k in keys if k in tags]
        result = customer_services.bulk_mark_tags(
            customer_selectors.relations_for_tagging(DataScope(everything=True), customers),
            add_tag_pks=add,
            remove_tag_pks=sorted(every - set(add)),
            operator=MIRROR_OPERATOR,
        )
        out.relations += result.relations
        out.succeeded += result.succeeded
        out.failures += len(result.failures)
    cursor.mirror_at, cursor.mirror_id = rows[-1][4], rows[-1][0]
    Cursor.objects.filter(pk=cursor.pk).update(mirror_at=cursor.mirror_at, mirror_id=cursor.mirror_id)
    return out
