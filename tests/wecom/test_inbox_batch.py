"""Batched inbox processing: coalesced re-reads, concurrent reads, batched writes with per-row
isolation, and the priority lane for events that must not wait (adds with a WelcomeCode)."""

from __future__ import annotations

import base64
import threading
import time

from django.db import connection

from siyu.core import queue
from siyu.core.worker import Worker
from siyu.wecom import inbox
from siyu.wecom.models import ApiCall, CallbackInbox
from siyu.wecom_sim.wire import build_xml, envelope
from tests.conftest import CALLBACK_AES_KEY, CALLBACK_TOKEN, point_product_at
from tests.core.test_worker import _post_events
from tests.effects.models import Effect

CORP = "ww5iyu0000demo0001"


def _post(client, fields: dict) -> None:
    xml = build_xml({"ToUserName": CORP, "FromUserName": "sys", "MsgType": "event", **fields})
    params, body = envelope(xml, CALLBACK_TOKEN, base64.b64decode(CALLBACK_AES_KEY + "="), CORP)
    query = "&".join(f"{k}={v}" for k, v in params.items())
    assert client.post(f"/wecom/callback/?{query}", body, content_type="text/xml").status_code == 200


def _effect(client, key: str, **extra) -> None:
    _post(client, {"CreateTime": int(time.time()), "Event": "siyu_test_effect", "Key": key, **extra})


def test_a_failing_row_does_not_roll_back_the_others_of_its_batch(client, sim, transactional_db):
    point_product_at(sim)
    for i in range(6):
        _effect(client, f"iso-{i}", SleepMs=5)
    _effect(client, "iso-bad-apply", Fail="apply")
    _effect(client, "iso-bad-read", Fail="read")
    assert inbox.process_pending(limit=100, worker_id="w1") == 6

    assert sorted(Effect.objects.values_list("key", flat=True)) == [f"iso-{i}" for i in range(6)]
    assert not Effect.objects.filter(key="iso-bad-apply-partial").exists()  # its savepoint rolled back
    for key in ("iso-bad-apply", "iso-bad-read"):
        row = CallbackInbox.objects.get(payload__contains=f"<Key><![CDATA[{key}]]></Key>")
        assert row.status == "pending" and "failed (test)" in row.error and row.run_after > time.time()
    assert CallbackInbox.objects.filter(status="done").count() == 6


def test_a_row_whose_lease_was_taken_over_is_not_applied(client, sim, transactional_db):
    point_product_at(sim)
    for i in range(3):
        _effect(client, f"lease-{i}")
    rows = queue.claim(CallbackInbox, "w1", 10, 60)
    # another worker took the first row after our lease ran out
    CallbackInbox.objects.filter(id=rows[0].id).update(locked_by="w2")
    assert inbox.process_rows(rows, "w1") == 2
    assert sorted(Effect.objects.values_list("key", flat=True)) == ["lease-1", "lease-2"]
    assert CallbackInbox.objects.get(id=rows[0].id).status == "pending"


def test_identical_edit_events_in_one_batch_are_read_once_and_all_marked_done(client, sim, transactional_db):
    point_product_at(sim)
    c = next(c for c in sim.control("world/sample", {"n": 5})["customers"] if c.get("followers"))
    other = next(
        x for x in sim.control("world/sample", {"n": 5})["customers"] if x["external_userid"] != c["external_userid"]
    )
    now = int(time.time())
    for t in (now - 3, now - 2, now - 1):  # three edits of one customer by one employee
        _post(
            client,
            {
                "CreateTime": t,
                "Event": "change_external_contact",
                "ChangeType": "edit_external_contact",
                "UserID": c["followers"][0],
                "ExternalUserID": c["external_userid"],
            },
        )
    _post(
        client,
        {
            "CreateTime": now,
            "Event": "change_external_contact",
            "ChangeType": "edit_external_contact",
            "UserID": other["followers"][0],
            "ExternalUserID": other["external_userid"],
        },
    )
    assert CallbackInbox.objects.filter(status="pending").count() == 4
    ApiCall.objects.all().delete()

    assert inbox.process_pending(limit=100, worker_id="w1") == 4

    assert CallbackInbox.objects.filter(status="done").count() == 4
    gets = list(ApiCall.objects.filter(path="externalcontact/get").values_list("errcode", flat=True))
    assert gets == [0, 0]  # one re-read per customer

    from siyu.customers.models import Customer

    assert Customer.objects.filter(external_userid__in=[c["external_userid"], other["external_userid"]]).count() == 2


def test_reads_of_a_batch_run_concurrently(client, sim, transactional_db):
    point_product_at(sim)
    n = 24
    _post_events(client, n, sleep_ms=200, prefix="conc")
    t0 = time.monotonic()
    assert inbox.process_pending(limit=100, worker_id="w1") == n
    elapsed = time.monotonic() - t0
    assert elapsed < n * 0.2 / 3, f"{elapsed:.2f}s: reads did not overlap"  # sequential: 4.8 s
    assert Effect.objects.filter(key__startswith="conc-").count() == n


