"""Order attribution against hand-computed expectations: the guide on the order, else a clicked
link within 7 days, else the relation active at payment; refunds follow; commission by category,
store and default; the month's report and its CSV within a store manager's scope."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from siyu.attribution import selectors, services
from siyu.attribution.models import Attribution
from siyu.commerce import services as commerce_services
from siyu.commerce.models import Order
from siyu.customers.models import Customer, FollowRelation
from siyu.links import services as link_services
from siyu.links.models import Click
from siyu.profiles import services as profile_services
from tests.helpers import client_for, make_user, org_tree

pytestmark = pytest.mark.django_db
TZ = timezone.get_current_timezone()
EVERYONE = selectors.DataScope(everything=True)


def at(m, d, h=12) -> dt.datetime:
    return dt.datetime(2026, m, d, h, tzinfo=TZ)


@pytest.fixture
def world():
    people = org_tree()
    # 林: followed by store since March, and by east from 6-01 (east later deleted on 6-20)
    lin = Customer.objects.create(external_userid="wmLin", name="林")
    FollowRelation.objects.create(customer=lin, employee=people["store"], added_at=at(3, 1), state="qr-mall")
    FollowRelation.objects.create(
        customer=lin, employee=people["east"], added_at=at(6, 1), status="lost_by_customer", status_changed_at=at(6, 20)
    )
    profile_services.link_backfill()
    return people, lin


def order(no: str, paid: dt.datetime, amount: str, *, guide: str = "", store: str = "", items=None) -> int:
    items = items or [{"sku": "A", "name": "项链", "category": "项链", "quantity": 1, "price": amount}]
    row = {"order_no": no, "external_userid": "wmLin", "paid_at": paid.isoformat(), "amount": amount,
           "guide_userid": guide, "store_code": store, "items": items}  # fmt: skip
    assert commerce_services.ingest_orders([row], source="pos").failed == 0
    return Order.objects.get(order_no=no).id


def click(userid: str, when: dt.datetime) -> None:
    path = link_services.make_link(
        "https://shop.example.com/x", employee_userid=userid, external_userid="wmLin", title="新品"
    )
    link_id = link_services.link_id_of(path.removeprefix(link_services.PATH))
    Click.objects.create(link_id=link_id, at=when, user_agent="ua")


def attributed(order_id: int) -> tuple[str, str]:
    a = Attribution.objects.get(order_id=order_id)
    return a.guide_userid, a.reason


def test_the_rules_in_order(world):
    _people, _lin = world
    named = order("O1", at(6, 10), "100", guide="west")
    clicked = order("O2", at(6, 10), "200")
    click("store", at(6, 5))  # 5 days before O2: the click wins over the relations
    late_click = order("O3", at(7, 10), "300")
    click("east", at(6, 30))  # 10 days before O3: too old; at 7-10 only store's relation is active
    between = order("O4", at(6, 15), "400")  # both follow on 6-15: the latest relation (east)
    before_any = order("O5", at(2, 1), "50")  # before anyone followed
    services.attribute([named, clicked, late_click, between, before_any])
    assert attributed(named) == ("west", "order_guide")
    assert attributed(clicked) == ("store", "link_click")
    assert attributed(late_click) == ("store", "relation")
    assert attributed(between) == ("east", "relation")
    assert attributed(before_any) == ("", "none")
    assert Attribution.objects.get(order_id=clicked).link_id is not None
    assert Attribution.objects.get(order_id=late_click).channel == "qr-mall"


def test_a_refund_is_followed_by_the_walk(world):
    oid = order("R1", at(6, 10), "500")
    state = services.step({})
    assert state["more"] >= 1 and Attribution.objects.get(order_id=oid).refunded == 0
    row = {"order_no": "R1", "external_userid": "wmLin", "paid_at": at(6, 10).isoformat(), "amount": "500",
           "status": "part_refunded", "refunded_amount": "200",
           "items": [{"sku": "A", "name": "项链", "category": "项链", "quantity": 1, "price": "500"}]}  # fmt: skip
    assert commerce_services.ingest_orders([row], source="pos").updated == 1
    from siyu.core import paging

    paging.forget_walks()
    Order.objects.filter(id=oid).update(updated_at=timezone.now() - dt.timedelta(minutes=5))
    services.step(state)
    assert Attribution.objects.get(order_id=oid).refunded == Decimal("200.00")


def test_commission_by_category_then_store_then_default(world):
    services.save_rule("default", "", "2")
    services.save_rule("store", "S1", "3")
    services.save_rule("category", "戒指", "5")
    with pytest.raises(services.RuleError):
        services.save_rule("store", "", "3")
    with pytest.raises(services.RuleError):
        services.save_rule("default", "", "120")
    items = [{"sku": "R", "name": "戒指", "category": "戒指", "quantity": 1, "price": "600"},
             {"sku": "N", "name": "项链", "category": "项链", "quantity": 2, "price": "200"}]  # fmt: skip
    a = order("C1", at(6, 10), "1000", guide="store", store="S1", items=items)  # 600 ring + 400 necklaces
    b = order("C2", at(6, 11), "100", guide="store", store="S9")  # default 2 %
    Order.objects.filter(id=a).update(status="part_refunded", refunded_amount=Decimal("100"))
    services.attribute([a, b])
    com = selectors.commissions(list(Attribution.objects.all()))
    # C1: net 900 split 600:400 → ring 540 × 5 % = 27, necklaces 360 × 3 % (store S1) = 10.80
    assert com[a] == Decimal("37.80")
    assert com[b] == Decimal("2.00")
    report = selectors.report(EVERYONE, dt.date(2026, 6, 1))
    assert report["orders"] == 2 and report["commission"] == Decimal("39.80")
    assert report["guides"][0]["key"] == "store" and report["guides"][0]["net"] == Decimal("1000.00")
    rows = selectors.export_rows(EVERYONE, dt.date(2026, 6, 1))
    assert [r[0] for r in rows] == ["C1", "C2"] and rows[0][-1] == "37.80"


def test_the_report_page_and_a_store_managers_scope(world):
    order("P1", at(6, 10), "100", guide="west")
    order("P2", at(6, 10), "200", guide="store")
    services.attribute(list(Order.objects.values_list("id", flat=True)))
    manager = client_for(make_user("mgr", "store_manager", department_id=2))  # East, with Store below it
    page = manager.get("/attribution/?month=2026-06").content.decode()
    assert "Store" in page and "West" not in page
    csv_text = manager.get("/attribution/export.csv?month=2026-06").content.decode("utf-8-sig")
    assert "P2" in csv_text and "P1" not in csv_text
    assert manager.post("/attribution/rules/", {"scope": "default", "percent": "9"}).status_code == 403
    admin = client_for(make_user("boss", "admin"))
    admin.post("/attribution/rules/", {"scope": "default", "percent": "2"})
    assert "2.00" in admin.get("/attribution/?month=2026-06").content.decode()
    assert admin.get("/attribution/?month=garbage").status_code == 200


def test_the_leaderboard_scores_and_tiers(world):
    people, lin = world
    # June: store sells 2 orders (the second a repurchase) and adds 林; east sells one; west nothing
    order("L1", at(6, 3), "300", guide="store")
    order("L2", at(6, 12), "500", guide="store")
    order("L3", at(6, 13), "100", guide="east")
    services.attribute(list(Order.objects.values_list("id", flat=True)))
    FollowRelation.objects.filter(customer=lin, employee=people["store"]).update(added_at=at(6, 1))
    board = selectors.leaderboard(EVERYONE, dt.date(2026, 6, 1))
    by = {r["userid"]: r for r in board}
    assert set(by) == {"boss", "east", "store", "west"}  # active guides with customer contact ("gone" left)
    assert by["store"]["orders"] == 2 and by["store"]["net"] == Decimal("800.00")
    assert by["store"]["repurchase_rate"] == 0.5 and by["store"]["new_customers"] == 1
    assert board[0]["userid"] == "store" and board[0]["tier"] == "A" and board[-1]["tier"] == "C"
    assert [r["rank"] for r in board] == [1, 2, 3, 4]
    # a store's board: Store (3) only has the guide "store"
    assert [r["userid"] for r in selectors.leaderboard(EVERYONE, dt.date(2026, 6, 1), 3)] == ["store"]
    # tier A earns 10 %, ahead of the default
    services.save_rule("default", "", "1")
    services.save_rule("tier", "a", "10")
    with pytest.raises(services.RuleError):
        services.save_rule("tier", "S", "10")
    report = selectors.report(EVERYONE, dt.date(2026, 6, 1))
    assert {g["key"]: g["commission"] for g in report["guides"]} == {"store": Decimal("80.00"), "east": Decimal("1.00")}
    page = client_for(make_user("boss2", "admin")).get("/attribution/guides/?month=2026-06").content.decode()
    assert "Store" in page and 'data-testid="guide-tier"' in page
