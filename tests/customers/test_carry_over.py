"""customers.services.carry_over_relations: the handover's record moves to the takeover in a few
bulk statements (service level, no emulator; transfers calls it when WeCom reports a transfer)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from siyu.customers import services
from siyu.customers.models import Customer, CustomerEvent, FollowRelation, FollowTag, Tag, TagGroup
from siyu.org.models import Employee

pytestmark = pytest.mark.django_db


def _world(n: int):
    old, new = Employee.objects.create(userid="old"), Employee.objects.create(userid="new")
    tag = Tag.objects.create(tag_id="t1", name="VIP", group=TagGroup.objects.create(group_id="g1", name="G"))
    at = timezone.now() - timedelta(days=3)
    for i in range(n):
        c = Customer.objects.create(external_userid=f"wm{i}", name=f"c{i}", first_added_at=at)
        rel = FollowRelation.objects.create(
            customer=c, employee=old, remark=f"r{i}", remark_mobiles=["138"], added_at=at
        )
        FollowTag.objects.create(relation=rel, tag=tag, customer=c, employee=old)
    return old, new, tag


def _moves(new, xs, at):
    return [
        services.CarryOver(
            external_userid=x,
            handover_userid="old",
            takeover_id=new.id,
            at=at,
            detail={"by": "handover", "from": "old", "to": "new"},
        )
        for x in xs
    ]


def test_carry_over_moves_relation_tags_and_timeline(django_assert_max_num_queries):
    old, new, tag = _world(50)
    at = timezone.now()
    with django_assert_max_num_queries(20):  # bulk: the same few statements for 50 as for 1
        carried = services.carry_over_relations(_moves(new, [f"wm{i}" for i in range(50)] + ["wm-unknown"], at))
    assert carried == {f"wm{i}" for i in range(50)}  # a customer we do not hold is not carried
    rel = FollowRelation.objects.get(customer__external_userid="wm7", employee=new)
    assert (rel.status, rel.remark, rel.remark_mobiles, rel.add_way, rel.oper_userid) == (
        FollowRelation.ACTIVE,
        "r7",
        ["138"],
        202,
        "old",
    )
    assert (
        FollowRelation.objects.get(customer__external_userid="wm7", employee=old).status == FollowRelation.TRANSFERRED
    )
    assert FollowTag.objects.filter(employee=new, tag=tag).count() == 50
    ev = CustomerEvent.objects.get(customer__external_userid="wm7")
    assert ev.kind == CustomerEvent.TRANSFERRED and ev.employee_id == new.id and ev.detail["to"] == "new"
    assert Customer.objects.filter(status=Customer.ACTIVE).count() == 50


def test_carry_over_twice_changes_nothing_more():
    _old, new, _tag = _world(3)
    at = timezone.now()
    services.carry_over_relations(_moves(new, ["wm0", "wm1", "wm2"], at))
    services.carry_over_relations(_moves(new, ["wm0", "wm1", "wm2"], at))
    assert FollowRelation.objects.filter(employee=new).count() == 3
    assert FollowTag.objects.filter(employee=new).count() == 3
    assert services.carry_over_relations([]) == set()
