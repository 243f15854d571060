"""The next morning's rule-based guide tasks for 1,000,000 customers and 5,000 guides, against
evaluating the rules customer by customer.

    python bench/tasks.py [--persons 1105000] [--orders 5000000] [--baseline-sample 2000]

1,105,000 persons make 1,000,000 WeCom customers (90 % of persons are one, and some merged
profiles). The world is bench/segments.py's (profiles, WeCom customers and relations, 5,000,000 orders,
3,000,000 events, metrics with each person's first and last order), generated with 250 stores of
20 guides into var/bench/guides/ and reused. Six rules run (browsed without ordering, repurchase
due, birthday in 3 days, points expiring, dormant 90 days, new customer day 1/3/7) for the morning
after the world's "now", through ``guidetasks.services.generate`` (the worker's 06:00 run):

- run_s: the whole run (reads, rules, assignment to guides, inserts);
- rerun_s / rerun_created: the same morning again, which must make nothing;
- duplicates: (rule, customer, period) groups with more than one task, must be 0;
- baseline: the same rules asked customer by customer (the ORM reads a per-customer service would
  make: the relation, the metrics, the birthday, the browse events and later orders) on a sample,
  scaled to every customer.

Target (issue 18): ≤ 60 s, exactly one task per (rule, customer, period).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import time

import segments

TARGET_S = 60.0


def rules() -> list:
    from siyu.guidetasks import services

    specs = [
        ("browsed", "浏览未下单", {"hours": 24}),
        ("repurchase", "复购提醒", {"fraction": 0.83}),
        ("birthday", "生日关怀", {"days_before": 3}),
        ("points", "积分到期", {"days_before": 7}),
        ("dormant", "沉睡唤醒", {"days": 90}),
        ("newcomer", "新客跟进", {"days": [1, 3, 7]}),
    ]
    return [services.save_rule(services.RuleInput(kind=k, name=n, params=p)) for k, n, p in specs]


def naive(now: dt.datetime, sample: list[int]) -> float:
    """Seconds per customer when each customer is asked the rules one by one."""
    from siyu.commerce.models import Event, Order
    from siyu.customers.models import FollowRelation
    from siyu.insights.models import Metrics
    from siyu.profiles.models import Profile, ProfileKey

    t0 = time.perf_counter()
    target = (now + dt.timedelta(days=3)).date()
    for cid in sample:
        rel = FollowRelation.objects.filter(customer_id=cid, status="active").order_by("-added_at").first()
        key = ProfileKey.objects.filter(customer_id=cid).first()
        if rel is None or key is None:
            continue
        person = Profile.objects.get(id=key.profile_id)
        m = Metrics.objects.filter(profile_id=person.id).first()
        if m and m.last_order_at and m.orders_total >= 2:
            cycle = (m.last_order_at - m.first_order_at) / (m.orders_total - 1)
            _ = now >= m.last_order_at + cycle * 0.83
        if m and m.last_order_at:
            _ = now - m.last_order_at >= dt.timedelta(days=90)
        _ = person.birthday and (person.birthday.month, person.birthday.day) == (target.month, target.day)
        browse = Event.objects.filter(profile_id=person.id, at__gte=now - dt.timedelta(days=2)).order_by("at").first()
        if browse is not None:
            _ = Order.objects.filter(profile_id=person.id, paid_at__gte=browse.at).exists()
        _ = (now - rel.added_at).days in (1, 3, 7)
    return (time.perf_counter() - t0) / max(1, len(sample))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    segments.guide_world_args(ap)
    ap.add_argument("--baseline-sample", type=int, default=2000)
    args = ap.parse_args()
    segments.open_guide_world(args)
    from django.db import connection
    from django.utils import timezone

    from siyu.customers.models import Customer
    from siyu.guidetasks import services
    from siyu.guidetasks.models import Rule, Summary, Task
    from siyu.org.models import Employee

    Task.objects.all().delete()
    Rule.objects.all().delete()
    Summary.objects.all().delete()
    made_rules = rules()
    now = services.next_morning(segments.NOW)
    guides = Employee.objects.count()
    customers = Customer.objects.count()

    t0 = time.perf_counter()
    made = services.generate(now)
    run_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    again = services.generate(now)
    rerun_s = time.perf_counter() - t1
    with connection.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM (SELECT rule_id, customer_id, period FROM guidetasks_task "
            "GROUP BY rule_id, customer_id, period HAVING COUNT(*) > 1) AS d"
        )
        duplicates = cur.fetchone()[0]
        cur.execute("SELECT COUNT(DISTINCT employee_userid) FROM guidetasks_task")
        guides_with_tasks = cur.fetchone()[0]
    total = sum(made.values())
    by_kind = {r.kind: made.get(r.id, 0) for r in made_rules}

    ids = list(Customer.objects.values_list("id", flat=True)[: args.persons])
    sample = random.Random(5).sample(ids, min(args.baseline_sample, len(ids)))
    per_customer = naive(now, sample)
    baseline_s = per_customer * customers
    ok = run_s <= TARGET_S and duplicates == 0 and sum(again.values()) == 0
    print(
        f"{total:,} tasks for {guides_with_tasks:,} of {guides:,} guides over {customers:,} customers in {run_s:.1f} s "
        f"({by_kind}); again: {sum(again.values())} in {rerun_s:.1f} s; duplicates {duplicates}; "
        f"customer by customer: {per_customer * 1000:.2f} ms each → {baseline_s:.0f} s",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "bench": "tasks",
                "customers": customers,
                "guides": guides,
                "run_s": round(run_s, 2),
                "tasks_created": total,
                "by_rule": by_kind,
                "guides_with_tasks": guides_with_tasks,
                "rerun_s": round(rerun_s, 2),
                "rerun_created": sum(again.values()),
                "duplicates": duplicates,
                "baseline_s": round(baseline_s, 1),
                "baseline_per_customer_ms": round(per_customer * 1000, 3),
                "ratio": round(baseline_s / run_s, 1),
                "target_s": TARGET_S,
                "meets_targets": ok,
                "now": timezone.localtime(now).isoformat(),
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
