"""Segment counts on 1,000,000 persons / 5,000,000 orders: the in-memory index against the plain
SQL count, same definitions, same ``now``, same run.

    python bench/segments.py [--persons 1000000] [--orders 5000000] [--reps 7] [--postgres [URL]]

The world is generated with numpy and written with executemany (SQLite) or COPY (PostgreSQL) into
a cache kept under var/bench/segments/ (the SQLite file; for PostgreSQL the database named by
``--postgres URL`` or DATABASE_URL, default postgres://postgres@127.0.0.1:5432/siyu_bench_segments)
and reused while it has the requested size: profiles (2 % more merged into others), a WeCom
customer for 90 % of persons (and for some merged profiles), ~1.1 follow relations each with 0–3
of 40 corp tags, group stays, orders with Pareto-like spend over two years (3 % refunded, 4 %
part-refunded) with 1–2 items (2,000 skus, 30 categories, 12 brands), 3,000,000 events of 7
types, and a metrics row per person.

Measured in a fresh process: the index build time and the process's resident memory after it
(/proc/self/status VmRSS, VmHWM), then 20 mixed definitions (tags, RFM, lifecycle, orders,
events, channel, employee, department, groups, birthday ...): each counted ``--reps`` times
through ``segments.services.count`` (freshness checks included) and once by the SQL compiler.
The last line is one JSON object: p50_ms, p95_ms (over every engine count), sql_p50_ms,
min_speedup (the smallest SQL time / engine median of a definition), rss_mb, hwm_build_mb (the peak
while building), counts_identical, the targets and meets_targets.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
WORK = ROOT / "var" / "bench" / "segments"
PG_DEFAULT = "postgres://postgres@127.0.0.1:5432/siyu_bench_segments"
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
NOW_S = int(NOW.timestamp())
SPAN_S = 730 * 86400
# memory: the web process's resident size with the index built, and its peak while building it
# (VmHWM: the build's transient arrays included), each ≤ 1 GB ("stays ≤ 1 GB", issue 17). The
# figures at the end of the run (rss_end_mb, hwm_mb) also hold the plain SQL counts' own memory
# (the baseline, run in this same process): reported, not targeted.
TARGETS = {"p50_ms": 50, "p95_ms": 150, "min_speedup": 20, "rss_mb": 1024, "hwm_build_mb": 1024}
STATES = [f"qr-store-{i:02d}" for i in range(20)]
EVENT_TYPES = [
    "browse_product",
    "add_to_cart",
    "coupon_claimed",
    "coupon_redeemed",
    "link_clicked",
    "store_visit",
    "points_change",
]
RFM = [
    "important_value",
    "important_develop",
    "important_keep",
    "important_retain",
    "normal_value",
    "normal_develop",
    "normal_keep",
    "normal_retain",
]
STAGES = ["prospect", "new", "repeat", "loyal", "dormant", "lost"]
LEVELS = ["普通", "银卡", "金卡", "钻石"]
STORES = [f"S{i:03d}" for i in range(60)]
CATEGORIES = ["戒指", "项链", "耳饰", "手链", "吊坠", "手表", "胸针", "发饰", "眼镜", "包袋"] + [
    f"品类{i}" for i in range(20)
]
BRANDS = [f"品牌{i}" for i in range(12)]


def setup_django(db_url: str) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    os.environ["SIYU_VAR_DIR"] = str(WORK)
    os.environ["DATABASE_URL"] = db_url
    os.environ.setdefault("SIYU_LOG_LEVEL", "WARNING")
    os.environ["DJANGO_SETTINGS_MODULE"] = "siyu.settings"
    import django

    django.setup()


def ensure_pg_database(url: str) -> None:
    import psycopg

    u = urlparse(url)
    admin = u._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as c:
        if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", [u.path.lstrip("/")]).fetchone():
            c.execute(f'CREATE DATABASE "{u.path.lstrip("/")}"')


def rss() -> dict[str, float]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, value = line.split(":", 1)
            out[key] = int(value.split()[0]) / 1024
    return out


# --- writing ----------------------------------------------------------------------------------
class Writer:
    """Bulk rows into a model's table: every concrete column, the given ones from arrays, the
    others their defaults. executemany on SQLite, COPY on PostgreSQL."""

    def __init__(self) -> None:
        from django.db import connection

        self.connection = connection
        self.pg = connection.vendor == "postgresql"

    @contextlib.contextmanager
    def no_indexes(self, *models: Any) -> Iterator[None]:
        """SQLite: drop the tables' secondary indexes for the load and create them again after
        (a sort per index instead of a b-tree insert per row)."""
        if self.pg:
            yield
            return
        saved = []
        with self.connection.cursor() as cur:
            for model in models:
                cur.execute(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s AND sql IS NOT NULL",
                    [model._meta.db_table],
                )
                for name, sql in cur.fetchall():
                    saved.append(sql)
                    cur.execute(f'DROP INDEX "{name}"')
        yield
        started = time.perf_counter()
        with self.connection.cursor() as cur:
            for sql in saved:
                cur.execute(sql)
        print(f"    {len(saved)} indexes in {time.perf_counter() - started:.1f} s", file=sys.stderr)

    def times(self, epoch: np.ndarray) -> np.ndarray:
        s = np.datetime_as_string(epoch.astype("datetime64[s]"), unit="s")
        s = np.char.replace(s, "T", " ")
        return np.char.add(s, "+00") if self.pg else s

    def insert(self, model: Any, n: int, cols: dict[str, Any], chunk: int = 100_000) -> None:
        from django.db import models as m

        names, series = [], []
        now_text = self.times(np.array([NOW_S]))[0]
        for f in model._meta.concrete_fields:
            names.append(f.column)
            if f.column in cols:
                series.append(cols[f.column])
                continue
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                series.append(now_text)
            elif isinstance(f, m.JSONField):
                series.append(json.dumps(f.get_default()))
            elif f.has_default():
                d = f.get_default()
                series.append((("t" if d else "f") if self.pg else int(d)) if isinstance(d, bool) else d)
            else:
                series.append(None)
        qn = self.connection.ops.quote_name
        table = qn(model._meta.db_table)
        started = time.perf_counter()
        with self.connection.cursor() as cur:
            for start in range(0, n, chunk):
                stop = min(n, start + chunk)
                columns = [
                    (s[start:stop].tolist() if isinstance(s, np.ndarray) else s[start:stop])
                    if isinstance(s, (np.ndarray, list))
                    else [s] * (stop - start)
                    for s in series
                ]
                rows = list(zip(*columns, strict=True))
                if self.pg:
                    text = "".join("\t".join("\\N" if v is None else str(v) for v in row) + "\n" for row in rows)
                    with cur.cursor.copy(f"COPY {table} ({', '.join(qn(c) for c in names)}) FROM STDIN") as cp:
                        cp.write(text)
                else:
                    marks = ", ".join(["%s"] * len(names))
                    cur.executemany(f"INSERT INTO {table} ({', '.join(qn(c) for c in names)}) VALUES ({marks})", rows)
            if self.pg:
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{model._meta.db_table}', 'id'), "
                    f"(SELECT coalesce(max(id), 1) FROM {table}))"
                    if model._meta.pk.column == "id"
                    and model._meta.pk.get_internal_type() in ("AutoField", "BigAutoField")
                    else "SELECT 1"
                )
        took = time.perf_counter() - started
        print(f"    {model.__name__}: {n:,} rows in {took:.1f} s", file=sys.stderr)


def generate(persons: int, orders: int, events: int, seed: int = 17, stores: int = 20, per_store: int = 10) -> float:
    """Write the world (see the module's docstring): ``stores`` stores of ``per_store`` guides."""
    from django.db import connection, transaction

    from siyu.commerce.models import Event, EventType, Order, OrderItem
    from siyu.customers.models import Customer, FollowRelation, FollowTag, Tag, TagGroup
    from siyu.groups.models import GroupChat, GroupMember
    from siyu.insights.models import Metrics
    from siyu.org.models import Department, Employee, EmployeeDepartment
    from siyu.profiles.models import Profile, ProfileKey

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    w = Writer()
    with connection.cursor() as cur:
        if not w.pg:
            cur.execute("PRAGMA synchronous=OFF")
            cur.execute("PRAGMA journal_mode=MEMORY")
            cur.execute("PRAGMA cache_size=-1000000")
            cur.execute("PRAGMA temp_store=MEMORY")
    models = (Metrics, Event, EventType, OrderItem, Order, GroupMember, GroupChat, FollowTag, FollowRelation)
    models += (ProfileKey, Customer, Tag, TagGroup, Profile, EmployeeDepartment, Employee, Department)
    for model in models:
        with connection.cursor() as cur:
            cur.execute(f"DELETE FROM {connection.ops.quote_name(model._meta.db_table)}")
    with transaction.atomic():
        Department.objects.create(id=1, name="品牌总部", parentid=0, path="/1/", depth=0)
        for r in range(4):
            Department.objects.create(
                id=10 + r, name=f"大区{r + 1}", parentid=1, parent_id=1, path=f"/1/{10 + r}/", depth=1
            )
        employees = []
        for s in range(stores):
            region = 10 + s % 4
            d = Department.objects.create(
                id=100 + s,
                name=f"门店{s + 1:02d}",
                parentid=region,
                parent_id=region,
                path=f"/1/{region}/{100 + s}/",
                depth=2,
            )
            for k in range(per_store):
                userid = f"emp{s:02d}{k:02d}" if stores <= 100 and per_store <= 100 else f"emp{s:04d}{k:03d}"
                e = Employee.objects.create(userid=userid, name=f"导购{s}-{k}", main_department=d, contact_enabled=True)
                EmployeeDepartment.objects.create(employee=e, department=d, is_leader=k == 0)
                employees.append(e.id)
        tags = []
        for g in range(5):
            grp = TagGroup.objects.create(group_id=f"g{g}", name=f"标签组{g}")
            tags += [Tag.objects.create(tag_id=f"t{g}-{t}", group=grp, name=f"标签{g}-{t}").id for t in range(8)]
        groups = [
            GroupChat.objects.create(chat_id=f"chat{i}", name=f"群{i}", owner_id=employees[i % len(employees)]).id
            for i in range(500)
        ]
        for code in EVENT_TYPES:
            EventType.objects.create(code=code, label=code, builtin=True)
    type_ids = np.array(list(EventType.objects.order_by("id").values_list("id", flat=True)))
    employees_a, tags_a, groups_a = np.array(employees), np.array(tags), np.array(groups)

    # profiles: 1..persons live, then 2 % merged into older live ones
    merged_n = persons // 50
    total = persons + merged_n
    pid = np.arange(1, total + 1)
    merged_into = np.full(total, None, dtype=object)
    merged_into[persons:] = rng.integers(1, persons + 1, merged_n)
    bday_days = rng.integers(-25000, -6000, total)
    bday = np.datetime_as_string(np.datetime64("2026-11-01") + bday_days.astype("timedelta64[D]"))
    bday = np.where(rng.random(total) < 0.6, bday, None)
    joined = w.times(NOW_S - rng.integers(0, 3 * 365 * 86400, total))
    joined = np.where(rng.random(total) < 0.5, joined, None)
    print("  profiles", file=sys.stderr)
    unindexed = w.no_indexes(Profile, Customer, ProfileKey, FollowRelation, FollowTag, GroupMember, Order, OrderItem)
    unindexed.__enter__()
    unindexed_events = w.no_indexes(Event, Metrics)
    unindexed_events.__enter__()
    with transaction.atomic():
        w.insert(
            Profile,
            total,
            {
                "id": pid,
                "name": [f"客户{i}" for i in range(1, total + 1)],
                "member_no": [f"M{i:08d}" for i in range(1, total + 1)],
                "gender": rng.integers(0, 3, total),
                "birthday": bday,
                "member_level": np.array(LEVELS, dtype=object)[rng.integers(0, 4, total)],
                "points": rng.integers(0, 20000, total),
                "join_store": np.array(STORES, dtype=object)[rng.integers(0, len(STORES), total)],
                "member_joined_at": joined,
                "merged_into_id": merged_into,
            },
        )
    # customers: one per live person for 90 %, and one for a quarter of the merged profiles
    owners = np.concatenate(
        [np.flatnonzero(rng.random(persons) < 0.9) + 1, np.arange(persons + 1, persons + 1 + merged_n // 4)]
    )
    nc = len(owners)
    cid = np.arange(1, nc + 1)
    print("  customers", file=sys.stderr)
    added = NOW_S - rng.integers(0, SPAN_S, nc)
    with transaction.atomic():
        w.insert(
            Customer,
            nc,
            {
                "id": cid,
                "external_userid": [f"wm{i:012d}" for i in cid],
                "name": "wx",
                "first_added_at": w.times(added),
            },
        )
        w.insert(
            ProfileKey,
            nc,
            {
                "id": cid,
                "profile_id": owners,
                "kind": "external_userid",
                "value": [f"wm{i:012d}" for i in cid],
                "customer_id": cid,
            },
        )
    # relations: one per customer, a second for 10 %
    second = np.flatnonzero(rng.random(nc) < 0.1) + 1
    r_cust = np.concatenate([cid, second])
    nr = len(r_cust)
    r_emp = employees_a[rng.integers(0, len(employees_a), nr)]
    next_emp = employees_a[(np.searchsorted(employees_a, r_emp[nc:]) + 1) % len(employees_a)]
    r_emp[nc:] = np.where(r_emp[nc:] == r_emp[second - 1], next_emp, r_emp[nc:])
    r_added = np.concatenate([added, added[second - 1] + rng.integers(0, 86400 * 30, len(second))])
    r_state = np.where(rng.random(nr) < 0.3, np.array(STATES, dtype=object)[rng.integers(0, 20, nr)], "")
    r_status = np.where(rng.random(nr) < 0.92, "active", "lost_by_customer")
    print("  relations", file=sys.stderr)
    with transaction.atomic():
        w.insert(
            FollowRelation,
            nr,
            {
                "id": np.arange(1, nr + 1),
                "customer_id": r_cust,
                "employee_id": r_emp,
                "state": r_state,
                "added_at": w.times(r_added),
                "status": r_status,
            },
        )
    # corp tags: 0–3 per relation, skewed
    k = rng.integers(0, 4, nr)
    t_rel = np.repeat(np.arange(1, nr + 1), k)
    weights = 1 / (np.arange(len(tags_a)) + 1) ** 0.8
    t_tag = tags_a[rng.choice(len(tags_a), len(t_rel), p=weights / weights.sum())]
    pair = np.unique(t_rel.astype(np.int64) * 100_000 + t_tag)
    t_rel, t_tag = pair // 100_000, pair % 100_000
    print("  tags", file=sys.stderr)
    with transaction.atomic():
        w.insert(
            FollowTag,
            len(t_rel),
            {
                "id": np.arange(1, len(t_rel) + 1),
                "relation_id": t_rel,
                "tag_id": t_tag,
                "customer_id": r_cust[t_rel - 1],
                "employee_id": r_emp[t_rel - 1],
            },
        )
    stay = np.flatnonzero(rng.random(nc) < 0.3) + 1
    g = groups_a[rng.integers(0, len(groups_a), len(stay))]
    left = np.where(rng.random(len(stay)) < 0.1, w.times(NOW_S - rng.integers(0, SPAN_S, len(stay))), None)
    with transaction.atomic():
        w.insert(
            GroupMember,
            len(stay),
            {
                "id": np.arange(1, len(stay) + 1),
                "group_id": g,
                "userid": [f"wm{i:012d}" for i in stay],
                "customer_id": stay,
                "left_at": left,
            },
        )
    # orders: Pareto-like buyers (a profile drawn with a heavy tail), over two years
    buyer_weight = rng.pareto(1.2, total) + 0.05
    buyer_weight /= buyer_weight.sum()
    o_prof = rng.choice(total, orders, p=buyer_weight) + 1
    o_time = np.sort(NOW_S - rng.integers(0, SPAN_S, orders))
    cents = np.minimum((rng.lognormal(10, 1, orders)).astype(np.int64), 10**9)
    status_r = rng.random(orders)
    status = np.where(status_r < 0.93, "paid", np.where(status_r < 0.97, "part_refunded", "refunded"))
    refunded = np.where(status == "refunded", cents, np.where(status == "part_refunded", cents // 3, 0))
    print("  orders", file=sys.stderr)
    chunk = 1_000_000
    for start in range(0, orders, chunk):
        stop = min(orders, start + chunk)
        sl = slice(start, stop)
        with transaction.atomic():
            w.insert(
                Order,
                stop - start,
                {
                    "id": np.arange(start + 1, stop + 1),
                    "source": "pos",
                    "order_no": [f"SO{i:010d}" for i in range(start + 1, stop + 1)],
                    "profile_id": o_prof[sl],
                    "paid_at": w.times(o_time[sl]),
                    "amount": (cents[sl] / 100).tolist(),
                    "refunded_amount": (refunded[sl] / 100).tolist(),
                    "status": status[sl],
                    "updated_at": w.times(np.full(stop - start, NOW_S)),
                },
            )
        print(f"    {stop:,}", file=sys.stderr, end="\r")
    n_items = np.where(rng.random(orders) < 0.75, 1, 2)
    i_order = np.repeat(np.arange(1, orders + 1), n_items)
    ni = len(i_order)
    sku = np.minimum(rng.zipf(1.3, ni), 2000) - 1
    print("\n  items", file=sys.stderr)
    cats, brands = np.array(CATEGORIES, dtype=object), np.array(BRANDS, dtype=object)
    for start in range(0, ni, chunk):
        stop = min(ni, start + chunk)
        sl = slice(start, stop)
        oi = i_order[sl] - 1
        with transaction.atomic():
            w.insert(
                OrderItem,
                stop - start,
                {
                    "id": np.arange(start + 1, stop + 1),
                    "order_id": oi + 1,
                    "profile_id": o_prof[oi],
                    "paid_at": w.times(o_time[oi]),
                    "sku": [f"SKU{s:04d}" for s in sku[sl].tolist()],
                    "category": cats[sku[sl] % len(cats)],
                    "brand": brands[sku[sl] % len(brands)],
                    "price": (cents[oi] / 100 / n_items[oi]).round(2).tolist(),
                },
            )
        print(f"    {stop:,}", file=sys.stderr, end="\r")
    print("\n  events", file=sys.stderr)
    e_prof = rng.choice(total, events, p=buyer_weight) + 1
    e_time = NOW_S - rng.integers(0, 180 * 86400, events)
    e_type = type_ids[np.minimum(rng.geometric(0.35, events) - 1, len(type_ids) - 1)]
    for start in range(0, events, chunk):
        stop = min(events, start + chunk)
        sl = slice(start, stop)
        with transaction.atomic():
            w.insert(
                Event,
                stop - start,
                {
                    "id": np.arange(start + 1, stop + 1),
                    "source": "app",
                    "event_id": [f"E{i:010d}" for i in range(start + 1, stop + 1)],
                    "type_id": e_type[sl],
                    "profile_id": e_prof[sl],
                    "at": w.times(e_time[sl]),
                },
            )
    print("  metrics", file=sys.stderr)
    live = np.arange(1, persons + 1)
    # each person's first and last order and order count (orders of merged profiles left out)
    mine = o_prof <= persons
    o_count = np.bincount(o_prof[mine], minlength=persons + 1)[1:]
    first_o = np.full(persons + 1, np.iinfo(np.int64).max)
    np.minimum.at(first_o, o_prof[mine], o_time[mine])
    last_o = np.zeros(persons + 1, dtype=np.int64)
    np.maximum.at(last_o, o_prof[mine], o_time[mine])
    bought = o_count > 0
    first_at = np.where(bought, w.times(np.where(bought, first_o[1:], NOW_S)), None)
    last_at = np.where(bought, w.times(np.where(bought, last_o[1:], NOW_S)), None)
    has = rng.random(persons) < 0.8
    score = rng.integers(0, 101, persons)
    with transaction.atomic():
        w.insert(
            Metrics,
            persons,
            {
                "profile_id": live,
                "r": np.where(has, rng.integers(1, 6, persons), 0),
                "f": np.where(has, rng.integers(1, 6, persons), 0),
                "m": np.where(has, rng.integers(1, 6, persons), 0),
                "rfm_class": np.where(has, np.array(RFM, dtype=object)[rng.integers(0, 8, persons)], ""),
                "stage": np.array(STAGES, dtype=object)[rng.integers(0, 6, persons)],
                "value_score": score,
                "value_band": np.where(score >= 80, "high", np.where(score >= 40, "mid", "low")),
                "computed_at": w.times(np.full(persons, NOW_S)),
                "orders": o_count,
                "amount": 0,
                "orders_total": o_count,
                "amount_total": 0,
                "first_order_at": first_at,
                "last_order_at": last_at,
            },
        )
    unindexed.__exit__(None, None, None)
    unindexed_events.__exit__(None, None, None)
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE" if w.pg else "ANALYZE")
    return time.perf_counter() - t0


def definitions() -> list[tuple[str, dict[str, Any]]]:
    from siyu.customers.models import Tag
    from siyu.groups.models import GroupChat
    from siyu.org.models import Employee

    tags = list(Tag.objects.order_by("id").values_list("id", flat=True))
    emps = list(Employee.objects.order_by("id").values_list("id", flat=True))
    groups = list(GroupChat.objects.order_by("id").values_list("id", flat=True))
    return [
        ("tag any", {"field": "tag", "op": "any", "value": tags[:2]}),
        (
            "tag all",
            {
                "op": "and",
                "items": [
                    {"field": "tag", "op": "all", "value": tags[:2]},
                    {"field": "tag", "op": "none", "value": [tags[5]]},
                ],
            },
        ),
        ("rfm class", {"field": "rfm_class", "op": "in", "value": ["important_value", "important_keep"]}),
        (
            "rfm scores",
            {
                "op": "and",
                "items": [
                    {"field": "rfm.r", "op": "in", "value": [4, 5]},
                    {"field": "rfm.m", "op": "in", "value": [5]},
                ],
            },
        ),
        ("stage", {"field": "stage", "op": "in", "value": ["dormant", "lost"]}),
        (
            "value band + score",
            {
                "op": "or",
                "items": [
                    {"field": "value_band", "op": "in", "value": ["high"]},
                    {"field": "value_score", "op": "between", "value": [30, 40]},
                ],
            },
        ),
        ("bought category 90d", {"field": "bought", "op": "category", "value": ["戒指"], "days": 90}),
        ("bought sku ever", {"field": "bought", "op": "sku", "value": ["SKU0003", "SKU0010"]}),
        ("bought brand 365d", {"field": "bought", "op": "brand", "value": ["品牌3"], "days": 365}),
        ("orders ≥3 in 365d", {"field": "order_count", "op": "gte", "value": 3, "days": 365}),
        ("amount ≥ 1000", {"field": "amount_spent", "op": "gte", "value": 1000}),
        (
            "last order 30–180d ago",
            {
                "op": "and",
                "items": [
                    {"field": "last_order_at", "op": "before_days", "value": 30},
                    {"field": "last_order_at", "op": "within_days", "value": 180},
                ],
            },
        ),
        ("event coupon ≥1 in 30d", {"field": "event", "type": "coupon_claimed", "op": "gte", "value": 1, "days": 30}),
        ("did not visit store", {"field": "event", "type": "store_visit", "op": "gte", "value": 1, "not": True}),
        ("channel", {"field": "channel", "op": "any", "value": STATES[:3]}),
        ("employee", {"field": "employee", "op": "any", "value": emps[:10]}),
        ("department", {"field": "department", "op": "any", "value": [10]}),
        (
            "groups + relation",
            {
                "op": "and",
                "items": [
                    {"field": "group", "op": "any", "value": groups[:50]},
                    {"field": "relation", "op": "eq", "value": "active"},
                ],
            },
        ),
        (
            "member + birthday",
            {
                "op": "and",
                "items": [
                    {"field": "profile.member_level", "op": "in", "value": ["金卡", "钻石"]},
                    {"field": "profile.birthday", "op": "birthday_within_days", "value": 30},
                ],
            },
        ),
        (
            "nested mix",
            {
                "op": "and",
                "items": [
                    {"field": "tag", "op": "any", "value": tags[:3]},
                    {
                        "op": "or",
                        "items": [
                            {"field": "rfm_class", "op": "in", "value": ["important_value", "important_keep"]},
                            {"field": "bought", "op": "category", "value": ["戒指"], "days": 90},
                        ],
                    },
                    {"field": "event", "type": "coupon_claimed", "op": "gte", "value": 1, "days": 30, "not": True},
                    {"field": "added_at", "op": "within_days", "value": 365},
                ],
            },
        ),
    ]


def measure(reps: int) -> dict[str, Any]:
    from siyu.accounts.selectors import DataScope
    from siyu.segments import engine, services, sqlcompile

    scope = DataScope(everything=True)
    t0 = time.perf_counter()
    index = engine.get_index()
    assert index is not None
    build_s = time.perf_counter() - t0
    mem = built_mem = rss()
    print(
        f"index built in {build_s:.1f} s; {index.nbytes() / 2**20:.0f} MB of arrays; RSS {mem['VmRSS']:.0f} MB",
        file=sys.stderr,
    )
    samples, sql_times, speedups, identical = [], [], [], True
    for name, definition in definitions():
        node = services.tree(definition)
        times = []
        for _r in range(reps):
            t = time.perf_counter()
            n = services.count(node, scope, NOW)
            times.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        sql_n = sqlcompile.sql_count(node, scope, NOW)
        sql_ms = (time.perf_counter() - t) * 1000
        med = float(np.median(times))
        samples += times
        sql_times.append(sql_ms)
        speedups.append(sql_ms / med)
        identical &= n == sql_n
        verdict = "ok" if n == sql_n else f"MISMATCH sql={sql_n}"
        line = f"  {name:28s} {n:>9,}  engine p50 {med:7.1f} ms  sql {sql_ms:9.1f} ms  x{sql_ms / med:7.0f}  {verdict}"
        print(line, file=sys.stderr)
    mem = rss()
    out: dict[str, Any] = {
        "p50_ms": round(float(np.percentile(samples, 50)), 2),
        "p95_ms": round(float(np.percentile(samples, 95)), 2),
        "sql_p50_ms": round(float(np.median(sql_times)), 1),
        "min_speedup": round(min(speedups), 1),
        # the web process's resident size with the index built (the target); at the end of the run
        # too, after the SQL counts' own temporary memory in this same process
        "rss_mb": round(built_mem["VmRSS"], 1),
        "hwm_build_mb": round(built_mem["VmHWM"], 1),
        "rss_end_mb": round(mem["VmRSS"], 1),
        "hwm_mb": round(mem["VmHWM"], 1),
        "index_mb": round(index.nbytes() / 2**20, 1),
        "build_s": round(build_s, 1),
        "counts_identical": identical,
        "targets": TARGETS,
    }
    out["meets_targets"] = bool(
        identical
        and out["p50_ms"] <= TARGETS["p50_ms"]
        and out["p95_ms"] <= TARGETS["p95_ms"]
        and out["min_speedup"] >= TARGETS["min_speedup"]
        and out["rss_mb"] <= TARGETS["rss_mb"]
        and out["hwm_build_mb"] <= TARGETS["hwm_build_mb"]
    )
    return out


def cached_size(db_url: str) -> tuple[int, int]:
    try:
        from siyu.commerce.models import Order
        from siyu.profiles.models import Profile

        return Profile.objects.filter(merged_into__isnull=True).count(), Order.objects.count()
    except Exception:  # noqa: BLE001 - an empty or missing database
        return 0, 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--persons", type=int, default=1_000_000)
    ap.add_argument("--orders", type=int, default=5_000_000)
    ap.add_argument("--events", type=int, default=3_000_000)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument(
        "--postgres",
        nargs="?",
        const="",
        default=None,
        help="PostgreSQL URL (default DATABASE_URL or a bench database)",
    )
    ap.add_argument("--generate-only", action="store_true")
    ap.add_argument("--guide-world", action="store_true", help=argparse.SUPPRESS)  # ensure_guide_world's child
    ap.add_argument("--db-url", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.guide_world:
        Path(args.db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        setup_django(args.db_url)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        if cached_size(args.db_url) != (args.persons, args.orders):
            took = generate(args.persons, args.orders, args.events, stores=GUIDE_STORES, per_store=GUIDES_PER_STORE)
            print(f"generated in {took:.0f} s", file=sys.stderr)
        return
    if args.postgres is not None:
        db_url = args.postgres or os.environ.get("DATABASE_URL", "") or PG_DEFAULT
        if not db_url.startswith("postgres"):
            db_url = PG_DEFAULT
        ensure_pg_database(db_url)
    else:
        db_url = f"sqlite:///{WORK / f'segments-{args.persons}-{args.orders}.sqlite3'}"
    setup_django(db_url)
    from django.core.management import call_command

    if args.generate_only:
        call_command("migrate", verbosity=0)
        if cached_size(db_url) != (args.persons, args.orders):
            took = generate(args.persons, args.orders, args.events)
            print(f"generated in {took:.0f} s", file=sys.stderr)
        return
    # generate (if needed) in a child process, so this one's memory is the index's alone
    cmd = [
        sys.executable,
        __file__,
        "--generate-only",
        "--persons",
        str(args.persons),
        "--orders",
        str(args.orders),
        "--events",
        str(args.events),
    ]
    if args.postgres is not None:
        cmd += ["--postgres", db_url]
    subprocess.run(cmd, check=True)
    result = measure(args.reps)
    result.update(
        persons=args.persons, orders=args.orders, database="postgresql" if args.postgres is not None else "sqlite"
    )
    print(json.dumps(result))


# --- the guides' world, shared by bench/tasks.py and bench/sidebar.py ---------------------------------
GUIDE_STORES, GUIDES_PER_STORE = 250, 20  # 5,000 guides (issue 18)


def guide_world_url(persons: int, orders: int) -> str:
    return f"sqlite:///{WORK.parent / 'guides' / f'world-{persons}-{orders}-{GUIDE_STORES * GUIDES_PER_STORE}.sqlite3'}"


def ensure_guide_world(persons: int, orders: int, events: int, db_url: str) -> None:
    """The world of ``generate`` with 5,000 guides, in its own cache (generated in a child process
    when missing or of another size, so the caller's memory is its own)."""
    cmd = [sys.executable, __file__, "--guide-world", "--persons", str(persons), "--orders", str(orders)]
    cmd += ["--events", str(events), "--db-url", db_url]
    subprocess.run(cmd, check=True)


def guide_world_args(ap: argparse.ArgumentParser) -> None:
    """The world's size options of bench/tasks.py and bench/sidebar.py (1,105,000 persons make
    1,000,000 WeCom customers)."""
    ap.add_argument("--persons", type=int, default=1_105_000)
    ap.add_argument("--orders", type=int, default=5_000_000)
    ap.add_argument("--events", type=int, default=3_000_000)


def open_guide_world(args: argparse.Namespace) -> None:
    """Generate the guides' world if needed, then set Django up on it and migrate."""
    db_url = guide_world_url(args.persons, args.orders)
    ensure_guide_world(args.persons, args.orders, args.events, db_url)
    setup_django(db_url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


if __name__ == "__main__":
    main()
