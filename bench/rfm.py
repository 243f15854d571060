"""RFM, lifecycle and value: the full recompute over 1,000,000 persons / 5,000,000 orders, then the
incremental update after 10,000 new orders.

    python bench/rfm.py [--persons 1000000] [--orders 5000000] [--postgres [URL]] [--reseed]

Seeds a product database directly (raw SQL, no emulator): persons (1 % of them merged into
another, so clusters are exercised), orders spread Pareto-like over them (about a third of the
persons never buy), paid over the last two years, lognormal amounts, 3 % part-refunded and 2 %
refunded. The seeded SQLite file is kept under var/bench/rfm/ and copied for each run (so every
run starts from the same data); with ``--postgres`` the database of DATABASE_URL (or the URL
given) is seeded once and the run's new orders are removed at the end.

Measured: ``services.full_recompute`` (read every order through commerce's selectors, numpy
scores, bulk upsert of every person's row) on a database with no metrics yet, then the same again
over existing rows (the nightly case); then 10,000 new orders are inserted and
``services.incremental_update`` recomputes their persons.

baseline: the naive recompute most Django code would write — per person, read its orders through
the ORM, compute in Python, ``update_or_create`` its row — timed on 2,000 persons and extrapolated.
Targets (issue 17): full ≤ 60 s, incremental ≤ 5 s.

Each run is reported as wall and CPU seconds of this process (``full_cpu_s``...), and by step
(``steps_wall_cpu_s``: reading the persons and the orders, scoring, writing...: [wall, cpu]); on
PostgreSQL the server's work shows in the wall time only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
WORK = ROOT / "var" / "bench" / "rfm"
TARGET_FULL_S = 60.0
TARGET_INCREMENTAL_S = 5.0
NOW = datetime(2026, 11, 1, tzinfo=UTC)
SPAN_DAYS = 730


def setup_django(db_url: str) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    os.environ["SIYU_VAR_DIR"] = str(WORK)
    os.environ["DATABASE_URL"] = db_url
    os.environ["SIYU_LOG_LEVEL"] = "WARNING"
    os.environ["DJANGO_SETTINGS_MODULE"] = "siyu.settings"
    import django

    django.setup()


def ensure_pg_database(url: str) -> None:
    import psycopg

    u = urlparse(url)
    name = u.path.lstrip("/")
    admin = u._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as c:
        if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            c.execute(f'CREATE DATABASE "{name}"')


def seeded(persons: int, orders: int) -> bool:
    from siyu.commerce.models import Order
    from siyu.profiles.models import Profile

    return Profile.objects.count() == persons and Order.objects.count() == orders


def _ts(dt: datetime, pg: bool) -> str:
    return dt.isoformat() if pg else dt.strftime("%Y-%m-%d %H:%M:%S")


def _drop_indexes(table: str) -> list[str]:
    """SQLite: drop a table's indexes (rebuilt once after the rows, much faster than row by row)."""
    from django.db import connection

    out = []
    with connection.cursor() as cur:
        cur.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s AND sql IS NOT NULL", [table]
        )
        for name, ddl in cur.fetchall():
            out.append(ddl)
            cur.execute(f'DROP INDEX "{name}"')
    return out


def _create_indexes(ddls: list[str]) -> None:
    from django.db import connection

    with connection.cursor() as cur:
        for ddl in ddls:
            cur.execute(ddl)


def seed(persons: int, orders: int) -> float:
    """Profiles and orders with raw SQL (numpy-generated values)."""
    import numpy as np
    from django.db import connection

    t0 = time.monotonic()
    pg = connection.vendor == "postgresql"
    rng = np.random.default_rng(17)
    with connection.cursor() as cur:
        for table in ("insights_metrics", "insights_stagecount", "insights_run", "insights_cursor", "commerce_order"):
            cur.execute(f"DELETE FROM {table}")
    if pg:
        from siyu.profiles.models import Profile

        if Profile.objects.count() != persons:
            with connection.cursor() as cur:
                cur.execute("DELETE FROM profiles_profile")
            _seed_profiles(persons, rng, pg)
        _seed_pg_orders(persons, orders)
        with connection.cursor() as cur:
            cur.execute("ANALYZE")
        return time.monotonic() - t0
    with connection.cursor() as cur:
        cur.execute("DELETE FROM profiles_profile")
    _seed_profiles(persons, rng, pg)
    print(f"  profiles: {time.monotonic() - t0:.0f}s", file=sys.stderr)
    _seed_sqlite_orders(persons, orders, rng, t0)
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    return time.monotonic() - t0


