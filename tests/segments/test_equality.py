"""The engine's count == the SQL compiler's count == a brute-force Python evaluation, for random
definitions on a random small world; and again after incremental writes."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings

from siyu.accounts.selectors import DataScope
from siyu.commerce.models import Order
from siyu.insights.models import Metrics
from siyu.segments import engine, sqlcompile
from siyu.segments.grammar import parse
from tests.segments import world as W
from tests.segments.brute import Brute
from tests.segments.strategies import definitions

SCOPES = [DataScope(everything=True), DataScope(department_id=2), DataScope(wecom_userid="emp2"), DataScope()]
HSET = hsettings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@pytest.fixture
def index_settings(settings):
    settings.SIYU_SEGMENT_INDEX = True
    settings.SIYU_SEGMENT_INDEX_BACKGROUND = False
    settings.SIYU_SEGMENT_INDEX_CHECK_S = 0
    settings.SIYU_SEGMENT_INDEX_WECOM_CHECK_S = 0
    engine.reset()
    yield settings
    engine.reset()


def _check(w: W.World, brute: Brute, index: engine.Index, definition: dict, scope: DataScope) -> None:
    node = parse(definition)
    expected = brute.count(node, scope)
    sql = sqlcompile.sql_count(node, scope, W.NOW)
    fast = index.count(node, scope, W.NOW)
    assert (fast, sql) == (expected, expected), definition
    if scope.everything:
        assert index.person_ids(node, scope, W.NOW) == sqlcompile.sql_person_ids(node, scope, W.NOW)


@pytest.mark.django_db
def test_random_definitions_agree(index_settings):
    w = W.build(seed=11, persons=36)
    index = engine.get_index()
    assert index is not None
    brute = Brute(W.NOW)

    @HSET
    @given(definitions(w), st_scope())
    def check(definition, scope):
        _check(w, brute, index, definition, scope)

    check()


def st_scope():
    from hypothesis import strategies as st

    return st.sampled_from(SCOPES)


@pytest.mark.django_db
def test_agree_after_incremental_writes(index_settings):
    w = W.build(seed=5, persons=30)
    index = engine.get_index()
    assert index is not None
    rng = random.Random(99)
    # appended sources: new profiles (with customers), orders, items, events; metrics recomputed
    W.add_profiles(w, rng, 8)
    W.add_orders(w, rng, 25)
    W.add_metrics(w, rng)
    # refunds (updated rows) and a merge (the WeCom part and the clusters)
    for o in Order.objects.filter(status="paid").order_by("id")[:5]:
        o.status, o.refunded_amount = "refunded", o.amount
        o.save()
    for o in Order.objects.filter(status="refunded").order_by("-id")[:2]:
        o.status, o.refunded_amount = "paid", Decimal(0)
        o.save()
    W.merge_some(w, rng, 2)
    Metrics.objects.filter(profile_id=w.profiles[0]).update(
        stage="loyal", computed_at=timezone.now() + timedelta(days=1)
    )
    assert index.refresh(background=False)
    brute = Brute(W.NOW)

    @HSET
    @given(definitions(w), st_scope())
    def check(definition, scope):
        _check(w, brute, index, definition, scope)

    check()


@pytest.mark.django_db
def test_agree_after_tags_taken_off_and_group_stays_ended(index_settings):
    """Changes neither a new row nor ``Customer.updated_at`` shows (a tag taken off a relation by
    a sync, a corp tag retired, a group dismissed) reach the index at its next WeCom check,
    through the customers' timeline and the tags' change time, not only through the ten-minute
    rebuild."""
    from siyu.customers import services as customer_services
    from siyu.customers.models import Customer, CustomerEvent, FollowTag, Tag
    from siyu.groups import services as group_services
    from siyu.groups.models import GroupChat, GroupMember

    w = W.build(seed=7, persons=30)
    index = engine.get_index()
    assert index is not None
    everyone = SCOPES[0]

    def agree() -> None:
        index.refresh(background=False)
        brute = Brute(W.NOW)  # reads the rows as they are now
        for tag in w.tags:
            for op in ("any", "none"):
                _check(w, brute, index, {"op": "and", "items": [{"field": "tag", "op": op, "value": [tag]}]}, everyone)
        for g in w.groups:
            for op in ("any", "none"):
                _check(w, brute, index, {"op": "and", "items": [{"field": "group", "op": op, "value": [g]}]}, everyone)

    agree()
    changed_at = Customer.objects.order_by("-updated_at").values_list("updated_at", flat=True).first()
    # a sync's untag: the row goes, a timeline entry is written (what write_follow_rows does)
    ft = FollowTag.objects.order_by("id").first()
    assert ft is not None
    FollowTag.objects.filter(id=ft.id).delete()
    CustomerEvent.objects.create(
        customer_id=ft.customer_id, kind=CustomerEvent.UNTAGGED, at=timezone.now(), detail={"tags": ["x"]}
    )
    agree()
    # a corp tag retired by the admin
    other = FollowTag.objects.values_list("tag_id", flat=True).order_by("tag_id").first()
    assert other is not None
    customer_services.delete_tags([Tag.objects.get(id=other).tag_id])
    assert not FollowTag.objects.filter(tag_id=other).exists()
    agree()
    # a group dismissed: every stay ends
    stayed = GroupMember.objects.filter(left_at__isnull=True).values_list("group_id", flat=True).first()
    assert stayed is not None
    assert group_services.dismiss_group(GroupChat.objects.get(id=stayed).chat_id)
    agree()
    assert Customer.objects.order_by("-updated_at").values_list("updated_at", flat=True).first() == changed_at


@pytest.mark.django_db
@pytest.mark.parametrize("delta_max", [engine.DELTA_MAX, 1], ids=["delta", "compacted"])
def test_agree_after_an_orders_items_are_rewritten(index_settings, monkeypatch, delta_max):
    """A changed order's items are written anew (what commerce.ingest_orders does on a correction
    or a refund): what it no longer holds stops matching "bought", at the next refresh (with the
    new rows in the delta, or compacted into the sorted ones)."""
    from siyu.commerce.models import OrderItem

    monkeypatch.setattr(engine, "DELTA_MAX", delta_max)

    w = W.build(seed=13, persons=30)
    index = engine.get_index()
    assert index is not None
    everyone = SCOPES[0]
    rng = random.Random(3)

    def agree() -> None:
        index.refresh(background=False)
        brute = Brute(W.NOW)
        for dim, values in (("sku", W.SKUS), ("category", W.CATEGORIES), ("brand", W.BRANDS)):
            for v in values:
                for days in (None, 90):
                    cond = {"field": "bought", "op": dim, "value": [v]} | ({"days": days} if days else {})
                    _check(w, brute, index, {"op": "and", "items": [cond]}, everyone)

    agree()
    for rounds in range(3):
        orders = list(Order.objects.filter(status="paid").order_by("id")[rounds * 4 : rounds * 4 + 4])
        for o in orders:
            OrderItem.objects.filter(order=o).delete()
            OrderItem.objects.create(
                order=o,
                profile_id=o.profile_id,
                paid_at=o.paid_at,
                sku=rng.choice(W.SKUS),
                category=rng.choice(W.CATEGORIES),
                brand=rng.choice(W.BRANDS),
            )
            o.save()  # updated_at moves, as every order write does
        # one refunded in full, one revived
        Order.objects.filter(id=orders[0].id).update(status="refunded", updated_at=timezone.now())
        agree()
        Order.objects.filter(id=orders[0].id).update(status="paid", updated_at=timezone.now())
        agree()


@pytest.mark.django_db
def test_items_and_events_committed_late_below_the_watermark_are_found(index_settings):
    """Two writers: one took the lower ids and committed after the index had read the higher ones.
    The index keeps looking for ids it passed (engine.Gaps) and counts them when they come."""
    from siyu.commerce.models import Event, EventType, OrderItem

    w = W.build(seed=21, persons=20)
    index = engine.get_index()
    assert index is not None
    o = Order.objects.filter(status="paid").order_by("id").first()
    assert o is not None
    item_id = OrderItem.objects.order_by("-id").values_list("id", flat=True)[0]
    event_id = Event.objects.order_by("-id").values_list("id", flat=True)[0]
    etype = EventType.objects.get(code=W.EVENT_CODES[-1])

    def item(pk: int, sku: str) -> None:
        OrderItem.objects.create(id=pk, order=o, profile_id=o.profile_id, paid_at=o.paid_at, sku=sku)

    def event(pk: int) -> None:
        Event.objects.create(
            id=pk, source="app", event_id=f"late{pk}", type_id=etype.id, profile_id=o.profile_id, at=W.NOW
        )

    item(item_id + 2, "LATE2")
    event(event_id + 2)
    index.refresh(background=False)  # reads ids up to +2: +1 is not there yet
    item(item_id + 1, "LATE1")
    event(event_id + 1)
    index.refresh(background=False)
    brute = Brute(W.NOW)
    for definition in (
        {"op": "and", "items": [{"field": "bought", "op": "sku", "value": ["LATE1"]}]},
        {"op": "and", "items": [{"field": "event", "type": etype.code, "op": "gte", "value": 2}]},
    ):
        _check(w, brute, index, definition, SCOPES[0])
    assert (
        index.count(
            parse({"op": "and", "items": [{"field": "bought", "op": "sku", "value": ["LATE1"]}]}), SCOPES[0], W.NOW
        )
        == 1
    )
    assert not index.item_gaps.due and not index.event_gaps.due
