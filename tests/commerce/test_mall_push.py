"""End to end: the emulator's mall pushes its history, like a POS integration, into a running
product's REST ingestion API (``POST /api/v1/cdp/members|orders|events`` with an API token), and the
members, orders and events land; a second push changes nothing; live orders keep coming."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import NoReverseMatch, reverse

from tests.sim.helpers import own_sim, wait_for

sim = own_sim(customers=300, seed=3, demo=True)


def _has_ingestion_api() -> bool:
    try:
        reverse("api-v1:post_orders")
    except NoReverseMatch:
        return False
    return True


pytestmark = pytest.mark.skipif(
    not _has_ingestion_api(), reason="needs the product's POST /api/v1/cdp/orders (part A, siyu.commerce.api)"
)


def drained(sim, timeout: float = 120) -> dict:
    return wait_for(lambda: (s := sim.control("mall/status"))["outbox"]["pending"] == 0 and s, timeout, 0.3)


def test_history_lands_in_the_product_and_a_second_push_changes_nothing(sim, transactional_db, live_server, admin):
    from siyu.accounts import services as accounts
    from siyu.commerce.models import Event, Order
    from siyu.profiles.models import IdentityConflict, Profile

    _row, token = accounts.create_api_token(admin, "mall (emulator)")
    sim.control("mall/seed", {"months": 3})
    sim.control("mall/connect", {"url": live_server.url, "token": token})
    try:
        pushed = sim.control("mall/history", {"months": 3})
        status = drained(sim)
        assert status["row_errors"] == 0, status["recent_row_errors"]
        rows = pushed["members"] + pushed["orders"] + pushed["events"]
        assert status["answers"]["created"] + status["answers"].get("updated", 0) == rows, status["answers"]

        orders = Order.objects.filter(source="mall")
        assert orders.count() == pushed["orders"] > 200
        assert Event.objects.filter(source="mall").count() == pushed["events"]
        assert Profile.objects.exclude(member_no="").count() >= pushed["members"] * 0.95
        # what the mall says it sold is what the product holds
        sample = sim.control("mall/sample", {"n": 20})["orders"]
        for row in sample:
            o = orders.get(order_no=row["order_no"])
            assert o.amount == Decimal(row["amount"]) and o.status == row["status"]
            assert o.refunded_amount == Decimal(row["refunded_amount"])
            assert o.store_code == row.get("store_code", "") and o.channel == row["channel"]
        assert orders.filter(status="refunded").exists() and orders.filter(status="part_refunded").exists()
        # the gifts paid by one member and sent to another's phone: conflicts for an operator, no merge
        assert IdentityConflict.objects.exists()

        # the same history again: nothing changes
        sim.control("mall/history", {"months": 3})
        again = drained(sim)
        assert again["answers"]["unchanged"] == rows and again["row_errors"] == 0
        assert Order.objects.filter(source="mall").count() == pushed["orders"]

        # live: new orders keep arriving while the emulator runs
        sim.control("mall/live", {"on": True, "orders_per_minute": 300})
        wait_for(lambda: Order.objects.filter(source="mall").count() >= pushed["orders"] + 10, 60, 0.5)
        sim.control("mall/live", {"on": False})
        final = drained(sim)
        assert final["row_errors"] == 0, final["recent_row_errors"]
    finally:
        sim.control("mall/live", {"on": False})
        sim.control("mall/connect", {"url": ""})
