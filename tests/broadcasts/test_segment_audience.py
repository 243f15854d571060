"""A mass message to a saved segment, over real HTTP to the emulator: it reaches exactly the
segment's members (their WeCom customers), the members are frozen in a snapshot when planning
starts (people who join or leave the segment afterwards change nothing), the estimate and the
detail name the segment and its counts, and Moments accept a segment (test_segment_moment.py sends them)."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse
from django.utils import timezone

from siyu.accounts import services as accounts
from siyu.broadcasts import planning, services
from siyu.broadcasts.models import Batch, Broadcast, Recipient
from siyu.customers.models import Customer, FollowRelation
from siyu.insights.models import Metrics
from siyu.profiles.models import Profile, ProfileKey
from siyu.segments import services as segment_services
from siyu.segments.models import Segment, Snapshot, SnapshotMember
from tests.broadcasts.helpers import (
    EVERYTHING,
    after_first_plan_step,
    planned_targets,
    run_now,
    sync_product,
    wait_confirmed,
)
from tests.conftest import point_product_at

LOYAL = {"op": "and", "items": [{"field": "stage", "op": "in", "value": ["loyal"]}]}


def give_profiles() -> None:
    """Every synced WeCom customer gets a profile (what part B's linking does); every third one is
    loyal; one loyal person has no WeCom customer."""
    now = timezone.now()
    for i, c in enumerate(Customer.objects.order_by("id")):
        p = Profile.objects.create(name=c.name)
        ProfileKey.objects.create(profile=p, kind="external_userid", value=c.external_userid, customer=c)
        Metrics.objects.create(profile=p, stage="loyal" if i % 3 == 0 else "new", computed_at=now)
    lone = Profile.objects.create(name="无企微会员", member_no="M1")
    Metrics.objects.create(profile=lone, stage="loyal", computed_at=now)


def set_stage(profile_ids, stage: str) -> None:
    """What insights' recompute does: a new stage, a new computed_at (the segment index's watermark)."""
    Metrics.objects.filter(profile_id__in=list(profile_ids)).update(stage=stage, computed_at=timezone.now())


@pytest.fixture
def product(sim, transactional_db):
    point_product_at(sim)
    sync_product()
    give_profiles()
    yield sim
    sim.control("mass/auto", {"probability": 0, "delay_s": 0})


def member_customers(definition) -> set[int]:
    persons = segment_services.person_ids(definition, EVERYTHING)
    return set(
        ProfileKey.objects.filter(profile_id__in=persons, customer__isnull=False).values_list("customer_id", flat=True)
    )


def segment_broadcast(segment: Segment, name: str, text: str | None = None) -> Broadcast:
    return services.save_draft(
        kind=Broadcast.CUSTOMER,
        name=name,
        text=text or f"分群专享 {time.time_ns()} {{员工姓名}}",
        attachments=[],
        audience={"segment_id": segment.id},
        scope=EVERYTHING,
    )


def test_a_mass_message_to_a_segment_reaches_exactly_its_members(product):
    sim = product
    sim.control("mass/auto", {"probability": 1.0, "delay_s": 1, "seed": 3})
    segment = segment_services.save_segment("忠诚客", LOYAL)
    expected = member_customers(LOYAL)
    assert len(expected) > 20
    b = segment_broadcast(segment, "忠诚客专享")
    assert b.audience["type"] == "segment" and "snapshot_id" not in b.audience

    # the estimate (before planning) uses the live definition: each member customer once
    est = planning.estimate(b)
    assert est["total"] == len(expected)

    b = run_now(b)
    assert b.status == Broadcast.SENT, b.error
    snap = Snapshot.objects.get(id=b.audience["snapshot_id"])
    assert snap.segment_id == segment.id and snap.purpose == f"broadcast:{b.id}"
    assert snap.profiles == segment_services.count(LOYAL, EVERYTHING)
    assert snap.customers == len(expected)
    assert SnapshotMember.objects.filter(snapshot=snap, customer__isnull=True).count() == 1  # the lone member
    # one target per member customer, nobody else
    rows = Recipient.objects.filter(broadcast=b)
    assert set(rows.values_list("customer_id", flat=True)) == expected
    assert rows.count() == len(expected)
    externals = set(Customer.objects.filter(id__in=expected).values_list("external_userid", flat=True))
    assert planned_targets(b) == externals
    # skipped only for a reason (a lost relation): the others are sent
    sent = planned_targets(b) - planned_targets(b, Recipient.SKIPPED)
    lost = set(
        Customer.objects.filter(id__in=expected)
        .exclude(relations__status=FollowRelation.ACTIVE)
        .values_list("external_userid", flat=True)
    )
    assert sent == externals - lost

    # the employees confirm; the emulator delivered to exactly the sent members
    wait_confirmed(b)
    not_friend = planned_targets(b, Recipient.FAILED)
    assert planned_targets(b, Recipient.RECEIVED) == sent - not_friend
    got: set[str] = set()
    for bt in Batch.objects.filter(broadcast=b).exclude(msgid=""):
        page = sim.call("externalcontact/get_groupmsg_send_result", {"msgid": bt.msgid, "userid": bt.userid})
        got |= {i["external_userid"] for i in page.get("send_list") or [] if i["status"] == 1}
    assert got == sent - not_friend


def test_members_who_change_after_planning_starts_do_not_change_the_targets(product, settings, monkeypatch):
    settings.SIYU_BROADCAST_PLAN_CHUNK = 25  # several key ranges: the membership changes between them
    segment = segment_services.save_segment("忠诚客", LOYAL)
    before = member_customers(LOYAL)
    b = segment_broadcast(segment, "冻结")
    leaving = sorted(
        ProfileKey.objects.filter(customer_id__in=before).values_list("profile_id", flat=True).order_by("-customer_id")
    )[:5]
    joining = list(Metrics.objects.filter(stage="new").order_by("-profile_id").values_list("profile_id", flat=True)[:5])

    def change() -> None:  # people leave and join the segment
        set_stage(leaving, "dormant")
        set_stage(joining, "loyal")

    steps = after_first_plan_step(monkeypatch, change)
    b = run_now(b)
    assert b.status == Broadcast.SENT, b.error
    assert steps["n"] > 2
    after = member_customers(LOYAL)
    assert after != before  # the segment did change
    assert set(Recipient.objects.filter(broadcast=b).values_list("customer_id", flat=True)) == before
    # a second broadcast to the same segment now reaches the new members
    b2 = segment_broadcast(segment, "之后")
    assert planning.estimate(b2)["total"] == len(after)


def test_composer_estimate_and_detail_name_the_segment_and_moments_accept_it(product, client):
    user, _ = accounts.ensure_user("seg-admin", "pass-12345678", role="admin")
    client.force_login(user)
    segment = segment_services.save_segment("<b>忠诚</b>客", LOYAL)
    r = client.get(reverse("broadcasts:new") + f"?kind=customer&segment={segment.id}")
    html = r.content.decode()
    assert r.status_code == 200 and "&lt;b&gt;忠诚&lt;/b&gt;客" in html and "<b>忠诚</b>" not in html
    assert 'data-testid="moment-segment-note"' in html
    data = {"kind": "customer", "name": "分群群发", "text": "你好", "segment": str(segment.id), "op": "draft"}
    r = client.post(reverse("broadcasts:estimate"), data)
    html = r.content.decode()
    persons = segment_services.count(LOYAL, EVERYTHING)
    assert 'data-testid="segment-audience-name"' in html and "&lt;b&gt;忠诚&lt;/b&gt;客" in html
    assert f'data-testid="segment-persons">{persons}<' in html
    assert 'data-testid="segment-without-wecom">1<' in html
    # Moments: accepted (through a corp tag made for the send, the note says so)
    assert "私域分群" in client.get(reverse("broadcasts:new")).content.decode()
    r = client.post(reverse("broadcasts:new"), {**data, "kind": "moment", "name": "分群朋友圈"})
    assert r.status_code == 302
    moment = Broadcast.objects.get(kind=Broadcast.MOMENT)
    assert moment.audience["type"] == "segment" and moment.audience["segment_id"] == segment.id
    moment.delete()
    # a segment the user cannot see (or none such) is a form error
    r = client.post(reverse("broadcasts:new"), {**data, "segment": "999999"})
    assert r.status_code == 200 and not Broadcast.objects.exists()
    # saved, then sent: the detail shows the snapshot's counts
    r = client.post(reverse("broadcasts:new"), data)
    assert r.status_code == 302
    b = Broadcast.objects.get()
    assert b.audience["type"] == "segment" and b.audience["segment_id"] == segment.id
    r = client.get(reverse("broadcasts:edit", args=[b.id]))
    assert r.context["form"]["segment"].value() == str(segment.id)
    b = run_now(b)
    html = client.get(reverse("broadcasts:detail", args=[b.id])).content.decode()
    snap = Snapshot.objects.get(id=b.audience["snapshot_id"])
    assert f'data-testid="segment-persons">{snap.profiles}<' in html
    assert f'data-testid="segment-customers">{snap.customers}<' in html
    assert "发送时锁定的成员" in html


def test_rest_api_drafts_a_segment_broadcast(product, client):
    from siyu.accounts.services import create_api_token

    user, _ = accounts.ensure_user("seg-api", "pass-12345678", role="operator")
    _, token = create_api_token(user, "t")
    h = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    segment = segment_services.save_segment("忠诚客", LOYAL)
    r = client.post(
        "/api/v1/broadcasts/",
        {"name": "api", "text": "hi", "segment": segment.id},
        content_type="application/json",
        **h,
    )
    assert r.status_code in (200, 201), r.content
    body = r.json()
    assert body["audience"]["type"] == "segment" and body["audience"]["segment_id"] == segment.id
    est = client.get(f"/api/v1/broadcasts/{body['id']}/estimate", **h).json()
    assert est["total"] == len(member_customers(LOYAL))
    r = client.post(
        "/api/v1/broadcasts/",
        {"name": "api", "text": "hi", "kind": "moment", "segment": segment.id},
        content_type="application/json",
        **h,
    )
    assert r.status_code in (200, 201), r.content
    assert r.json()["audience"]["type"] == "segment" and r.json()["kind"] == "moment"
    r = client.post(
        "/api/v1/broadcasts/",
        {"name": "api", "text": "hi", "kind": "group", "segment": segment.id},
        content_type="application/json",
        **h,
    )
    assert r.status_code == 422
    r = client.post(
        "/api/v1/broadcasts/", {"name": "api", "text": "hi", "segment": 999999}, content_type="application/json", **h
    )
    assert r.status_code == 422
