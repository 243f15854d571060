"""Full sync of 100,000 customers from the emulator into a fresh product database.

    python bench/sync.py [--customers 100000] [--workers 8] [--baseline-sample 2000]

The emulator's world (100,000 customers, seed 1) is seeded once under var/bench/sim-sync-100k/
and reused. The product runs ``siyu sync`` as its own process on a fresh SQLite database under
var/bench/sync/ (or BENCH_DATABASE_URL), talking to the emulator over HTTP like it would to WeCom.

- sync: ``siyu sync`` — org, tags, customers through ``batch/get_by_user`` (cursor pages of 100,
  chains of members read by a thread pool, several pages written per transaction), groups,
  reconciliation. Reported: the run's own duration (SyncRun started → finished) and the wall time
  of the command, with the customers phase alone.
- baseline (naive sync, measured on a sample and extrapolated): ``externalcontact/list`` for every
  member, then one ``externalcontact/get`` per customer, each customer written in its own
  transaction (one reader, per-customer writes). It runs on its own fresh database for the first
  ``--baseline-sample`` customers; its time is extrapolated linearly to the world's size (the list
  calls are counted in full, not extrapolated).
Target (issue 3): full sync of 100,000 customers ≤ 60 s.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import datetime

from _common import ROOT, Product, emit_result, emulator

TARGET_S = 60


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def run_info(product: Product) -> dict:
    """The last SyncRun of the product's SQLite database."""
    with sqlite3.connect(product.db) as c:
        row = c.execute(
            "select status, started_at, finished_at, counts from customers_syncrun order by id desc limit 1"
        ).fetchone()
        customers = c.execute("select count(*) from customers_customer").fetchone()[0]
        relations = c.execute("select count(*) from customers_followrelation").fetchone()[0]
    status, started, finished, counts = row
    return {
        "status": status,
        "seconds": (_ts(finished) - _ts(started)).total_seconds() if finished else None,
        "counts": json.loads(counts),
        "customers": customers,
        "relations": relations,
    }


def baseline_worker(sample: int) -> None:
    """Runs inside the product's environment (a fresh database): the naive sync on ``sample``
    customers. Prints one JSON line with its timings."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")
    django.setup()
    from django.db import transaction

    from siyu.customers import services
    from siyu.org import selectors as org_selectors
    from siyu.sync.services import FullSync, claim
    from siyu.wecom import gateway

    # org and tags as the real sync does (small), so relations can be written
    run = claim()
    sync = FullSync(run, workers=1)
    sync.client = gateway.contact()
    sync._org()
    sync._tags()
    client = sync.client
    employees = org_selectors.employee_ids()
    tags = services.known_tags()

    t0 = time.perf_counter()
    ext_ids: list[str] = []
    for userid in run.state.get("follow_userids", []):
        try:
            ext_ids.extend(client.external_contact.list(userid).get("external_userid") or [])
        except gateway.WeComAPIError as e:
            if e.errcode != 84061:
                raise
    ext_ids = list(dict.fromkeys(ext_ids))
    list_s = time.perf_counter() - t0

    t1 = time.perf_counter()
    done = 0
    for ext in ext_ids[:sample]:
        detail = services.fetch_customer(ext, client)
        if detail is None:
            continue
        with transaction.atomic():
            services.write_follow_rows(services.rows_from_detail(detail), source="sync", employees=employees, tags=tags)
        done += 1
    get_s = time.perf_counter() - t1
    print(json.dumps({"list_s": list_s, "get_s": get_s, "sampled": done, "listed": len(ext_ids)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=8, help="siyu sync --workers")
    ap.add_argument("--baseline-sample", type=int, default=2000)
    ap.add_argument("--baseline-worker", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.baseline_worker:
        baseline_worker(args.baseline_worker)
        return

    name = "sim-sync-100k" if args.customers == 100_000 else f"sim-sync-{args.customers}"
    sim = emulator(name, customers=args.customers, seed=1)
    try:
        world = sim.control("world/sample", {"n": 1})["stats"]

        # --- the full sync ---------------------------------------------------------------------
        product = Product("sync", sim)
        product.migrate()
        t0 = time.perf_counter()
        proc = product.siyu("sync", "--workers", str(args.workers), "--quiet", check=False)
        wall_s = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"siyu sync failed: {proc.stderr[-3000:]}")
        info = run_info(product)
        assert info["status"] == "done", info
        # the sync must have every customer WeCom lists (customers_listed = with a visible relation)
        assert info["customers"] == world["customers_listed"], (info["customers"], world["customers_listed"])

        # --- baseline: naive per-customer get, on a sample ---------------------------------------
        base = Product("sync-baseline", sim)
        base.migrate()
        t1 = time.perf_counter()
        res = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "sync.py"), "--baseline-worker", str(args.baseline_sample)],
            env=base.env,
            capture_output=True,
            text=True,
            check=False,
        )
        base_wall = time.perf_counter() - t1
        if res.returncode != 0:
            raise SystemExit(f"baseline failed: {res.stderr[-3000:]}")
        b = json.loads(res.stdout.strip().splitlines()[-1])
    finally:
        sim.stop()

    per_customer = b["get_s"] / b["sampled"]
    base_s = b["list_s"] + per_customer * b["listed"]
    print(
        f"full sync of {info['customers']:,} customers / {info['relations']:,} relations: {info['seconds']:.1f}s "
        f"(siyu sync wall {wall_s:.1f}s, {info['customers'] / info['seconds']:,.0f} customers/s); "
        f"naive baseline (list per member + get per customer, per-customer writes): {b['sampled']:,} customers in "
        f"{b['get_s']:.1f}s ({per_customer * 1000:.1f} ms each) + list {b['list_s']:.1f}s → ~{base_s:,.0f}s for "
        f"{b['listed']:,}; speed-up ×{base_s / info['seconds']:.0f} (baseline process {base_wall:.1f}s)"
    )
    emit_result(
        {
            "bench": "sync",
            "customers": info["customers"],
            "relations": info["relations"],
            "sync_s": round(info["seconds"], 2),
            "wall_s": round(wall_s, 2),
            "customers_per_s": round(info["customers"] / info["seconds"]),
            "workers": args.workers,
            "baseline": (
                "naive: externalcontact/list per member + externalcontact/get per customer, one reader, "
                "per-customer transactions; sampled and extrapolated"
            ),
            "baseline_sample": b["sampled"],
            "baseline_ms_per_customer": round(per_customer * 1000, 2),
            "baseline_extrapolated_s": round(base_s, 1),
            "speedup": round(base_s / info["seconds"], 1),
            "target_s": TARGET_S,
            "database": "postgresql" if os.environ.get("BENCH_DATABASE_URL", "").startswith("postgres") else "sqlite",
        }
    )


if __name__ == "__main__":
    main()