def test_an_add_with_a_welcome_code_is_queued_urgent_and_claimed_first(client, sim, transactional_db):
    point_product_at(sim)
    _post_events(client, 5, sleep_ms=0, prefix="plain")
    now = int(time.time())
    base = {"Event": "change_external_contact", "UserID": "nobody", "ExternalUserID": "wmNobody"}
    _post(client, {**base, "CreateTime": now, "ChangeType": "add_external_contact", "WelcomeCode": "WELCOME1"})
    _post(client, {**base, "CreateTime": now + 1, "ChangeType": "add_external_contact"})  # no welcome code
    _post(
        client,
        {
            "CreateTime": now,
            "Event": "change_external_chat",
            "ChatId": "wrNobody",
            "ChangeType": "update",
            "UpdateDetail": "add_member",
            "JoinScene": 1,
            "MemCount": 3,
        },
    )
    _post(
        client,
        {
            "CreateTime": now,
            "Event": "change_external_chat",
            "ChatId": "wrNobody",
            "ChangeType": "update",
            "UpdateDetail": "change_name",
        },
    )
    urgent = list(CallbackInbox.objects.filter(priority__gt=0).order_by("id").values_list("event", "change_type"))
    assert urgent == [("change_external_contact", "add_external_contact")]  # group joins: WeCom welcomes them

    rows = queue.claim(CallbackInbox, "w1", 2, 60, first={"priority__gt": 0})
    assert [r.priority > 0 for r in rows] == [True, False]
    assert rows[1].event == "siyu_test_effect"  # then the oldest ordinary row


def test_a_welcome_does_not_wait_behind_a_backlog(client, sim, transactional_db):
    """The worker's urgent lane sends an add's welcome while the main loop is busy with a slow
    backlog; the add itself is then processed in its turn, without a second send."""
    from siyu.channels.models import DefaultWelcome, WelcomeSend
    from tests.sim.helpers import employee

    point_product_at(sim)
    userid = employee(sim)
    DefaultWelcome.objects.create(userid=userid, welcome={"text": "你好", "attachments": []})
    _post_events(client, 200, sleep_ms=40, prefix="backlog")
    worker = Worker(interval=0.05, batch=100)

    def run():
        try:
            worker.run(max_idle_s=0.5)
        finally:
            connection.close()  # this thread's own connection

    t = threading.Thread(target=run)
    t.start()
    try:
        time.sleep(0.3)  # the main loop is inside its first batch
        add = sim.control("add_friend", {"userid": userid, "add_way": 1, "by": "customer"})
        assert add["welcome_code"]
        _post(
            client,
            {
                "CreateTime": int(time.time()),
                "Event": "change_external_contact",
                "UserID": userid,
                "ExternalUserID": add["external_userid"],
                "ChangeType": "add_external_contact",
                "WelcomeCode": add["welcome_code"],
            },
        )
        queued = time.monotonic()
        while not WelcomeSend.objects.filter(welcome_code=add["welcome_code"], status="sent").exists():
            assert time.monotonic() - queued < 5, f"welcome not sent: {list(WelcomeSend.objects.values())}"
            time.sleep(0.02)
        latency = time.monotonic() - queued
        backlog_left = CallbackInbox.objects.filter(event="siyu_test_effect", status="pending").count()
    finally:
        t.join(timeout=60)
    assert backlog_left > 0, "the backlog was already drained: the test proves nothing"
    assert latency < 1.5, f"the welcome took {latency:.2f}s"
    assert Effect.objects.filter(key__startswith="backlog-").count() == 200
    row = CallbackInbox.objects.get(change_type="add_external_contact")
    assert (row.status, row.priority) == ("done", 0)  # handed to the ordinary lane, processed there
    log = sim.control("welcome_log", {"userid": userid})["welcome_codes"]
    assert [c["used_at"] is not None for c in log] == [True]
    assert WelcomeSend.objects.count() == 1
    sends = ApiCall.objects.filter(path__endswith="send_welcome_msg")
    assert sends.count() == 1 and sends.get().errcode == 0