def _seed_pg_orders(persons: int, orders: int) -> None:
    """PostgreSQL: orders generated by the server (generate_series), indexes built after."""
    from django.db import connection

    t0 = time.monotonic()
    with connection.cursor() as cur:
        cur.execute(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE tablename = 'commerce_order' AND indexname NOT LIKE '%%pkey'"
        )
        indexes = cur.fetchall()
        for name, _ddl in indexes:
            cur.execute(f'ALTER TABLE commerce_order DROP CONSTRAINT IF EXISTS "{name}"')
            cur.execute(f'DROP INDEX IF EXISTS "{name}"')
        buyers = persons * 2 // 3
        cur.execute(
            "INSERT INTO commerce_order (source, order_no, profile_id, keys, store_code, guide_userid, channel, "
            "paid_at, amount, discount, refunded_amount, status, digest, created_at, updated_at) "
            "SELECT 'pos', 'SO' || lpad(g::text, 9, '0'), pid, '{}', 'S' || lpad((pid %% 40)::text, 2, '0'), '', "
            "'store', %s::timestamptz - make_interval(secs => power(u, 1.3) * 730 * 86400), amt, 0, "
            "CASE WHEN k < 0.02 THEN amt WHEN k < 0.05 THEN round(amt * 0.3, 2) ELSE 0 END, "
            "CASE WHEN k < 0.02 THEN 'refunded' WHEN k < 0.05 THEN 'part_refunded' ELSE 'paid' END, '', %s, %s "
            "FROM generate_series(1, %s) g, "
            "LATERAL (SELECT 1 + floor(%s * power(random() + 0 * g, 2.5))::bigint AS pid, "
            "random() + 0 * g AS u, random() + 0 * g AS k, "
            "round(exp(5.5 + (random() + random() + random() + random() - 2 + 0 * g) * 1.7)::numeric, 2) AS amt) r",
            [NOW, NOW - timedelta(days=1), NOW - timedelta(days=1), orders, buyers],
        )
        print(f"  orders: {orders:,} ({time.monotonic() - t0:.0f}s)", file=sys.stderr)
        for _name, ddl in indexes:
            cur.execute(ddl)
    print(f"  indexes ({time.monotonic() - t0:.0f}s)", file=sys.stderr)


def _seed_profiles(persons: int, rng, pg: bool) -> None:
    from django.db import connection, transaction

    created = _ts(NOW - timedelta(days=SPAN_DAYS + 30), pg)
    # profiles: ids 1..persons; 1 % merged into the profile before them
    merged = rng.random(persons) < 0.01
    merged[0] = False
    pcols = (
        "id, name, unionid, phone, member_no, gender, member_level, points, join_store, attributes, custom, "
        "merged_into_id, created_at, updated_at"
    )
    rows = [(i + 1, (i if merged[i] else None)) for i in range(persons)]
    indexes = _drop_indexes("profiles_profile") if not pg else []
    if pg:
        with connection.cursor() as cur, cur.cursor.copy(f"COPY profiles_profile ({pcols}) FROM STDIN") as copy:
            for pid, into in rows:
                copy.write_row((pid, "", "", "", "", 0, "", 0, "", "{}", "{}", into, created, created))
    else:
        values = f"?, '', '', '', '', 0, '', 0, '', '{{}}', '{{}}', ?, '{created}', '{created}'"
        sql = f"INSERT INTO profiles_profile ({pcols}) VALUES ({values})"
        with transaction.atomic():
            connection.ensure_connection()
            connection.connection.executemany(sql, rows)
    _create_indexes(indexes)
    with transaction.atomic(), connection.cursor() as cur:
        # merged profiles point at a live one (merges are kept flat)
        cur.execute(
            "UPDATE profiles_profile SET merged_into_id = (SELECT p.id FROM profiles_profile p "
            "WHERE p.id < profiles_profile.id AND p.merged_into_id IS NULL ORDER BY p.id DESC LIMIT 1) "
            "WHERE merged_into_id IS NOT NULL"
        )
        if pg:
            cur.execute("SELECT setval(pg_get_serial_sequence('profiles_profile', 'id'), %s)", [persons])


