"""Snapshots, the daily count history, member pages and the index switch."""

from __future__ import annotations

from collections import defaultdict

import pytest

from siyu.accounts.selectors import DataScope
from siyu.profiles.models import Profile, ProfileKey
from siyu.segments import engine, selectors, services, sqlcompile
from siyu.segments.grammar import parse
from siyu.segments.models import Segment, SegmentCount, SnapshotMember
from tests.segments import world as W

EVERYTHING = DataScope(everything=True)


def definition(w: W.World) -> dict:
    return {
        "op": "or",
        "items": [
            {"field": "relation", "op": "eq", "value": "none"},
            {"field": "tag", "op": "any", "value": w.tags[:3]},
        ],
    }


@pytest.fixture
def world(db):
    return W.build(seed=8, persons=40)


def test_snapshot_has_each_member_with_each_of_its_customers(world):
    DEF = definition(world)
    seg = services.save_segment("快照", DEF)
    snap = services.snapshot(seg, EVERYTHING, "broadcast:1", now=W.NOW)
    members = sqlcompile.sql_person_ids(parse(DEF), EVERYTHING, W.NOW)
    customers: dict[int, set] = defaultdict(set)
    for key in ProfileKey.objects.filter(kind="external_userid", customer__isnull=False):
        profile = Profile.objects.get(id=key.profile_id)
        customers[profile.merged_into_id or profile.id].add(key.customer_id)
    expected = {(p, c) for p in members for c in (customers[p] or {None})}
    got = set(SnapshotMember.objects.filter(snapshot=snap).values_list("profile_id", "customer_id"))
    assert got == expected
    assert snap.profiles == len(members) and snap.segment_id == seg.pk and snap.purpose == "broadcast:1"
    assert snap.customers == sum(len(customers[p]) for p in members)
    assert any(c is None for _p, c in got) and any(len(customers[p]) > 1 for p in members)


def test_daily_counts_record_every_live_segment(world):
    DEF = definition(world)
    a = services.save_segment("a", DEF)
    b = services.save_segment("b", {"op": "and", "items": []})
    services.archive_segment(b)
    assert services.record_counts() == 1
    assert SegmentCount.objects.filter(segment=a).count() == 2
    assert SegmentCount.objects.filter(segment=b).count() == 1
    services.ensure_daily_scheduled()
    from siyu.core.models import Timer

    assert Timer.objects.filter(kind=services.DAILY_KIND, status="pending").count() == 1
    services.ensure_daily_scheduled()
    assert Timer.objects.filter(kind=services.DAILY_KIND, status="pending").count() == 1


@pytest.mark.parametrize("indexed", [True, False])
def test_member_pages_and_counts_with_and_without_the_index(world, settings, indexed):
    settings.SIYU_SEGMENT_INDEX = indexed
    DEF = definition(world)
    engine.reset()
    expected = sqlcompile.sql_person_ids(parse(DEF), EVERYTHING, W.NOW)
    assert services.count(DEF, EVERYTHING, W.NOW) == len(expected)
    assert (engine.get_index() is not None) == indexed
    ids, after = [], None
    while True:
        page = selectors.member_page(DEF, EVERYTHING, after=after, limit=5, now=W.NOW)
        ids += [m["id"] for m in page.items]
        assert all(m["name"] for m in page.items)
        if page.next_after is None:
            break
        after = page.next_after
    assert ids == expected
    rows = list(selectors.export_rows(Segment(definition=DEF), EVERYTHING, now=W.NOW))
    assert [r[0] for r in rows[1:]] == expected


def test_the_index_sees_writes_on_the_next_count(world):
    """Freshness: a new order and a new corp tag show up in the next count (tests check each time)."""
    from decimal import Decimal

    from siyu.commerce.models import Order
    from siyu.customers.models import FollowRelation, FollowTag, Tag

    d = {"field": "order_count", "op": "gte", "value": 1, "days": 1}
    before = services.count(d, EVERYTHING, W.NOW)
    assert engine.get_index() is not None
    buyers = set(services.person_ids(d, EVERYTHING, W.NOW))
    person = Profile.objects.filter(merged_into__isnull=True).exclude(id__in=buyers).order_by("id").first()
    Order.objects.create(order_no="NEW1", profile=person, paid_at=W.NOW, amount=Decimal("9.90"))
    assert services.count(d, EVERYTHING, W.NOW) == before + 1 == sqlcompile.sql_count(parse(d), EVERYTHING, W.NOW)
    tag = Tag.objects.create(tag_id="fresh", group_id=Tag.objects.first().group_id, name="新标签")
    d = {"field": "tag", "op": "any", "value": [tag.id]}
    assert services.count(d, EVERYTHING, W.NOW) == 0
    rel = FollowRelation.objects.order_by("id").first()
    FollowTag.objects.create(relation=rel, tag=tag, customer_id=rel.customer_id, employee_id=rel.employee_id)
    assert services.count(d, EVERYTHING, W.NOW) == 1 == sqlcompile.sql_count(parse(d), EVERYTHING, W.NOW)


def test_a_name_is_taken_once_among_live_segments(world):
    DEF = definition(world)
    first = services.save_segment("高价值老客", DEF)
    with pytest.raises(services.DefinitionError) as e:
        services.save_segment(" 高价值老客 ", DEF)
    assert e.value.problems[0]["path"] == "name"
    other = services.save_segment("新客", DEF)
    with pytest.raises(services.DefinitionError):
        services.update_segment(other, name="高价值老客")
    services.update_segment(first, name="高价值老客", description="same name, itself")  # its own name is fine
    services.archive_segment(first)
    assert services.save_segment("高价值老客", DEF).pk != first.pk  # an archived segment frees its name
