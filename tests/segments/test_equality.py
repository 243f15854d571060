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
