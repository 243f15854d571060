"""The chat sidebar's customer panel at 1,000,000 customers / 5,000,000 orders: server time, against
the console's 360° profile page of the same customers (the page that shows all of it) in the same run.

    python bench/sidebar.py [--persons 1105000] [--orders 5000000] [--customers 300] [--reps 2]

1,105,000 persons make 1,000,000 WeCom customers (90 % of persons are one, and some merged
profiles). The world is bench/segments.py's with 5,000 guides (var/bench/guides/, shared with bench/tasks.py).
A guide's account is signed in as the sidebar signs one in (WeCom OAuth's result: the session's
member); each of their customers (up to ``--customers``) is asked for in the panel
(``/sidebar/customer/<external_userid>/``, as htmx loads it) ``--reps`` times, through the whole
Django stack in this process (middleware, scope checks, templates); the time is the request's, from
the test client's call to its answer. The guide's library holds 40 scripts and 40 materials.
The baseline asks the console's 360° profile page of the same persons (``/profiles/<id>/``).

Target (issue 18): p95 ≤ 150 ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import segments

TARGET_P95_MS = 150.0


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * q))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    segments.guide_world_args(ap)
    ap.add_argument("--customers", type=int, default=300)
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args()
    segments.open_guide_world(args)
    from django.conf import settings
    from django.db.models import Count
    from django.test import Client

    from siyu.accounts import services as account_services
    from siyu.customers.models import FollowRelation
    from siyu.materials import services as material_services
    from siyu.materials.models import Script
    from siyu.profiles import selectors as profile_selectors

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    if not Script.objects.exists():
        for i in range(40):
            material_services.save_script(
                material_services.ScriptInput(
                    title=f"话术{i}", content=f"{{nickname}}您好，我是{{store}}的{{employee}}（{i}）"
                )
            )
            material_services.save_material(
                material_services.MaterialInput(kind="link", title=f"新品{i}", url=f"https://shop.example.com/{i}")
            )
    busiest = (
        FollowRelation.objects.filter(status="active")
        .values("employee_id", "employee__userid")
        .annotate(n=Count("id"))
        .order_by("-n")
        .first()
    )
    userid = busiest["employee__userid"]
    user = account_services.employee_account(userid, name=userid, role="guide")
    client = Client()
    client.force_login(user)
    session = client.session
    session["sidebar_member"] = userid
    session.save()
    rels = list(
        FollowRelation.objects.filter(employee_id=busiest["employee_id"], status="active")
        .select_related("customer")
        .order_by("id")[: args.customers]
    )
    exts = [r.customer.external_userid for r in rels]
    persons = profile_selectors.person_ids_of_customers([r.customer_id for r in rels])  # live persons
    person_of = [persons.get(r.customer_id) for r in rels]

    def timed(url: str, **headers) -> float:
        t0 = time.perf_counter()
        r = client.get(url, **headers)
        took = time.perf_counter() - t0
        assert r.status_code == 200, (url, r.status_code, r.content[:300])
        return took

    for ext in exts[:10]:  # warm-up: templates, first queries
        timed(f"/sidebar/customer/{ext}/", HTTP_HX_REQUEST="true")
    panel = [timed(f"/sidebar/customer/{ext}/", HTTP_HX_REQUEST="true") for _ in range(args.reps) for ext in exts]
    for pid in person_of[:10]:
        if pid:
            timed(f"/profiles/{pid}/")
    page = [timed(f"/profiles/{pid}/") for _ in range(args.reps) for pid in person_of if pid]

    result = {
        "bench": "sidebar",
        "persons": args.persons,
        "orders": args.orders,
        "guide_customers": len(exts),
        "requests": len(panel),
        "p50_ms": round(pct(panel, 0.5), 1),
        "p95_ms": round(pct(panel, 0.95), 1),
        "mean_ms": round(statistics.mean(panel) * 1000, 1),
        "baseline_p50_ms": round(pct(page, 0.5), 1),
        "baseline_p95_ms": round(pct(page, 0.95), 1),
        "ratio_p95": round(pct(page, 0.95) / pct(panel, 0.95), 1),
        "target_p95_ms": TARGET_P95_MS,
        "meets_targets": pct(panel, 0.95) <= TARGET_P95_MS,
    }
    print(
        f"panel for {len(exts)} customers of guide {userid}: p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms; "
        f"360° page p50 {result['baseline_p50_ms']} ms, p95 {result['baseline_p95_ms']} ms",
        file=sys.stderr,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
