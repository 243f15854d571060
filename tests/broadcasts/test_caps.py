"""Receive caps, over real HTTP: customers, groups and Moments already at their cap are skipped
with the rule named, in the estimate and in the results (our ledger mirrors the emulator's rules)."""

from __future__ import annotations

import time

import pytest

from siyu.accounts.selectors import DataScope
from siyu.broadcasts import planning, services
from siyu.broadcasts.models import Batch, Broadcast, Recipient
from siyu.customers.models import FollowRelation
from siyu.groups.models import GroupChat
from siyu.org.models import Employee
from tests.broadcasts.helpers import busiest_tag, customer_broadcast, planned_targets, run_now, sync_product
from tests.conftest import point_product_at
from tests.sim.helpers import own_sim

sim = own_sim(customers=300, seed=12, demo=True)
EVERYTHING = DataScope(everything=True)


@pytest.fixture
def product(sim, transactional_db, sim_rules):
    point_product_at(sim)
    sync_product()
    sim.control("mass/auto", {"probability": 1.0, "delay_s": 0, "seed": 1})
    yield sim
    sim.control("mass/auto", {"probability": 0, "delay_s": 0})


def settle(b: Broadcast, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        services.sync(b)
        b.refresh_from_db()
        done = not Batch.objects.filter(broadcast=b, results_synced=False).exists()
        if done and (b.kind != Broadcast.MOMENT or Batch.objects.filter(broadcast=b).exists()):
            return
        time.sleep(0.5)
    raise AssertionError("not settled in time")


def test_customers_at_their_daily_cap_are_skipped_with_the_rule(product, sim_rules, settings):
    sim = product
    sim_rules(customer_msg_quota_mode="daily_1")
    settings.SIYU_MASS_CUSTOMER_QUOTA = "daily_1"
    t1 = busiest_tag(min_customers=15)
    t2 = busiest_tag(min_customers=15, skip=(t1,))

    first = run_now(customer_broadcast("第一条", [t1.id]))
    settle(first)
    got_first = planned_targets(first, Recipient.RECEIVED)
    assert got_first

    # an employee's own mass send from the phone (个人群发): it counts at WeCom, our ledger can't see it
    rel = (
        FollowRelation.objects.filter(status=FollowRelation.ACTIVE, follow_tags__tag=t2)
        .exclude(customer__external_userid__in=got_first)
        .select_related("employee", "customer")
        .first()
    )
    own = sim.control(
        "mass/employee_send",
        {"userid": rel.employee.userid, "external_userids": [rel.customer.external_userid], "text": "店员自己群发"},
    )
    assert own["sent"] == 1

    second = customer_broadcast("第二条", [t1.id, t2.id])
    est = planning.estimate(second)
    audience = set(
        FollowRelation.objects.filter(follow_tags__tag__in=[t1, t2]).values_list("customer__external_userid", flat=True)
    )
    capped = got_first & audience
    assert est["skipped"].get("cap:daily_1") == len(capped)

    second = run_now(second)
    skipped = Recipient.objects.filter(broadcast=second, state=Recipient.SKIPPED)
    assert set(skipped.filter(reason="cap:daily_1").values_list("target", flat=True)) == capped
    settle(second)
    # results: the capped ones stay skipped with the rule; WeCom refused the one our ledger missed
    r = Recipient.objects.get(broadcast=second, target=rel.customer.external_userid)
    assert (r.state, r.reason) == (Recipient.FAILED, "over_quota")
    assert planned_targets(second, Recipient.RECEIVED).isdisjoint(got_first)
    failed = Recipient.objects.filter(broadcast=second, state=Recipient.FAILED)
    assert set(failed.values_list("reason", flat=True)) <= {"over_quota", "not_friend"}
    assert len(planned_targets(second, Recipient.RECEIVED)) + failed.count() == est["recipients"]
    # and WeCom (the emulator) agrees: nobody received two today
    for x in list(capped)[:5]:
        assert sim.control("quota", {"external_userid": x})["remaining"] == 0


def test_group_mass_message_flow_and_group_cap(product, sim_rules, settings):
    sim_rules(group_msg_quota_mode="daily_1")
    settings.SIYU_MASS_GROUP_QUOTA = "daily_1"
    owner = Employee.objects.filter(owned_groups__status=GroupChat.ACTIVE).order_by("id").first()
    groups = list(GroupChat.objects.filter(owner=owner, status=GroupChat.ACTIVE).order_by("id"))
    assert len(groups) >= 2
    first = services.save_draft(
        kind=Broadcast.GROUP,
        name="群1",
        text="群公告：周末活动",
        attachments=[],
        audience={"group_ids": [groups[0].id]},
        scope=EVERYTHING,
    )
    assert planning.estimate(first)["recipients"] == 1
    first = run_now(first)
    assert first.status == Broadcast.SENT, first.error
    settle(first)
    assert planned_targets(first, Recipient.RECEIVED) == {groups[0].chat_id}

    second = services.save_draft(
        kind=Broadcast.GROUP,
        name="群2",
        text="第二条",
        attachments=[],
        audience={"owner_ids": [owner.id]},
        scope=EVERYTHING,
    )
    est = planning.estimate(second)
    assert est["skipped"] == {"cap:daily_1": 1}
    assert est["recipients"] == len(groups) - 1
    second = run_now(second)
    settle(second)
    assert Recipient.objects.get(broadcast=second, target=groups[0].chat_id).reason == "cap:daily_1"
    assert planned_targets(second, Recipient.RECEIVED) == {g.chat_id for g in groups[1:]}
    assert Batch.objects.filter(broadcast=second).count() == 1  # one call per owner (≤ 2,000 groups)


def test_moments_flow_and_moment_cap(product, sim_rules, settings):
    sim_rules(moment_daily_cap=1)
    settings.SIYU_MOMENT_DAILY_CAP = 1
    emp = Employee.objects.filter(relations__status=FollowRelation.ACTIVE).order_by("id").first()
    mine = set(
        FollowRelation.objects.filter(employee=emp, status=FollowRelation.ACTIVE).values_list(
            "customer__external_userid", flat=True
        )
    )

    first = services.save_draft(
        kind=Broadcast.MOMENT,
        name="朋友圈1",
        text="新品上市",
        attachments=[],
        audience={"employee_ids": [emp.id]},
        scope=EVERYTHING,
    )
    assert planning.estimate(first)["recipients"] == len(mine)
    first = run_now(first)
    assert first.jobid
    settle(first)
    first.refresh_from_db()
    assert first.moment_id
    bt = Batch.objects.get(broadcast=first)
    assert (bt.userid, bt.task_status) == (emp.userid, 2)  # published
    reached = planned_targets(first, Recipient.RECEIVED)
    assert reached and reached <= mine

    second = services.save_draft(
        kind=Broadcast.MOMENT,
        name="朋友圈2",
        text="再发一条",
        attachments=[],
        audience={"employee_ids": [emp.id]},
        scope=EVERYTHING,
    )
    est = planning.estimate(second)
    assert est["skipped"].get("cap:moment_daily") == len(reached)
    second = run_now(second)
    settle(second)
    assert planned_targets(second, Recipient.RECEIVED).isdisjoint(reached)
    assert (
        set(Recipient.objects.filter(broadcast=second, reason="cap:moment_daily").values_list("target", flat=True))
        == reached
    )
