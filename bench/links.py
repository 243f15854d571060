"""Trackable-link redirects per second, every click stored, against the Django view.

    python bench/links.py [--clicks 20000] [--baseline-clicks 4000] [--links 10000]

Runs the product as ``siyu serve`` (2 web workers) on a fresh SQLite database under
var/bench/links/ with ``--links`` short links (as guides' sends would mint them), and fires
``GET /l/<code>`` over keep-alive connections from 2 load-generator processes, each click a random
link. A click counts when it was answered 302 with the link's target; afterwards every answered
click must be a stored row (``lost`` = answered minus stored, must be 0).

- fast path: ``siyu serve``'s ASGI route for ``/l/`` (the click group-committed before the answer).
- baseline: the same redirect through the Django view and its middleware
  (``SIYU_LINK_FAST_PATH=0``), each click its own write.

Target (issue 18): ≥ 2,000 redirects per second on 2 cores, p99 ≤ 20 ms, 0 clicks lost.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import sys

from _common import Product, emit_result, fire

TARGET_PER_S = 2000
TARGET_P99_MS = 20.0


def make_links(product: Product, n: int) -> list[str]:
    """``n`` links in the product's database, minted by the product's own service; their codes."""
    os.environ.update(product.env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "siyu.settings"
    import django  # lazy: the product's environment must be in place first

    django.setup()
    from siyu.links import services  # lazy: needs django.setup()

    return [
        services.make_link(
            f"https://shop.example.com/item/{i}?utm_source=wecom",
            employee_userid=f"guide{i % 500}",
            external_userid=f"wmBench{i:07d}",
            material_id=i % 50,
            title=f"素材 {i % 50}",
        ).removeprefix(services.PATH)
        for i in range(n)
    ]


def requests_for(codes: list[str], n: int, port: int, seed: int) -> list[bytes]:
    rnd = random.Random(seed)
    return [
        (
            f"GET /l/{rnd.choice(codes)} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "User-Agent: Mozilla/5.0 (Linux; Android 14) MicroMessenger/8.0.50\r\nConnection: keep-alive\r\n\r\n"
        ).encode()
        for _ in range(n)
    ]


def stored_clicks(product: Product) -> int:
    with sqlite3.connect(product.db) as c:
        return c.execute("select count(*) from links_click").fetchone()[0]


def run(product: Product, codes: list[str], n: int, args) -> dict:
    product.serve(workers=args.web_workers)
    try:
        fire(product.port, requests_for(codes, 300, product.port, 1))  # warm-up (the process caches targets)
        before = stored_clicks(product)
        result = fire(
            product.port, requests_for(codes, n, product.port, 2), processes=args.clients, threads=args.threads
        )
        result["stored"] = stored_clicks(product) - before
    finally:
        product.stop()
    answered = result["statuses"].get(302, 0)
    result["answered"] = answered
    result["lost"] = answered - result["stored"]
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clicks", type=int, default=20000)
    ap.add_argument("--baseline-clicks", type=int, default=4000)
    ap.add_argument("--links", type=int, default=10000)
    ap.add_argument("--web-workers", type=int, default=2)
    ap.add_argument("--clients", type=int, default=2, help="load-generator processes")
    ap.add_argument("--threads", type=int, default=8, help="connections per load-generator process")
    args = ap.parse_args()

    product = Product("links", None)
    product.migrate()
    codes = make_links(product, args.links)
    fast = run(product, codes, args.clicks, args)

    product.env["SIYU_LINK_FAST_PATH"] = "0"
    base = run(product, codes, args.baseline_clicks, args)

    ok = (
        fast["per_s"] >= TARGET_PER_S
        and fast["p99_ms"] <= TARGET_P99_MS
        and fast["lost"] == 0
        and fast["answered"] == args.clicks
    )
    print(
        f"fast path: {fast['answered']} of {args.clicks} redirected at {fast['per_s']:.0f}/s, "
        f"p50 {fast['p50_ms']:.1f} ms, p99 {fast['p99_ms']:.1f} ms, "
        f"{fast['stored']} clicks stored ({fast['lost']} lost); "
        f"Django view baseline: {base['per_s']:.0f}/s, p99 {base['p99_ms']:.1f} ms ({base['lost']} lost)",
        file=sys.stderr,
    )
    emit_result(
        {
            "bench": "links",
            "per_s": round(fast["per_s"]),
            "p50_ms": round(fast["p50_ms"], 2),
            "p99_ms": round(fast["p99_ms"], 2),
            "clicks": args.clicks,
            "answered": fast["answered"],
            "stored": fast["stored"],
            "lost": fast["lost"],
            "baseline_per_s": round(base["per_s"]),
            "baseline_p99_ms": round(base["p99_ms"], 2),
            "baseline_lost": base["lost"],
            "ratio": round(fast["per_s"] / base["per_s"], 1),
            "target_per_s": TARGET_PER_S,
            "target_p99_ms": TARGET_P99_MS,
            "meets_targets": ok,
        }
    )


if __name__ == "__main__":
    main()