def test_the_main_loop_gives_way_to_an_urgent_lane_that_falls_behind(monkeypatch):
    """A steady stream of adds the urgent lane keeps up with: the ordinary work (each add's
    re-read, tags and remark) goes on in small batches. A burst that puts the lane behind: the
    ordinary lane trickles (at most YIELD_BATCH rows per YIELD_S, never nothing) until the lane
    has been calm for URGENT_CALM_FOR_S."""
    from siyu.core import worker as worker_mod

    clock = [1000.0]
    monkeypatch.setattr(worker_mod.time, "monotonic", lambda: clock[0])
    w = Worker()
    assert w._inbox_batch() == w.batch  # idle urgent lane: full batches

    def busy(seconds: float, lag: float) -> int:
        """The urgent lane busy for ``seconds`` with batches ``lag`` late: ordinary rows taken."""
        taken = 0
        w._urgent_active = 1
        for _ in range(int(seconds * 10)):  # polled every 0.1 s
            w._note_urgent_lag(lag)
            taken += w._inbox_batch() or 0
            clock[0] += 0.1
        return taken

    assert busy(10, lag=0.03) == 100 * worker_mod.KEEPUP_BATCH  # keeping up
    trickle = busy(60, lag=1.5)  # falling behind
    assert 0 < trickle <= worker_mod.YIELD_BATCH * (60 / worker_mod.YIELD_S + 1)
    assert trickle / 60 <= 3  # rows per second
    assert busy(1, lag=0.3) <= worker_mod.YIELD_BATCH  # not calm yet
    assert busy(worker_mod.URGENT_CALM_FOR_S - 0.3, lag=0.03) <= worker_mod.YIELD_BATCH  # calm, not for long enough
    assert busy(1, lag=0.03) >= 5 * worker_mod.KEEPUP_BATCH  # calm again: back to keeping up

    busy(1, lag=1.5)
    w._urgent_active = 0
    w._urgent_busy_until = clock[0] + 0.2
    w._last_yielded_batch = clock[0]
    assert not w._inbox_batch()  # just after a non-empty urgent batch: still giving way
    clock[0] += 0.3
    assert w._inbox_batch() == w.batch  # idle
    w._urgent_active = 1
    assert w._inbox_batch() == worker_mod.KEEPUP_BATCH  # a new stream starts as keeping up


def test_batched_writes_are_merged_and_a_bad_one_still_fails_alone(client, sim, transactional_db):
    point_product_at(sim)
    now = int(time.time())
    for i in range(4):
        _post(client, {"CreateTime": now, "Event": "siyu_test_batched", "Key": f"m-{i}"})
    _post(client, {"CreateTime": now, "Event": "siyu_test_effect", "Key": "between"})  # keeps the order
    for i in range(4, 7):
        _post(client, {"CreateTime": now, "Event": "siyu_test_batched", "Key": f"m-{i}"})
    assert inbox.process_pending(limit=100, worker_id="w1") == 8
    got = dict(Effect.objects.filter(key__startswith="m-").values_list("key", "worker"))
    assert got == {**{f"m-{i}": "batch-of-4" for i in range(4)}, **{f"m-{i}": "batch-of-3" for i in range(4, 7)}}
    first, between, later = (Effect.objects.get(key=k).at for k in ("m-0", "between", "m-4"))
    assert first <= between <= later

    Effect.objects.all().delete()
    for i in range(3):
        _post(
            client,
            {"CreateTime": now + 1, "Event": "siyu_test_batched", "Key": f"n-{i}", "Fail": "apply" if i == 1 else ""},
        )
    assert inbox.process_pending(limit=100, worker_id="w1") == 2
    assert dict(Effect.objects.values_list("key", "worker")) == {"n-0": "batch-of-1", "n-2": "batch-of-1"}
    bad = CallbackInbox.objects.get(payload__contains="<Key><![CDATA[n-1]]></Key>")
    assert bad.status == "pending" and "merged write failed" in bad.error


def test_edits_of_several_customers_are_stored_with_their_own_event_times(client, sim, transactional_db):
    from siyu.customers.models import Customer, CustomerEvent

    point_product_at(sim)
    sample = [c for c in sim.control("world/sample", {"n": 6})["customers"] if c.get("followers")][:4]
    base = 1_790_000_000
    for i, c in enumerate(sample):
        _post(
            client,
            {
                "CreateTime": base + i,
                "Event": "change_external_contact",
                "ChangeType": "edit_external_contact",
                "UserID": c["followers"][0],
                "ExternalUserID": c["external_userid"],
            },
        )
    assert inbox.process_pending(limit=100, worker_id="w1") == len(sample)
    assert Customer.objects.filter(external_userid__in=[c["external_userid"] for c in sample]).count() == len(sample)
    # a change seen by a re-read lands on the timeline at its own event's time
    c = sample[1]
    sim.call(
        "externalcontact/remark",
        {"userid": c["followers"][0], "external_userid": c["external_userid"], "remark": "合并测试"},
    )
    for i, x in enumerate(sample):
        _post(
            client,
            {
                "CreateTime": base + 100 + i,
                "Event": "change_external_contact",
                "ChangeType": "edit_external_contact",
                "UserID": x["followers"][0],
                "ExternalUserID": x["external_userid"],
            },
        )
    assert inbox.process_pending(limit=100, worker_id="w1") == len(sample)
    ev = CustomerEvent.objects.get(customer__external_userid=c["external_userid"], kind=CustomerEvent.REMARK_CHANGED)
    assert int(ev.at.timestamp()) == base + 101
