"""Orders from a CSV file, including identity resolution: rows per second of ``siyu import orders``.

    python bench/import.py [--rows 100000] [--customers 30000] [--postgres URL]

Generates (once, cached under var/bench/import/) an orders CSV in the documented file format: one
line per item (1–3 items an order), ~30,000 customers each known by a few keys (member number,
phone in assorted spellings, unionid, openid) of which each order carries a random mix, so the
import creates profiles, adds keys and merges profiles as it goes. Then, into a fresh database
(SQLite under var/bench/import/, or the PostgreSQL database named by ``--postgres``, dropped and
created), it runs the real command path (``call_command("import", ...)``, the code ``siyu import``
runs) and times it; then imports the same file again and checks that nothing changed (no order,
item, profile, key or history row written; ``updated_at`` untouched).

baseline: a naive row-by-row ORM import (per line: look up each key, create the profile and keys,
get-or-create the order, create the item) of the file's first ``--baseline-rows`` lines (5,000) in
the same run, on the same database, in one transaction rolled back afterwards.
Target (issue 17): ≥ 10,000 rows/s including identity resolution.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import sys
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
WORK = ROOT / "var" / "bench" / "import"
TARGET = 10_000
HEADER = [
    "order_no",
    "unionid",
    "phone",
    "member_no",
    "openid",
    "store_code",
    "guide_userid",
    "channel",
    "paid_at",
    "amount",
    "discount",
    "status",
    "refunded_amount",
    "item_sku",
    "item_name",
    "item_category",
    "item_brand",
    "item_quantity",
    "item_price",
]
CATEGORIES = ["戒指", "项链", "耳环", "手链", "吊坠", "手镯"]
BRANDS = ["金韵", "瑞珠", "月光", "星辰"]


def generate(path: Path, rows: int, customers: int, seed: int = 17) -> None:
    rnd = random.Random(seed)
    people = []
    for c in range(customers):
        keys = {"member_no": f"M{c:07d}" if rnd.random() < 0.7 else ""}
        keys["phone"] = f"1{rnd.choice('3456789')}{c:09d}" if rnd.random() < 0.8 else ""
        keys["unionid"] = f"oU{c:010d}x" if rnd.random() < 0.3 else ""
        keys["openid"] = f"oM{c:010d}y" if rnd.random() < 0.25 else ""
        if not any(keys.values()):
            keys["member_no"] = f"M{c:07d}"
        people.append(keys)
    start = datetime(2025, 11, 1, 9, 0, 0)
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(HEADER)
    written, n = 0, 0
    while written < rows:
        n += 1
        keys = people[
            min(int(rnd.paretovariate(1.2)) - 1, customers - 1) if rnd.random() < 0.3 else rnd.randrange(customers)
        ]
        present = [k for k, v in keys.items() if v]
        chosen = set(rnd.sample(present, rnd.randint(1, len(present))))
        phone = keys["phone"]
        if phone and "phone" in chosen and rnd.random() < 0.3:
            phone = f"+86 {phone[:3]}-{phone[3:7]}-{phone[7:]}"
        items = rnd.choice([1, 1, 2, 2, 3])
        prices = [Decimal(rnd.randrange(99, 20000)) for _ in range(items)]
        amount = sum(prices)
        status = rnd.choices(["paid", "part_refunded", "refunded"], [90, 5, 5])[0]
        refunded = amount if status == "refunded" else (prices[0] if status == "part_refunded" else Decimal(0))
        paid = start + timedelta(minutes=n * 5 + rnd.randrange(5))
        for i in range(items):
            cat = rnd.choice(CATEGORIES)
            w.writerow(
                [
                    f"SO{n:08d}",
                    keys["unionid"] if "unionid" in chosen else "",
                    phone if "phone" in chosen else "",
                    keys["member_no"] if "member_no" in chosen else "",
                    keys["openid"] if "openid" in chosen else "",
                    f"S{n % 40:02d}",
                    f"guide{n % 300:03d}",
                    rnd.choice(["store", "mall", "miniapp"]),
                    paid.strftime("%Y-%m-%d %H:%M:%S"),
                    f"{amount:.2f}",
                    "0.00",
                    status,
                    f"{refunded:.2f}",
                    f"SKU{rnd.randrange(2000):05d}",
                    f"{cat}{i}",
                    cat,
                    rnd.choice(BRANDS),
                    1,
                    f"{prices[i]:.2f}",
                ]
            )
            written += 1
    path.write_text(out.getvalue(), encoding="utf-8")


def setup_django(pg_url: str | None) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    db = WORK / "siyu.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    os.environ["SIYU_VAR_DIR"] = str(WORK)
    os.environ["DATABASE_URL"] = pg_url or f"sqlite:///{db}"
    os.environ["SIYU_LOG_LEVEL"] = "WARNING"
    os.environ["DJANGO_SETTINGS_MODULE"] = "siyu.settings"
    import django

    django.setup()


def fresh_pg_database(url: str) -> None:
    import psycopg

    u = urlparse(url)
    name = u.path.lstrip("/")
    with psycopg.connect(u._replace(path="/postgres").geturl(), autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}"')


def naive_import(path: Path, limit: int) -> int:
    """Row by row through the ORM, as a first version would: returns the lines imported."""
    from django.db import transaction
    from django.utils import timezone

    from siyu.commerce.models import Order, OrderItem
    from siyu.profiles.models import Profile, ProfileKey
    from siyu.profiles.services import normalise_phone

    tz = timezone.get_default_timezone()
    done = 0
    with transaction.atomic():
        with path.open(encoding="utf-8") as f:
            for row in csv.DictReader(f):
                if done >= limit:
                    break
                keys = [
                    (k, normalise_phone(row[k]) if k == "phone" else row[k])
                    for k in ("unionid", "member_no", "phone", "openid")
                ]
                keys = [(k, v) for k, v in keys if v]
                profile = None
                for kind, value in keys:
                    key = ProfileKey.objects.filter(kind=kind, value=value).select_related("profile").first()
                    if key:
                        profile = key.profile
                        break
                if profile is None:
                    profile = Profile.objects.create()
                for kind, value in keys:
                    ProfileKey.objects.get_or_create(kind=kind, value=value, defaults={"profile": profile})
                paid = timezone.make_aware(datetime.fromisoformat(row["paid_at"]), tz)
                order, _ = Order.objects.get_or_create(
                    source="naive",
                    order_no=row["order_no"],
                    defaults={
                        "profile": profile,
                        "paid_at": paid,
                        "amount": Decimal(row["amount"]),
                        "status": row["status"],
                        "refunded_amount": Decimal(row["refunded_amount"]),
                        "store_code": row["store_code"],
                    },
                )
                OrderItem.objects.create(
                    order=order,
                    profile=profile,
                    paid_at=paid,
                    sku=row["item_sku"],
                    name=row["item_name"],
                    category=row["item_category"],
                    brand=row["item_brand"],
                    quantity=int(row["item_quantity"]),
                    price=Decimal(row["item_price"]),
                )
                done += 1
        transaction.set_rollback(True)
    return done


def snapshot() -> dict:
    from django.db.models import Max

    from siyu.commerce.models import Order, OrderItem
    from siyu.profiles.models import IdentityConflict, Profile, ProfileHistory, ProfileKey

    return {
        "orders": Order.objects.count(),
        "items": OrderItem.objects.count(),
        "items_max_id": OrderItem.objects.aggregate(m=Max("id"))["m"],
        "orders_updated": str(Order.objects.aggregate(m=Max("updated_at"))["m"]),
        "profiles": Profile.objects.count(),
        "merged": Profile.objects.exclude(merged_into=None).count(),
        "keys": ProfileKey.objects.count(),
        "history": ProfileHistory.objects.count(),
        "conflicts": IdentityConflict.objects.count(),
    }


def run_import(path: Path) -> tuple[dict, float]:
    from django.core.management import call_command

    out = io.StringIO()
    t0, c0 = time.perf_counter(), time.process_time()
    call_command("import_data", "orders", str(path), "--source", "pos", "--json", "--no-progress", stdout=out)
    took, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"  import: {took:.1f} s wall, {cpu:.1f} s CPU", file=sys.stderr)
    counts = json.loads(out.getvalue().strip().splitlines()[-1])
    counts["cpu_s"] = round(cpu, 2)
    return counts, took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--customers", type=int, default=30_000)
    ap.add_argument("--baseline-rows", type=int, default=5_000)
    ap.add_argument("--postgres", metavar="URL", help="e.g. postgres://postgres@127.0.0.1:5432/siyu_bench_import")
    args = ap.parse_args()

    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"orders-{args.rows}-{args.customers}.csv"
    if not path.exists():
        print(f"generating {path} ...", file=sys.stderr)
        generate(path, args.rows, args.customers)
    if args.postgres:
        fresh_pg_database(args.postgres)
    setup_django(args.postgres)
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)

    first, took = run_import(path)
    after_first = snapshot()
    second, took2 = run_import(path)
    after_second = snapshot()
    changed = second["created"] + second["updated"] + second["failed"] + (after_first != after_second)

    base_rows = min(args.baseline_rows, args.rows)
    t0 = time.perf_counter()
    base_done = naive_import(path, base_rows)
    base_took = time.perf_counter() - t0

    rate = args.rows / took
    base_rate = base_done / base_took
    result = {
        "bench": "import",
        "db": connection.vendor,
        "rows": args.rows,
        "orders": after_first["orders"],
        "profiles": after_first["profiles"],
        "merged_profiles": after_first["merged"],
        "keys": after_first["keys"],
        "import_s": round(took, 2),
        "reimport_s": round(took2, 2),
        "first": first,
        "second": second,
        "rows_per_s": round(rate),
        "reimport_rows_per_s": round(args.rows / took2),
        "baseline_rows": base_done,
        "baseline_rows_per_s": round(base_rate),
        "ratio": round(rate / base_rate, 1),
        "target_rows_per_s": TARGET,
        "reimport_changed": int(changed),
        # this process's CPU time (SQLite works in it; PostgreSQL's server does not count): the rate
        # a machine that is not shared would approach, and the load average during the run
        "rows_per_cpu_s": round(args.rows / first["cpu_s"]),
        "load_avg_1m": round(os.getloadavg()[0], 1),
    }
    print(
        f"{connection.vendor}: {args.rows:,} lines ({after_first['orders']:,} orders, {after_first['profiles']:,} "
        f"profiles, {after_first['merged']:,} merged) in {took:.1f} s = {rate:,.0f} rows/s; re-import {took2:.1f} s, "
        f"changed {changed}; naive row-by-row ORM on {base_done:,} lines: {base_rate:,.0f} rows/s"
    )
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
