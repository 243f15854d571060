"""Encrypted callbacks accepted per second on SQLite, against processing inline in the request.

    python bench/callbacks.py [--events 20000] [--baseline-events 1500] [--customers 2000]

Runs the product as ``siyu serve`` (gunicorn, 2 workers) on a fresh SQLite database under
var/bench/callbacks/, and an emulator seeded under var/bench/sim-callbacks/ (reused). The events
are WeCom's ``edit_external_contact`` for real (employee, customer) pairs of the emulator's
world, encrypted and signed exactly as WeCom sends them, fired over keep-alive connections.
Only answered HTTP 200s count; every event must be in the inbox afterwards.

- accepted: the endpoint verifies, decrypts, stores in the inbox and answers, worker idle.
- accepted under load: ``siyu worker`` is started on that backlog and another ``--events / 2``
  callbacks are fired while it drains (re-reading each customer from the emulator). The worker
  runs at its default lowered CPU priority (``--nice 10``): acknowledging within WeCom's 5 s
  matters more than draining fast.
- processed: the worker's drain rate over everything stored.
- baseline: the same endpoint with ``SIYU_CALLBACK_INLINE=1`` processes each event inside the
  request before answering, as a naive receiver would.

The emulator stands in for WeCom, a remote service whose CPU is not ours: it runs at lowered
CPU priority (nice +10), so that on the 2-core bench machine it does not take the product's share.
Target (issue 2): ≥ 2,000 accepted per second on a 2-core machine.
"""

from __future__ import annotations

import argparse
import base64
import sqlite3
import time

from _common import Product, build_post, emit_result, emulator, fire

from siyu.wecom_sim.wire import build_xml, envelope

TARGET = 2000


def make_requests(product: Product, pairs: list[tuple[str, str]], n: int, start_time: int) -> list[bytes]:
    token = product.env["WECOM_CALLBACK_TOKEN"]
    key = base64.b64decode(product.env["WECOM_CALLBACK_AES_KEY"] + "=")
    corp = product.env["WECOM_CORP_ID"]
    out = []
    for i in range(n):
        userid, ext = pairs[i % len(pairs)]
        xml = build_xml(
            {
                "ToUserName": corp,
                "FromUserName": "sys",
                "CreateTime": start_time - i,  # distinct events, as WeCom would send over time
                "MsgType": "event",
                "Event": "change_external_contact",
                "ChangeType": "edit_external_contact",
                "UserID": userid,
                "ExternalUserID": ext,
            }
        )
        query, body = envelope(xml, token, key, corp)
        out.append(build_post("/wecom/callback/", query, body, product.port))
    return out


def inbox_counts(product: Product) -> dict:
    with sqlite3.connect(product.db) as c:
        return dict(c.execute("select status, count(*) from wecom_callbackinbox group by status").fetchall())


def wait_drained(product: Product, total: int, timeout: float = 1800) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        counts = inbox_counts(product)
        if counts.get("pending", 0) == 0 and sum(counts.values()) >= total:
            return time.perf_counter() - t0
        time.sleep(0.2)
    raise RuntimeError(f"worker did not drain the inbox: {inbox_counts(product)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--baseline-events", type=int, default=1500)
    ap.add_argument("--customers", type=int, default=2000)
    ap.add_argument("--web-workers", type=int, default=2)
    ap.add_argument("--clients", type=int, default=2, help="load-generator processes")
    ap.add_argument("--threads", type=int, default=8, help="connections per load-generator process")
    ap.add_argument("--sim-nice", type=int, default=10, help="CPU priority decrement of the emulator (0: none)")
    args = ap.parse_args()

    sim = emulator("sim-callbacks", customers=args.customers, seed=1, nice=args.sim_nice)
    try:
        sample = sim.control("world/sample", {"n": 500})
        pairs = [(c["followers"][0], c["external_userid"]) for c in sample["customers"] if c.get("followers")]
        now = int(time.time())

        # --- accepted per second, worker idle -----------------------------------------------
        product = Product("callbacks", sim)
        product.migrate()
        product.serve(workers=args.web_workers)
        fire(product.port, make_requests(product, pairs, 500, now - 10**6))  # warm-up
        reqs = make_requests(product, pairs, args.events, now)
        more = make_requests(product, pairs, args.events // 2, now - 2 * 10**6)
        accepted = fire(product.port, reqs, processes=args.clients, threads=args.threads)
        stored = sum(inbox_counts(product).values())
        assert accepted["statuses"] == {200: args.events}, accepted["statuses"]
        assert stored == args.events + 500, f"{stored} stored for {args.events + 500} accepted"

        # --- accepted while the worker drains the backlog --------------------------------------
        started = time.perf_counter()
        product.worker("--interval", "0.05")
        time.sleep(1.0)  # the worker is up and busy
        loaded = fire(product.port, more, processes=args.clients, threads=args.threads)
        # Only answered 200s count; a 503 ("not stored": the row did not commit within 4 s) is
        # reported, and WeCom would retry it.
        loaded_ok = loaded["statuses"].get(200, 0)
        loaded_rejected = len(more) - loaded_ok
        total = stored + loaded_ok
        wait_drained(product, total)
        drain_s = time.perf_counter() - started
        processed = inbox_counts(product)
        total = sum(processed.values())  # a 503 whose row committed late is processed too
        assert processed.get("pending", 0) == 0, processed
        product.stop()

        # --- baseline: processing inline, inside the request ----------------------------------
        inline = Product("callbacks-inline", sim, env={"SIYU_CALLBACK_INLINE": "1"})
        inline.migrate()
        inline.serve(workers=args.web_workers)
        fire(inline.port, make_requests(inline, pairs, 100, now - 10**6))
        base = fire(
            inline.port,
            make_requests(inline, pairs, args.baseline_events, now),
            processes=args.clients,
            threads=args.threads,
        )
        inline.stop()
    finally:
        sim.stop()

    print(
        f"accepted {args.events} in {accepted['elapsed_s']:.2f}s: {accepted['per_s']:.0f}/s, "
        f"p50 {accepted['p50_ms']:.1f} ms, p99 {accepted['p99_ms']:.1f} ms; "
        f"while the worker drains: {loaded_ok} of {len(more)} at {loaded_ok / loaded['elapsed_s']:.0f}/s "
        f"({loaded_rejected} not 200), p99 {loaded['p99_ms']:.1f} ms; "
        f"worker drained {total} in {drain_s:.1f}s ({total / drain_s:.0f}/s, {processed}); "
        f"inline baseline {base['per_s']:.0f}/s, p99 {base['p99_ms']:.1f} ms"
    )
    emit_result(
        {
            "bench": "callbacks",
            "per_s": round(accepted["per_s"]),
            "p50_ms": round(accepted["p50_ms"], 2),
            "p99_ms": round(accepted["p99_ms"], 2),
            "under_load_per_s": round(loaded_ok / loaded["elapsed_s"]),
            "under_load_not_200": loaded_rejected,
            "under_load_p99_ms": round(loaded["p99_ms"], 2),
            "baseline_per_s": round(base["per_s"]),
            "baseline_p99_ms": round(base["p99_ms"], 2),
            "ratio": round(accepted["per_s"] / base["per_s"], 1),
            "processed_per_s": round(total / drain_s),
            "events": args.events,
            "target_per_s": TARGET,
        }
    )


if __name__ == "__main__":
    main()