def _seed_sqlite_orders(persons: int, orders: int, rng, t0: float) -> None:
    import numpy as np
    from django.db import connection, transaction

    pg = False
    # orders: a third of the persons never buy; the others Pareto-like
    buyers = rng.permutation(persons)[: persons * 2 // 3] + 1
    weights = rng.pareto(1.5, len(buyers)) + 1
    who = rng.choice(buyers, size=orders, p=weights / weights.sum())
    ages = rng.random(orders) ** 1.3 * SPAN_DAYS * 86_400
    paid = (NOW.timestamp() - ages).astype(np.int64)
    amount = np.round(np.exp(rng.normal(5.5, 1.0, orders)), 2)
    kind = rng.random(orders)
    status = np.where(kind < 0.02, "refunded", np.where(kind < 0.05, "part_refunded", "paid"))
    refunded = np.where(kind < 0.02, amount, np.where(kind < 0.05, np.round(amount * 0.3, 2), 0.0))
    stamp = _ts(NOW - timedelta(days=1), pg)
    paid_text = np.char.replace(np.datetime_as_string(paid.astype("datetime64[s]"), unit="s"), "T", " ")
    if pg:
        paid_text = np.char.add(paid_text, "+00")
    cols = (
        "source, order_no, profile_id, keys, store_code, guide_userid, channel, paid_at, amount, discount, "
        "refunded_amount, status, digest, created_at, updated_at"
    )
    indexes = _drop_indexes("commerce_order") if not pg else []
    chunk = 500_000
    for start in range(0, orders, chunk):
        end = min(orders, start + chunk)
        rows = list(
            zip(
                (f"SO{i:09d}" for i in range(start, end)),
                who[start:end].tolist(),
                (f"S{int(w) % 40:02d}" for w in who[start:end]),
                paid_text[start:end].tolist(),
                (f"{a:.2f}" for a in amount[start:end]),
                (f"{r:.2f}" for r in refunded[start:end]),
                status[start:end].tolist(),
                strict=False,
            )
        )
        if pg:
            with connection.cursor() as cur, cur.cursor.copy(f"COPY commerce_order ({cols}) FROM STDIN") as copy:
                for no, pid, store, pa, am, rf, st in rows:
                    copy.write_row(("pos", no, pid, "{}", store, "", "store", pa, am, "0", rf, st, "", stamp, stamp))
        else:
            sql = (
                f"INSERT INTO commerce_order ({cols}) "
                f"VALUES ('pos', ?, ?, '{{}}', ?, '', 'store', ?, ?, 0, ?, ?, '', '{stamp}', '{stamp}')"
            )
            with transaction.atomic():
                connection.ensure_connection()
                connection.connection.executemany(sql, rows)
        print(f"  orders: {end:,} ({time.monotonic() - t0:.0f}s)", file=sys.stderr)
    _create_indexes(indexes)
    print(f"  indexes ({time.monotonic() - t0:.0f}s)", file=sys.stderr)


def add_orders(n: int, persons: int) -> None:
    """``n`` new orders (now) for random persons, as an import would write them."""
    import numpy as np
    from django.db import connection, transaction
    from django.utils import timezone

    pg = connection.vendor == "postgresql"
    rng = np.random.default_rng(99)
    who = rng.integers(1, persons + 1, n)
    now = timezone.now()
    stamp = _ts(now, pg) if pg else now.strftime("%Y-%m-%d %H:%M:%S.%f")
    sql = (
        "INSERT INTO commerce_order (source, order_no, profile_id, keys, store_code, guide_userid, channel, "
        "paid_at, amount, discount, refunded_amount, status, digest, created_at, updated_at) "
        "VALUES ('bench-new', %s, %s, '{}', 'S01', '', 'store', %s, %s, 0, 0, 'paid', '', %s, %s)"
    )
    paid = _ts(NOW - timedelta(hours=1), pg)
    rows = [(f"NEW{i:07d}", int(who[i]), paid, f"{100 + i % 900}.00", stamp, stamp) for i in range(n)]
    with transaction.atomic(), connection.cursor() as cur:
        cur.executemany(sql, rows)


class Phases:
    """Wall and CPU seconds (this process: on PostgreSQL the server's work shows as wall only) of
    the recompute's steps, by wrapping the functions that do them."""

    STEPS = (
        ("profile_selectors", "person_map", "persons"),
        ("services", "_read_orders", "read_orders"),
        ("services", "_relation_lost", "relations"),
        ("compute", "aggregate", "aggregate"),
        ("compute", "derive_params", "params"),
        ("compute", "score", "score"),
        ("services", "_write", "write"),
        ("services", "_delete_metrics", "delete_merged"),
        ("commerce_selectors", "orders_changed_since", "changed_orders"),
        ("profile_selectors", "clusters", "clusters"),
    )

    def __init__(self) -> None:
        from siyu.insights import services

        self.current: dict[str, list[float]] = {}
        modules = {
            "services": services,
            "compute": services.compute,
            "profile_selectors": services.profile_selectors,
            "commerce_selectors": services.commerce_selectors,
        }
        for module, name, label in self.STEPS:
            target = modules[module]
            setattr(target, name, self._wrap(getattr(target, name), label))

    def _wrap(self, fn, label: str):
        def timed(*args, **kwargs):
            w, c = time.monotonic(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                got = self.current.setdefault(label, [0.0, 0.0])
                got[0] += time.monotonic() - w
                got[1] += time.process_time() - c

        return timed

    def run(self, fn):
        """``fn()`` timed: (its result, wall s, cpu s, {step: [wall s, cpu s]})."""
        self.current = {}
        w, c = time.monotonic(), time.process_time()
        out = fn()
        wall, cpu = time.monotonic() - w, time.process_time() - c
        steps = {k: [round(v[0], 2), round(v[1], 2)] for k, v in self.current.items()}
        print(f"  {wall:.2f}s wall, {cpu:.2f}s cpu; steps [wall, cpu]: {json.dumps(steps)}", file=sys.stderr)
        return out, wall, cpu, steps


def naive_recompute(person_ids: list[int]) -> float:
    """The per-person ORM way (the baseline): read the cluster's orders, compute, update_or_create."""
    from decimal import Decimal

    from siyu.commerce.models import Order
    from siyu.insights.models import Metrics
    from siyu.profiles.models import Profile

    t0 = time.monotonic()
    since = NOW - timedelta(days=365)
    for pid in person_ids:
        cluster = [pid, *Profile.objects.filter(merged_into_id=pid).values_list("id", flat=True)]
        rows = [
            o
            for o in Order.objects.filter(profile_id__in=cluster).order_by("paid_at")
            if o.status != "refunded" and (o.refunded_amount < o.amount or o.amount == 0)
        ]
        inw = [o for o in rows if o.paid_at >= since]
        last = rows[-1].paid_at if rows else None
        loyal = sum(1 for o in rows if last and o.paid_at >= last - timedelta(days=30))
        stage = "prospect"
        if rows:
            days = (NOW - last).days
            stage = (
                "lost"
                if days >= 365
                else "dormant"
                if days >= 180
                else "loyal"
                if loyal >= 4
                else "repeat"
                if len(inw) >= 2
                else "new"
            )
        Metrics.objects.update_or_create(
            profile_id=pid,
            defaults={
                "orders": len(inw),
                "amount": sum((o.amount - o.refunded_amount for o in inw), Decimal(0)),
                "orders_total": len(rows),
                "amount_total": sum((o.amount - o.refunded_amount for o in rows), Decimal(0)),
                "first_order_at": rows[0].paid_at if rows else None,
                "last_order_at": last,
                "stage": stage,
                "computed_at": NOW,
            },
        )
    return time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--persons", type=int, default=1_000_000)
    ap.add_argument("--orders", type=int, default=5_000_000)
    ap.add_argument("--new-orders", type=int, default=10_000)
    ap.add_argument("--baseline-persons", type=int, default=2_000)
    ap.add_argument("--postgres", nargs="?", const=os.environ.get("DATABASE_URL", ""), default=None, metavar="URL")
    ap.add_argument("--reseed", action="store_true")
    args = ap.parse_args()

    WORK.mkdir(parents=True, exist_ok=True)
    base = WORK / f"base-{args.persons}-{args.orders}.sqlite3"
    run_db = WORK / "run.sqlite3"
    if args.postgres is not None:
        url = args.postgres or "postgres://postgres@127.0.0.1:5432/siyu_bench_rfm"
        if not url.startswith("postgres"):
            sys.exit("--postgres needs a postgres:// URL (or DATABASE_URL)")
        ensure_pg_database(url)
        setup_django(url)
    else:
        if args.reseed or not base.exists():
            for p in (base, Path(f"{base}-wal"), Path(f"{base}-shm")):
                p.unlink(missing_ok=True)
            setup_django(f"sqlite:///{base}")
        else:
            for p in (run_db, Path(f"{run_db}-wal"), Path(f"{run_db}-shm")):
                p.unlink(missing_ok=True)
            shutil.copyfile(base, run_db)
            setup_django(f"sqlite:///{run_db}")

    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from siyu.commerce.models import Order
    from siyu.insights import services
    from siyu.insights.models import Metrics, Run

    seed_s = 0.0
    if args.reseed or not seeded(args.persons, args.orders):
        print(f"seeding {args.persons:,} persons, {args.orders:,} orders into {connection.vendor} ...", file=sys.stderr)
        seed_s = seed(args.persons, args.orders)
        if connection.vendor == "sqlite":
            connection.close()
            shutil.copyfile(base, run_db)
            for p in (run_db, Path(f"{run_db}-wal"), Path(f"{run_db}-shm")):
                if p != run_db:
                    p.unlink(missing_ok=True)
            os.environ["DATABASE_URL"] = f"sqlite:///{run_db}"
            connection.settings_dict["NAME"] = str(run_db)
    Order.objects.filter(source="bench-new").delete()
    Metrics.objects.all().delete()
    Run.objects.all().delete()
    services.get_settings()

    phases = Phases()
    print("full recompute (no rows yet) ...", file=sys.stderr)
    first, full_s, full_cpu, full_steps = phases.run(lambda: services.full_recompute(now=NOW))
    Run.objects.create(status=Run.Status.DONE, params=first.params.to_json(), trigger="bench")
    print(f"  ({first.persons:,} persons, {first.orders:,} orders)", file=sys.stderr)

    print("full recompute again (rows exist: the nightly case) ...", file=sys.stderr)
    _, again_s, again_cpu, again_steps = phases.run(lambda: services.full_recompute(now=NOW + timedelta(days=1)))

    add_orders(args.new_orders, args.persons)
    print(f"incremental after {args.new_orders:,} new orders ...", file=sys.stderr)
    inc, incremental_s, inc_cpu, inc_steps = phases.run(
        lambda: services.incremental_update(now=NOW + timedelta(days=1))
    )
    assert inc is not None
    print(f"  ({inc.persons:,} persons)", file=sys.stderr)

    sample = list(Metrics.objects.order_by("profile_id").values_list("profile_id", flat=True)[: args.baseline_persons])
    naive_s = naive_recompute(sample)
    naive_full_s = naive_s * first.persons / max(1, len(sample))
    naive_inc_s = naive_s * inc.persons / max(1, len(sample))
    Order.objects.filter(source="bench-new").delete()
    out = {
        "bench": "rfm",
        "database": connection.vendor,
        "persons": first.persons,
        "orders": first.orders,
        "full_s": round(full_s, 2),
        "full_again_s": round(again_s, 2),
        "incremental_s": round(incremental_s, 3),
        "full_cpu_s": round(full_cpu, 2),
        "full_again_cpu_s": round(again_cpu, 2),
        "incremental_cpu_s": round(inc_cpu, 3),
        "incremental_persons": inc.persons,
        "new_orders": args.new_orders,
        "baseline_naive_s_per_1000": round(naive_s * 1000 / max(1, len(sample)), 3),
        "baseline_full_s": round(naive_full_s, 1),
        "baseline_incremental_s": round(naive_inc_s, 2),
        "full_speedup": round(naive_full_s / full_s, 1),
        "incremental_speedup": round(naive_inc_s / incremental_s, 1),
        "target_full_s": TARGET_FULL_S,
        "target_incremental_s": TARGET_INCREMENTAL_S,
        "full_ok": full_s <= TARGET_FULL_S and again_s <= TARGET_FULL_S,
        "incremental_ok": incremental_s <= TARGET_INCREMENTAL_S,
        "seed_s": round(seed_s, 1),
        "steps_wall_cpu_s": {"full": full_steps, "full_again": again_steps, "incremental": inc_steps},
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
