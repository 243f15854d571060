"""Mass messages to customers over real HTTP to the emulator (demo world): the estimate names
exactly who is reached; employees confirm with the probability and delay chosen in the emulator."""

from __future__ import annotations

import time

import pytest

from siyu.broadcasts import services
from siyu.broadcasts.models import Batch, Broadcast, Recipient
from siyu.customers.models import FollowRelation
from tests.broadcasts.helpers import (
    busiest_tag,
    customer_broadcast,
    estimate,
    planned_targets,
    run_now,
    sync_product,
    wait_confirmed,
)
from tests.conftest import point_product_at
from tests.sim.helpers import own_sim

sim = own_sim(customers=300, seed=11, demo=True)


@pytest.fixture
def product(sim, transactional_db):
    point_product_at(sim)
    sync_product()
    yield sim
    sim.control("mass/auto", {"probability": 0, "delay_s": 0})


def emulator_results(sim, msgids: list[str], userids: list[str]) -> dict[str, list[int]]:
    """external_userid → statuses over our messages, read straight from the emulator's API."""
    out: dict[str, list[int]] = {}
    for msgid in msgids:
        for u in userids:
            try:
                page = sim.call(
                    "externalcontact/get_groupmsg_send_result", {"msgid": msgid, "userid": u, "limit": 1000}
                )
            except Exception:  # noqa: BLE001 - polling: an answer not yet there is retried
                continue
            for item in page.get("send_list") or []:
                out.setdefault(item["external_userid"], []).append(item["status"])
    return out


def test_tag_broadcast_reaches_exactly_the_estimated_customers(product):
    sim = product
    sim.control("mass/auto", {"probability": 1.0, "delay_s": 2, "seed": 3})
    tag = busiest_tag(min_customers=20)
    b = customer_broadcast("会员日", [tag.id])
    est = estimate(b)
    assert est["recipients"] > 0 and est["recipients"] == sum(e["recipients"] for e in est["employees"])

    # the customers the filter names: those with the tag on an active relation
    tagged = set(
        FollowRelation.objects.filter(status=FollowRelation.ACTIVE, follow_tags__tag=tag).values_list(
            "customer__external_userid", flat=True
        )
    )
    b = run_now(b)
    assert b.status == Broadcast.SENT, b.error
    planned = planned_targets(b) - planned_targets(b, Recipient.SKIPPED)
    assert len(planned) == est["recipients"]
    assert tagged <= planned | planned_targets(b, Recipient.SKIPPED)

    # one add_msg_template per sender (all under 10,000 here); nothing confirmed yet
    batches = list(Batch.objects.filter(broadcast=b))
    assert len(batches) == len({x.userid for x in batches}) == len(est["employees"])
    assert services.totals(b)["confirmed"] == 0

    # add_msg_template's fail_list: customers who deleted the employee ("deleted me") — WeCom keeps
    # listing such relations, so without the del_follow_user callback nobody can know beforehand.
    not_friend = planned_targets(b, Recipient.FAILED)
    assert set(Recipient.objects.filter(broadcast=b, state=Recipient.FAILED).values_list("reason", flat=True)) <= {
        "not_friend"
    }

    wait_confirmed(b)  # the emulator's employees confirm 1–3 s after creation
    t = services.totals(b)
    assert t["planned"] == est["recipients"]
    assert t["received"] == est["recipients"] - len(not_friend)
    assert planned_targets(b, Recipient.RECEIVED) == planned - not_friend

    # the emulator agrees: every planned customer got this message exactly once, nobody else did
    got = emulator_results(sim, [x.msgid for x in batches], sorted({x.userid for x in batches}))
    assert set(got) == planned - not_friend
    assert all(v == [1] for v in got.values())


def test_unconfirmed_employees_are_reminded_and_cancel_stops_them(product):
    sim = product
    sim.control("mass/auto", {"probability": 0.5, "delay_s": 0, "seed": 5})
    tag = busiest_tag(min_customers=20)
    b = run_now(customer_broadcast("半数确认", [tag.id]))
    time.sleep(2.5)  # the emulator's ticker confirms the chosen half
    services.sync(b)
    batches = list(Batch.objects.filter(broadcast=b))
    confirmed = [x for x in batches if x.task_status == 2]
    waiting = [x for x in batches if x.task_status == 0]
    assert confirmed and waiting, "probability 0.5 should split the employees"
    assert services.remind(b) == len(waiting)
    services.cancel(b)
    for x in waiting:  # cancelled: the employee can no longer send it
        r = sim.control("mass/confirm", {"msgid": x.msgid, "userid": x.userid}, expect_ok=False)
        assert r["ok"] is False
    b.refresh_from_db()
    assert b.status == Broadcast.CANCELLED
    assert Recipient.objects.filter(broadcast=b, state=Recipient.RECEIVED).count() == sum(
        x.rows().count() - x.rows().filter(state=Recipient.FAILED).count() for x in confirmed
    )


def test_a_call_whose_answer_was_lost_is_adopted_not_repeated(product):
    """The process died after add_msg_template succeeded but before the msgid was recorded: the
    next executor finds the message through get_groupmsg_list_v2 and does not send it again."""
    from siyu.broadcasts import planning
    from siyu.wecom import gateway

    sim = product
    tag = busiest_tag(min_customers=20)
    # a text no earlier test sent: the emulator's message list is shared by the whole session
    b = customer_broadcast("断点", [tag.id], text=f"断点续发 {time.time_ns()} {{员工姓名}}")
    services.submit(b)
    b.refresh_from_db()
    ex = services.Executor(b)
    assert ex.acquire()
    ex._phase("plan", status=Broadcast.PLANNING)
    ex.plan()
    planning.batch_all(b)
    ex._phase("send", status=Broadcast.SENDING)
    bt = Batch.objects.filter(broadcast=b).order_by("id").first()
    targets = list(bt.rows().order_by("id").values_list("target", flat=True))
    Batch.objects.filter(id=bt.id).update(status=Batch.SENDING, send_started_at=time.time())
    lost = gateway.contact().external_contact.add_msg_template(
        {
            "chat_type": "single",
            "sender": bt.userid,
            "external_userid": targets,
            **services.personalise(services.build_content(b), bt),
        }
    )
    ex.release()  # ... and the process dies here

    b = services.Executor(Broadcast.objects.get(id=b.id)).run()
    assert b.status == Broadcast.SENT
    bt.refresh_from_db()
    assert bt.msgid == lost["msgid"]
    mine = [
        m
        for m in sim.call(
            "externalcontact/get_groupmsg_list_v2",
            {
                "chat_type": "single",
                "start_time": int(time.time()) - 600,
                "end_time": int(time.time()) + 60,
                "filter_type": 0,
                "limit": 100,
            },
        )["group_msg_list"]
        if m["msgid"] in set(Batch.objects.filter(broadcast=b).values_list("msgid", flat=True))
    ]
    assert len(mine) == Batch.objects.filter(broadcast=b).count()  # one message per batch, none twice
