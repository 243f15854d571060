"""The WeCom customers' backfill into profiles (issue 17): N customers (default 1,000,000; a tenth
with a unionid, 2% of those shared with an imported member) linked to persons in one set-based
transaction, then the incremental link of 1,000 new customers.

    python bench/profiles_link.py [--customers N] [--pg]

Prints one JSON object as its last line: the backfill's seconds, the incremental step's seconds,
and the counts it checked (every customer has its key; persons = customers - shared unionids)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
WORK = ROOT / "var" / "bench" / "profiles_link"


def setup_django(pg: bool) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    db = WORK / "siyu.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    os.environ["SIYU_VAR_DIR"] = str(WORK)
    os.environ["DATABASE_URL"] = "postgresql://postgres@127.0.0.1:5432/bench_profiles_link" if pg else f"sqlite:///{db}"
    os.environ["SIYU_LOG_LEVEL"] = "WARNING"
    os.environ["DJANGO_SETTINGS_MODULE"] = "siyu.settings"
    if pg:
        import psycopg

        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
            c.execute('DROP DATABASE IF EXISTS "bench_profiles_link" WITH (FORCE)')
            c.execute('CREATE DATABASE "bench_profiles_link"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def fill(n: int) -> None:
    """N customers written straight into the table (the benchmark's data, not the product's path)."""
    from django.db import connection, transaction
    from django.utils import timezone

    now = connection.ops.adapt_datetimefield_value(timezone.now())  # the column's stored form
    with transaction.atomic(), connection.cursor() as cur:
        batch = []
        for i in range(1, n + 1):
            unionid = f"U{i:08d}" if i % 10 == 0 else ""
            batch.append((f"wm{i:010d}", f"客户{i}", unionid, now, now))
            if len(batch) == 10_000:
                _insert(cur, batch)
                batch = []
        if batch:
            _insert(cur, batch)


def _insert(cur, batch) -> None:
    cur.executemany(
        "INSERT INTO customers_customer (external_userid, name, avatar, type, gender, unionid, position, corp_name, "
        "corp_full_name, status, search_text, created_at, updated_at) "
        "VALUES (%s, %s, '', 1, 0, %s, '', '', '', 'active', '', %s, %s)",
        batch,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--pg", action="store_true")
    args = ap.parse_args()
    setup_django(args.pg)
    from siyu.profiles import services
    from siyu.profiles.models import Profile, ProfileKey

    n = args.customers
    fill(n)
    # members imported first, sharing the unionid of 2% of the customers with one
    shared = [{"unionid": f"U{i:08d}", "member_no": f"M{i}"} for i in range(10, n + 1, 500)]
    for start in range(0, len(shared), 2000):
        services.resolve_keys(shared[start : start + 2000], source="import")
    members = len(shared)

    t0 = time.perf_counter()
    linked = services.link_backfill()
    backfill_s = time.perf_counter() - t0
    assert linked == n, linked
    keys = ProfileKey.objects.filter(kind="external_userid").count()
    persons = Profile.objects.filter(merged_into__isnull=True).count()
    assert keys == n and persons == n, (keys, persons)  # members joined by their customers

    from django.db import connection
    from django.utils import timezone

    state = {"after_id": n, "since": timezone.now().isoformat(), "since_id": 0}
    fill_more = 1000
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cur:
        _insert(cur, [(f"wmnew{i}", f"新客{i}", "", now, now) for i in range(fill_more)])
    t0 = time.perf_counter()
    while True:  # the timer's runs, back to back while a run fills its batch
        state = services.link_step(state)
        if state.pop("more", 0) < services.LINK_BATCH:
            break
    step_s = time.perf_counter() - t0
    assert ProfileKey.objects.filter(kind="external_userid").count() == n + fill_more
    out = {
        "bench": "profiles_link",
        "db": "postgresql" if args.pg else "sqlite",
        "customers": n,
        "members_sharing_unionid": members,
        "backfill_s": round(backfill_s, 2),
        "incremental_1000_s": round(step_s, 2),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
