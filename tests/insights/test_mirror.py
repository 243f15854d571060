"""The mirror of RFM classes, stages and value bands to WeCom corp tags, against the emulator."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from siyu.commerce.models import Order
from siyu.customers.models import FollowRelation, FollowTag, Tag
from siyu.customers.tags import services as tag_services
from siyu.insights import services
from siyu.insights.models import Metrics
from siyu.profiles.models import Profile, ProfileKey


def emulator_tags(sim, external_userid: str, userid: str) -> set[str]:
    r = sim.get("externalcontact/get", external_userid=external_userid)
    assert r["errcode"] == 0, r
    return {
        t["tag_id"] for f in r["follow_user"] if f["userid"] == userid for t in f.get("tags", []) if t.get("type") == 1
    }


def test_mirror_tags_each_customer_with_its_class_stage_and_band_and_retags_only_changes(synced):
    sim = synced
    now = timezone.now()
    rels = list(
        FollowRelation.objects.filter(status=FollowRelation.ACTIVE)
        .select_related("customer", "employee")
        .order_by("id")
    )
    customers = list({r.customer_id: r.customer for r in rels}.values())[:4]
    persons = []
    for i, c in enumerate(customers):
        p = Profile.objects.create(name=c.name)
        ProfileKey.objects.create(profile=p, kind="external_userid", value=c.external_userid, customer=c)
        for k in range(i + 1):
            Order.objects.create(
                source="pos",
                order_no=f"M{i}-{k}",
                profile=p,
                paid_at=now - timedelta(days=3 + 40 * k),
                amount=Decimal(100 * (i + 1)),
            )
        persons.append(p)
    services.recompute_now(now)
    group = tag_services.create_group("客户价值", ["占位"])
    services.update_settings({"mirror_enabled": True, "mirror_tag_group_id": group.id}, recompute=False)

    out = services.mirror_pass(limit=10_000)
    assert out is not None and out.failures == 0 and out.succeeded > 0
    names = services.mirror_names(services.get_settings())
    tag_of = dict(Tag.objects.filter(group=group, deleted=False).values_list("name", "id"))
    assert set(names.values()) <= set(tag_of)  # created through WeCom, one per class, stage and band
    for p, c in zip(persons, customers, strict=True):
        m = Metrics.objects.get(profile_id=p.id)
        expected = {tag_of[names[f"rfm:{m.rfm_class}"]], tag_of[names[f"stage:{m.stage}"]]}
        if m.value_band:
            expected.add(tag_of[names[f"band:{m.value_band}"]])
        for rel in FollowRelation.objects.filter(customer=c, status=FollowRelation.ACTIVE).select_related("employee"):
            mine = set(FollowTag.objects.filter(relation=rel, tag__group=group).values_list("tag_id", flat=True))
            assert mine == expected
            on_wecom = emulator_tags(sim, c.external_userid, rel.employee.userid)
            assert set(Tag.objects.filter(id__in=expected).values_list("tag_id", flat=True)) <= on_wecom

    # nothing changed: nothing re-tagged
    again = services.mirror_pass(limit=10_000)
    assert again is not None and again.persons == 0 and again.relations == 0

    # one person changes stage: only their customer is re-tagged, the old stage tag removed
    first = persons[0]
    before = Metrics.objects.get(profile_id=first.id).stage
    Order.objects.create(source="pos", order_no="M0-new", profile=first, paid_at=now - timedelta(days=1), amount=50)
    services.incremental_update(now=now)
    after = Metrics.objects.get(profile_id=first.id).stage
    assert (before, after) == ("new", "repeat")
    out = services.mirror_pass(limit=10_000)
    assert out is not None and out.persons == 1
    rels0 = FollowRelation.objects.filter(customer=customers[0], status=FollowRelation.ACTIVE)
    assert out.relations == rels0.count()
    for rel in rels0.select_related("employee"):
        mine = set(FollowTag.objects.filter(relation=rel, tag__group=group).values_list("tag_id", flat=True))
        assert tag_of[names["stage:repeat"]] in mine and tag_of[names["stage:new"]] not in mine
        on_wecom = emulator_tags(sim, customers[0].external_userid, rel.employee.userid)
        assert Tag.objects.get(id=tag_of[names["stage:new"]]).tag_id not in on_wecom
