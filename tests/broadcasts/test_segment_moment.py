"""A Moment (朋友圈) to a saved segment, over real HTTP to an emulator of this module's own (the
tests end relations in it): the segment's members are frozen when planning starts, a corp tag is
made for the send in Siyu's tag group, put on every active relation of the snapshot's WeCom
customers, and the Moment is visible to exactly those customers (the emulator's
get_moment_customer_list); members who join later are not tagged; a relation WeCom refuses to tag
is reported (count, name, errcode) on the broadcast, not lost."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse

from siyu.accounts import services as accounts
from siyu.broadcasts import moment_tags, planning, services
from siyu.broadcasts.models import Broadcast, Recipient
from siyu.customers.models import Customer, FollowRelation, FollowTag, Tag
from siyu.insights.models import Metrics
from siyu.org.models import Employee
from siyu.profiles.models import ProfileKey
from siyu.segments import services as segment_services
from siyu.segments.models import Snapshot
from siyu.wecom_sim.process import SimProcess
from tests.broadcasts.helpers import EVERYTHING, after_first_plan_step, run_now, sync_product
from tests.broadcasts.test_segment_audience import LOYAL, give_profiles, member_customers, set_stage
from tests.conftest import point_product_at


@pytest.fixture(scope="module")
def own_sim():
    with SimProcess(customers=120, seed=17) as proc:
        yield proc


@pytest.fixture
def product(own_sim, transactional_db):
    point_product_at(own_sim)
    sync_product()
    give_profiles()
    yield own_sim


def moment_to(segment, name: str) -> Broadcast:
    return services.save_draft(
        kind=Broadcast.MOMENT,
        name=name,
        text=f"分群朋友圈 {time.time_ns()}",
        attachments=[],
        audience={"segment_id": segment.id},
        scope=EVERYTHING,
    )


def active_pairs(customer_ids) -> set[tuple[str, str]]:
    """(employee userid, external_userid) of the active relations of these customers (active employees)."""
    return set(
        FollowRelation.objects.filter(
            customer_id__in=list(customer_ids),
            status=FollowRelation.ACTIVE,
            employee__status=Employee.Status.ACTIVE,
        ).values_list("employee__userid", "customer__external_userid")
    )


def tagged_on_wecom(sim, tag_id: str) -> set[tuple[str, str]]:
    """Every (employee, customer) pair carrying ``tag_id`` in the emulator."""
    out = set()
    for ext in Customer.objects.values_list("external_userid", flat=True):
        r = sim.get("externalcontact/get", external_userid=ext)
        if r["errcode"] == 84061:  # nobody holds this customer any more
            continue
        assert r["errcode"] == 0, r
        out |= {(f["userid"], ext) for f in r["follow_user"] if tag_id in {t.get("tag_id") for t in f.get("tags", [])}}
    return out


def deleted_me(sim) -> set[tuple[str, str]]:
    """Pairs the customer deleted the employee in (WeCom still lists them, so Siyu holds them
    active and can tag them, but the customer no longer sees the employee's Moments)."""
    lost = sim.control("world/sample", {"n": 1000})["lost"]
    return {(x["userid"], x["external_userid"]) for x in lost}


def moment_of(sim, b: Broadcast, timeout: float = 30) -> str:
    """The moment's id once WeCom's add_moment_task job is done (the executor's result sync)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        sim.control("tick")
        services.sync(b)
        b.refresh_from_db()
        if b.moment_id:
            return b.moment_id
        time.sleep(0.3)
    raise AssertionError("the Moment's job did not finish")


def visible_pairs(sim, moment_id: str) -> set[tuple[str, str]]:
    """get_moment_task's employees × get_moment_customer_list: who was chosen to see the Moment."""
    tasks = sim.call("externalcontact/get_moment_task", {"moment_id": moment_id, "limit": 1000})
    assert tasks["errcode"] == 0, tasks
    out = set()
    for t in tasks["task_list"]:
        cursor = ""
        while True:
            page = sim.call(
                "externalcontact/get_moment_customer_list",
                {"moment_id": moment_id, "userid": t["userid"], "cursor": cursor, "limit": 1000},
            )
            assert page["errcode"] == 0, page
            out |= {(c["userid"], c["external_userid"]) for c in page["customer_list"]}
            cursor = page.get("next_cursor") or ""
            if not cursor:
                break
    return out


def test_a_moment_to_a_segment_tags_its_snapshot_and_is_visible_to_exactly_those_customers(
    product, settings, monkeypatch
):
    sim = product
    settings.SIYU_BROADCAST_PLAN_CHUNK = 25  # several key ranges: members join between them
    segment = segment_services.save_segment("忠诚客（朋友圈专用的很长很长的名字分群）", LOYAL)
    before = member_customers(LOYAL)
    expected = active_pairs(before)
    assert len({e for _, e in expected}) > 10
    b = moment_to(segment, "忠诚客朋友圈")
    assert b.audience["type"] == "segment"
    # the estimate: each member customer with an active relation, once
    assert planning.estimate(b)["total"] == len({e for _, e in expected})

    joining = list(Metrics.objects.filter(stage="new").order_by("-profile_id").values_list("profile_id", flat=True)[:6])
    steps = after_first_plan_step(monkeypatch, lambda: set_stage(joining, "loyal"))  # people join the segment
    b = run_now(b)
    assert b.status == Broadcast.SENT, b.error
    assert steps["n"] > 2
    joined = set(
        ProfileKey.objects.filter(profile_id__in=joining, customer__isnull=False).values_list("customer_id", flat=True)
    )
    assert joined and not joined & before and member_customers(LOYAL) >= joined  # they did join

    snap = Snapshot.objects.get(id=b.audience["snapshot_id"])
    assert snap.purpose == f"broadcast:{b.id}" and snap.customers == len(before)
    mirror = b.audience["mirror"]
    tag = Tag.objects.select_related("group").get(id=mirror["tag_id"])
    assert tag.group.name == moment_tags.TAG_GROUP_NAME and tag.tag_id == mirror["tag_wecom_id"]
    assert tag.name.startswith("分群·忠诚客") and tag.name == mirror["tag_name"] and len(tag.name) <= 30
    assert mirror["done"] and mirror["failed"] == 0 and mirror["tagged"] == mirror["relations"] == len(expected)

    # WeCom (the emulator) has the tag on exactly the snapshot's active relations, and locally too
    assert tagged_on_wecom(sim, tag.tag_id) == expected
    local = set(
        FollowTag.objects.filter(tag=tag).values_list(
            "relation__employee__userid", "relation__customer__external_userid"
        )
    )
    assert local == expected
    # the Moment: senders = the employees holding them, the tag as its only tag; visible to exactly them
    moment_id = moment_of(sim, b)
    listed = sim.call(
        "externalcontact/get_moment_list",
        {"start_time": int(time.time()) - 3600, "end_time": int(time.time()) + 3600, "filter_type": 0},
    )
    assert next(m for m in listed["moment_list"] if m["moment_id"] == moment_id)["visible_type"] == 0
    visible = visible_pairs(sim, moment_id)
    assert visible == expected - deleted_me(sim)
    joiners = set(Customer.objects.filter(id__in=joined).values_list("external_userid", flat=True))
    assert not joiners & {e for _, e in visible}
    assert set(Recipient.objects.filter(broadcast=b).values_list("customer_id", flat=True)) <= before

    # a second Moment to the same segment gets a tag of its own (another name), with the joiners
    b2 = run_now(moment_to(segment, "之后"))
    assert b2.status == Broadcast.SENT, b2.error
    assert b2.audience["mirror"]["tag_id"] != tag.id
    assert joiners <= {e for _, e in tagged_on_wecom(sim, b2.audience["mirror"]["tag_wecom_id"])}


def test_a_relation_wecom_refuses_to_tag_is_reported_on_the_moment(product, client):
    sim = product
    segment = segment_services.save_segment("<i>忠诚</i>客", LOYAL)
    members = member_customers(LOYAL)
    # a member with one active relation, which the employee ends in WeCom (no callback reaches us:
    # Siyu still holds it active, so mark_tag answers 84061)
    victim = next(
        c
        for c in Customer.objects.filter(id__in=members).order_by("id")
        if FollowRelation.objects.filter(customer=c, status=FollowRelation.ACTIVE).count() == 1
    )
    rel = FollowRelation.objects.select_related("employee").get(customer=victim, status=FollowRelation.ACTIVE)
    Customer.objects.filter(id=victim.id).update(name="<b>被拒</b>客户")
    sim.control("delete", {"userid": rel.employee.userid, "external_userid": victim.external_userid, "by": "employee"})
    expected = active_pairs(members) - {(rel.employee.userid, victim.external_userid)}

    b = run_now(moment_to(segment, "部分失败"))
    assert b.status == Broadcast.SENT, b.error
    mirror = b.audience["mirror"]
    assert mirror["failed"] == 1 and mirror["tagged"] == len(expected) and mirror["relations"] == len(expected) + 1
    assert mirror["failures"] == [
        {
            "customer": "<b>被拒</b>客户",
            "userid": rel.employee.userid,
            "errcode": 84061,
            "errmsg": mirror["failures"][0]["errmsg"],
        }
    ]
    row = Recipient.objects.get(broadcast=b, customer_id=victim.id)
    assert (row.state, row.reason) == (Recipient.SKIPPED, moment_tags.REASON)
    assert tagged_on_wecom(sim, mirror["tag_wecom_id"]) == expected
    assert visible_pairs(sim, moment_of(sim, b)) == expected - deleted_me(sim)

    # a copy is planned afresh: a new snapshot and a tag of its own
    c = services.copy(b)
    assert c.audience["segment_id"] == segment.id and not {"snapshot_id", "mirror", "plan_hi"} & set(c.audience)

    # the detail page: the segment, the snapshot's counts, the tag, tagged / failed, the failure named
    user, _ = accounts.ensure_user("moment-admin", "pass-12345678", role="admin")
    client.force_login(user)
    html = client.get(reverse("broadcasts:detail", args=[b.id])).content.decode()
    snap = Snapshot.objects.get(id=b.audience["snapshot_id"])
    assert "&lt;i&gt;忠诚&lt;/i&gt;客" in html and "<i>忠诚</i>" not in html
    assert f'data-testid="segment-customers">{snap.customers}<' in html
    assert 'data-testid="segment-tag-name">分群·&lt;i&gt;忠诚&lt;/i&gt;客·' in html
    assert f'data-testid="segment-tagged">{len(expected)}<' in html
    assert 'data-testid="segment-tag-failed">1<' in html
    assert "&lt;b&gt;被拒&lt;/b&gt;客户" in html and "84061" in html
    assert 'data-testid="segment-tag-stays"' in html and "该标签仍会保留" in html

    # while the worker is still tagging, the page's live part shows the progress
    audience = {**b.audience, "mirror": {**mirror, "done": False, "tagged": 7, "failed": 2}}
    Broadcast.objects.filter(id=b.id).update(status=Broadcast.PLANNING, audience=audience)
    live = client.get(reverse("broadcasts:detail", args=[b.id]) + "?part=live").content.decode()
    assert 'data-testid="tagging-progress"' in live and "已打标签的跟进关系 7，失败 2" in live


def test_a_moment_that_never_reached_wecom_has_its_tag_deleted(product, monkeypatch, client):
    """The tag is made and put on the members' relations before add_moment_task: a send that fails
    there, or is cancelled between tagging and sending, leaves a tag nothing can be visible
    through. It is deleted in WeCom and locally; a published Moment keeps its own."""
    sim = product
    segment = segment_services.save_segment("忠诚客", LOYAL)

    def refused(self):
        raise services.BroadcastError("企业微信拒绝创建朋友圈")

    monkeypatch.setattr(services.Executor, "send_moment", refused)
    with pytest.raises(services.BroadcastError):
        run_now(moment_to(segment, "失败的朋友圈"))
    failed = Broadcast.objects.latest("id")
    assert failed.status == Broadcast.FAILED and failed.audience["mirror"]["tag_deleted"]
    tag_id = failed.audience["mirror"]["tag_wecom_id"]
    assert Tag.objects.get(tag_id=tag_id).deleted and not tagged_on_wecom(sim, tag_id)  # retired locally

    # cancelled while waiting to send (a retry pending): no executor holds it
    def later(self):
        raise services.Retry("企业微信暂时不可用")

    monkeypatch.setattr(services.Executor, "send_moment", later)
    waiting = run_now(moment_to(segment, "取消的朋友圈"))
    assert waiting.status == Broadcast.SENDING and waiting.audience["mirror"]["done"]
    tag_id = waiting.audience["mirror"]["tag_wecom_id"]
    assert not Tag.objects.get(tag_id=tag_id).deleted and tagged_on_wecom(sim, tag_id)
    cancelled = services.cancel(waiting)
    assert cancelled.status == Broadcast.CANCELLED and cancelled.audience["mirror"]["tag_deleted"]
    assert Tag.objects.get(tag_id=tag_id).deleted and not tagged_on_wecom(sim, tag_id)
    user, _ = accounts.ensure_user("moment-admin2", "pass-12345678", role="admin")
    client.force_login(user)
    html = client.get(reverse("broadcasts:detail", args=[cancelled.id])).content.decode()
    assert 'data-testid="segment-tag-deleted"' in html and 'data-testid="segment-tag-stays"' not in html
