"""RFM scores and classes, lifecycle stages and value of a small fixture against hand-computed
expectations; refunds, the loyal rule, lost by relation, merges; incremental == full."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from siyu.commerce.models import Order
from siyu.customers.models import Customer
from siyu.insights import services
from siyu.insights.models import Metrics, Run, StageCount
from siyu.profiles.models import Profile, ProfileKey

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
_seq = iter(range(1, 1_000_000))


def person(name: str) -> Profile:
    return Profile.objects.create(name=name)


def order(p: Profile, days_ago: float, amount: str, status: str = "paid", refunded: str = "0") -> Order:
    return Order.objects.create(
        source="pos",
        order_no=f"SO{next(_seq)}",
        profile=p,
        paid_at=NOW - timedelta(days=days_ago),
        amount=Decimal(amount),
        refunded_amount=Decimal(refunded),
        status=status,
    )


def customer(p: Profile, status: str) -> Customer:
    c = Customer.objects.create(external_userid=f"wm{next(_seq)}", name="c", status=status)
    ProfileKey.objects.create(profile=p, kind="external_userid", value=c.external_userid, customer=c, source="wecom")
    return c


def metrics(p: Profile) -> Metrics:
    return Metrics.objects.get(profile_id=p.id)


@pytest.fixture
def world() -> dict[str, Profile]:
    """Six persons with orders in the window (A–F), and four without (G–K)."""
    ps = {k: person(k) for k in "ABCDEFGHIJK"}
    for d in (1, 5, 10, 15, 20):
        order(ps["A"], d, "100")
    order(ps["B"], 10, "300")
    order(ps["B"], 40, "300")
    order(ps["C"], 30, "1000")
    for d in (60, 100, 150):
        order(ps["D"], d, "50")
    order(ps["E"], 200, "80")
    order(ps["F"], 250, "200")
    order(ps["F"], 300, "200")
    # G: no order; H: one order long ago; I: a fully refunded order
    order(ps["H"], 400, "500")
    order(ps["I"], 5, "999", status="refunded", refunded="999")
    # J: its only WeCom relation lost; K: one lost, one active
    customer(ps["J"], "lost")
    customer(ps["K"], "lost")
    customer(ps["K"], "active")
    return ps


# Hand-computed (docs in siyu.insights.compute):
#   scored persons A–F; recency days [1, 10, 30, 60, 200, 250] -> R cuts (20/40/60/80 %) [10, 30, 60, 200]
#   orders [5, 2, 1, 3, 1, 2] -> sorted [1, 1, 2, 2, 3, 5] -> F cuts [1, 2, 2, 3]
#   amounts [500, 600, 1000, 150, 80, 400] -> sorted [80, 150, 400, 500, 600, 1000] -> M cuts [150, 400, 500, 600]
#   R = 5 - #(cuts < days); F, M = 1 + #(cuts < value)
#   averages: R 20/6 = 3.33, F 15/6 = 2.5, M 16/6 = 2.67 (high = above the average)
EXPECTED = {
    #     orders amount  R  F  M  class                stage
    "A": (5, "500.00", 5, 5, 3, "important_value", "loyal"),
    "B": (2, "600.00", 5, 2, 4, "important_develop", "repeat"),
    "C": (1, "1000.00", 4, 1, 5, "important_develop", "new"),
    "D": (3, "150.00", 3, 4, 1, "normal_keep", "repeat"),
    "E": (1, "80.00", 2, 1, 1, "normal_retain", "dormant"),
    "F": (2, "400.00", 1, 2, 2, "normal_retain", "dormant"),
    "G": (0, "0.00", 0, 0, 0, "", "prospect"),
    "H": (0, "0.00", 0, 0, 0, "", "lost"),
    "I": (0, "0.00", 0, 0, 0, "", "prospect"),
    "J": (0, "0.00", 0, 0, 0, "", "lost"),
    "K": (0, "0.00", 0, 0, 0, "", "prospect"),
}


def test_scores_classes_and_stages_match_the_hand_computed_table(world):
    run = services.recompute_now(NOW)
    assert run.status == Run.Status.DONE and run.persons == 11
    assert run.params["cuts"] == {
        "r": [10, 30, 60, 200],
        "f": [1, 2, 2, 3],
        "m": [15000, 40000, 50000, 60000],
    }
    got = {}
    for key, p in world.items():
        m = metrics(p)
        got[key] = (m.orders, str(m.amount), m.r, m.f, m.m, m.rfm_class, m.stage)
    assert got == {k: (o, a, r, f, mm, c, s) for k, (o, a, r, f, mm, c, s) in EXPECTED.items()}
    a, h = metrics(world["A"]), metrics(world["H"])
    assert a.orders_total == 5 and a.amount_total == Decimal("500.00")
    assert a.first_order_at == NOW - timedelta(days=20) and a.last_order_at == NOW - timedelta(days=1)
    assert h.orders_total == 1 and h.amount_total == Decimal("500.00") and h.orders == 0
    # stage_since: the order that made A loyal; E dormant since its last order turned 180 days old
    assert a.stage_since == NOW - timedelta(days=1)
    assert metrics(world["E"]).stage_since == NOW - timedelta(days=20)
    assert metrics(world["H"]).stage_since == NOW - timedelta(days=35)


def test_value_scores_and_bands(world):
    services.recompute_now(NOW)
    values = {k: metrics(p).value_score for k, p in world.items()}
    bands = {k: metrics(p).value_band for k, p in world.items()}
    assert all(values[k] == 0 and bands[k] == "" for k in "GHIJK")
    assert all(1 <= values[k] <= 100 for k in "ABCDEF")
    # the most orders, recent, mid-high amount beats the oldest, smallest buyers
    assert values["A"] > values["D"] > values["E"]
    assert values["C"] > values["E"] and values["B"] > values["F"]
    for k in "ABCDEF":
        expected = "high" if values[k] >= 70 else "medium" if values[k] >= 40 else "low"
        assert bands[k] == expected


def test_a_refund_changes_the_metrics(world):
    services.recompute_now(NOW)
    b = world["B"]
    first, second = Order.objects.filter(profile=b).order_by("paid_at")
    # a part refund lowers M
    second.status, second.refunded_amount = "part_refunded", Decimal("100")
    second.save()
    services.incremental_update(now=NOW)
    m = metrics(b)
    assert (m.orders, m.amount, m.amount_total) == (2, Decimal("500.00"), Decimal("500.00"))
    # a full refund takes the order out of F and M
    first.status, first.refunded_amount = "refunded", first.amount
    first.save()
    services.incremental_update(now=NOW)
    m = metrics(b)
    assert (m.orders, m.amount, m.orders_total) == (1, Decimal("200.00"), 1)
    assert m.stage == "new"
    assert m.first_order_at == NOW - timedelta(days=10)


@pytest.mark.parametrize(
    ("span_days", "stage"),
    [(30, "loyal"), (29, "loyal"), (31, "repeat")],
)
def test_the_loyal_rule_four_orders_within_30_days(span_days, stage):
    p = person("L")
    for d in (2, 2 + span_days / 3, 2 + 2 * span_days / 3, 2 + span_days):
        order(p, d, "10")
    other = person("other")  # a second scored person
    order(other, 3, "10")
    services.recompute_now(NOW)
    assert metrics(p).stage == stage


def test_loyal_rule_follows_the_settings():
    p = person("L")
    for d in (1, 3, 5):
        order(p, d, "10")
    services.recompute_now(NOW)
    assert metrics(p).stage == "repeat"
    services.update_settings({"loyal_orders": 3, "loyal_days": 7}, recompute=False)
    services.recompute_now(NOW)
    assert metrics(p).stage == "loyal"


def test_lost_when_every_wecom_relation_is_lost(world):
    services.recompute_now(NOW)
    assert metrics(world["J"]).stage == "lost"
    assert metrics(world["K"]).stage == "prospect"
    # a buyer whose only relation is lost is lost too, whatever their orders
    c = customer(world["A"], "active")
    services.recompute_now(NOW)
    assert metrics(world["A"]).stage == "loyal"
    Customer.objects.filter(id=c.id).update(status="lost", updated_at=NOW)
    c.refresh_from_db()
    c.save()  # updated_at: the incremental update watches customers
    services.incremental_update(now=NOW)
    assert metrics(world["A"]).stage == "lost"


def test_a_merge_makes_one_persons_metrics(world):
    services.recompute_now(NOW)
    b, c = world["B"], world["C"]
    c.merged_into = b
    c.save()
    services.incremental_update(now=NOW)
    assert not Metrics.objects.filter(profile_id=c.id).exists()
    m = metrics(b)
    assert (m.orders, m.amount, m.orders_total) == (3, Decimal("1600.00"), 3)
    assert m.stage == "repeat"
    assert m.first_order_at == NOW - timedelta(days=40)
    # unmerge: two persons again
    c.merged_into = None
    c.save()
    services.incremental_update(now=NOW)
    assert (metrics(b).orders, metrics(c).orders) == (2, 1)
    # a full run agrees
    services.recompute_now(NOW)
    assert (metrics(b).orders, metrics(c).orders) == (2, 1)


COMPARED = (
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
    "value_score",
    "value_band",
)


def _rows() -> list[tuple]:
    return list(Metrics.objects.order_by("profile_id").values_list(*COMPARED))


def test_incremental_equals_full_on_the_same_data():
    rng = random.Random(7)
    people = [person(f"p{i}") for i in range(60)]
    for _ in range(240):
        order(rng.choice(people[:50]), rng.uniform(0, 500), f"{rng.uniform(1, 900):.2f}")
    for c in people[:5]:
        customer(c, rng.choice(["lost", "active"]))
    run = services.recompute_now(NOW)
    full = _rows()
    # every order touched: the incremental update recomputes everyone, with the full run's parameters
    Order.objects.update(updated_at=timezone.now())
    out = services.incremental_update(now=NOW)
    assert out is not None and out.persons == len(set(Order.objects.values_list("profile_id", flat=True)))
    assert _rows() == full
    # new orders, refunds and a merge, then the incremental update ...
    for _ in range(40):
        order(rng.choice(people), rng.uniform(0, 400), f"{rng.uniform(1, 900):.2f}")
    for o in Order.objects.order_by("?")[:10]:
        o.status, o.refunded_amount = "refunded", o.amount
        o.save()
    people[7].merged_into = people[3]
    people[7].save()
    services.incremental_update(now=NOW)
    incremental = _rows()
    # ... equals everyone recomputed from scratch with the same parameters
    Metrics.objects.all().delete()
    params = services.compute.Params.from_json(run.params)
    assert params is not None
    services.recompute_profiles([p.id for p in people], params, now=NOW)
    assert _rows() == incremental
    assert not any(r[0] == people[7].id for r in incremental)


def test_weekly_stage_counts_and_moves(world):
    services.recompute_now(NOW)
    week = services.week_of(NOW.date())
    counts = dict(StageCount.objects.filter(week=week, from_stage="").values_list("stage", "count"))
    assert counts == {"prospect": 3, "new": 1, "repeat": 2, "loyal": 1, "dormant": 2, "lost": 2}
    # a week later C buys again (new -> repeat) and E's relation is lost (dormant -> lost)
    later = NOW + timedelta(days=7)
    order(world["C"], -6, "20")
    customer(world["E"], "lost")
    services.recompute_now(later)
    moves = dict(
        ((a, b), n)
        for a, b, n in StageCount.objects.filter(week=services.week_of(later.date()))
        .exclude(from_stage="")
        .values_list("from_stage", "stage", "count")
    )
    assert moves[("new", "repeat")] == 1
    assert moves[("dormant", "lost")] == 1


def test_a_full_run_follows_when_many_orders_came_after_the_last_one(monkeypatch, django_capture_on_commit_callbacks):
    """A first install scores against an empty shop; then a year of history is imported. The
    incremental update notices that the last full run's parameters no longer describe the data
    (many orders since) and queues a full run, once, instead of scoring against them till night."""
    monkeypatch.setattr(services, "DRIFT_MIN_ORDERS", 20)
    rng = random.Random(3)
    people = [person(f"d{i}") for i in range(30)]
    first = services.recompute_now(NOW)  # nothing bought yet
    assert first.params["max_order_id"] == 0
    for _ in range(10):
        order(rng.choice(people), rng.uniform(0, 300), "100.00")
    services.incremental_update(now=NOW)
    assert not Run.objects.filter(trigger="drift").exists()  # a few orders: the parameters hold
    for _ in range(30):
        order(rng.choice(people), rng.uniform(0, 300), f"{rng.uniform(1, 900):.2f}")
    with django_capture_on_commit_callbacks(execute=False):
        services.incremental_update(now=NOW)
        services.incremental_update(now=NOW)  # one run at a time
    drift = Run.objects.filter(trigger="drift")
    assert drift.count() == 1
    services.run_full(drift.get().id, now=NOW)
    done = Run.objects.get(trigger="drift")
    assert done.status == Run.Status.DONE and done.params["max_order_id"] == Order.objects.latest("id").id
    services.incremental_update(now=NOW)
    assert Run.objects.filter(trigger="drift").count() == 1  # current again


def test_an_order_committed_late_with_an_earlier_time_is_still_recomputed(django_capture_on_commit_callbacks):
    """Two imports at once: the tick reads the one that committed first; the other's order, written
    a moment earlier but committed after the tick, is seen at the next tick (core.paging.settle)."""
    first, late = person("first"), person("late")
    order(first, 1, "100")
    services.recompute_now(NOW)
    order(first, 1, "50")
    with django_capture_on_commit_callbacks(execute=True):  # each tick commits
        assert services.incremental_update(now=NOW).persons == 1
    o = order(late, 1, "70")
    t1, t2 = Order.objects.filter(profile=first).order_by("updated_at").values_list("updated_at", flat=True)
    Order.objects.filter(id=o.id).update(updated_at=t1 + (t2 - t1) / 2)  # before the last one the tick read
    with django_capture_on_commit_callbacks(execute=True):
        out = services.incremental_update(now=NOW)
    assert out is not None and out.persons == 1 and metrics(late).orders == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert services.incremental_update(now=NOW).persons == 0  # nothing handed out twice


def test_the_default_band_names_follow_the_viewer_language():
    from django.utils import translation

    from siyu.insights import selectors

    p = person("band")
    order(p, 1, "100")
    services.recompute_now(NOW)
    m = metrics(p)
    assert m.value_band
    assert selectors.metrics_dict(m)["value_band_label"] in ("高价值", "中价值", "低价值")
    with translation.override("en"):
        assert selectors.metrics_dict(m)["value_band_label"] in ("High value", "Medium value", "Low value")
