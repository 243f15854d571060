"""Live results of mass messages and Moments (issue 16 item 3), on the database alone: the sync
schedule (timer kind, next due times, the call budget, back-off), the honest statuses, and the
per-target states WeCom's answers allow."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from siyu.broadcasts import selectors, services
from siyu.broadcasts.models import Batch, Broadcast, Recipient
from siyu.core import timers

pytestmark = pytest.mark.django_db

FAST, SLOW, FOR = 300, 3600, 3 * 24 * 3600


def sent(ago_s: float = 0, kind: str = Broadcast.CUSTOMER, **fields) -> Broadcast:
    return Broadcast.objects.create(
        kind=kind, name="双十二", status=Broadcast.SENT, sent_at=timezone.now() - timedelta(seconds=ago_s), **fields
    )


def batch(b: Broadcast, userid: str = "u1", **fields) -> Batch:
    return Batch.objects.create(broadcast=b, userid=userid, status=Batch.SENT, msgid=f"msg-{userid}", **fields)


@override_settings(SIYU_BROADCAST_SYNC_FAST_S=FAST, SIYU_BROADCAST_SYNC_SLOW_S=SLOW, SIYU_BROADCAST_SYNC_FOR_S=FOR)
def test_every_few_minutes_the_first_day_then_hourly_until_the_end():
    b = sent()
    t0 = b.sent_at.timestamp()
    spread = lambda interval: (b.id * 7919) % (interval // 10)  # noqa: E731 - the offset rule, restated
    assert services.next_sync_at(b, t0 + 10) == t0 + 10 + FAST + spread(FAST)
    assert services.next_sync_at(b, t0 + 23 * 3600) == t0 + 23 * 3600 + FAST + spread(FAST)
    assert services.next_sync_at(b, t0 + 25 * 3600) == t0 + 25 * 3600 + SLOW + spread(SLOW)
    # one last read exactly at the end, then none
    assert services.next_sync_at(b, t0 + FOR - 60) == t0 + FOR
    assert services.next_sync_at(b, t0 + FOR) is None
    assert services.next_sync_at(Broadcast(id=1, sent_at=None), t0) is None


@override_settings(SIYU_BROADCAST_SYNC_FAST_S=FAST)
def test_tasks_sent_together_are_spread_over_a_tenth_of_the_interval():
    now = time.time()
    offsets = set()
    for _ in range(20):
        b = sent()
        offsets.add(services.next_sync_at(b, now) - now - FAST)
    assert all(0 <= o < FAST // 10 for o in offsets)
    assert len(offsets) > 10  # not all in the same second


def sync_timer(b: Broadcast) -> float | None:
    return next(
        (t["run_after"] for t in timers.pending(services.SYNC_TIMER) if t["payload"] == {"id": b.id}),
        None,
    )


@override_settings(SIYU_BROADCAST_SYNC_FAST_S=FAST, SIYU_BROADCAST_SYNC_FOR_S=FOR)
def test_one_pending_sync_timer_while_an_employee_task_is_open():
    b = sent(ago_s=60)
    batch(b)
    before = time.time()
    at = services.schedule_next_sync(b)
    assert at is not None and before + FAST <= at <= time.time() + FAST + FAST // 10
    assert sync_timer(b) == at
    # scheduled again (e.g. the manual button and the timer): still one timer, moved
    services.schedule_next_sync(b, more=True)
    assert len([t for t in timers.pending(services.SYNC_TIMER) if t["payload"] == {"id": b.id}]) == 1
    assert sync_timer(b) <= time.time() + services.FIRST_SYNC_S
    assert selectors.progress(b)["live"] is True


def test_quota_errors_back_off():
    b = sent(ago_s=60)
    batch(b)
    at = services.schedule_next_sync(b, backoff=True)
    assert at is not None and at >= time.time() + services.QUOTA_BACKOFF_S - 5


def test_the_call_budget_stops_a_run_before_any_call():
    budget = services.Budget(calls=2)
    budget.spend()
    budget.spend()
    with pytest.raises(services.BudgetSpent):
        budget.spend()
    assert budget.used == 2


def test_final_when_every_task_is_read_no_timer_and_the_page_stops_refreshing():
    b = sent(ago_s=60)
    batch(b, task_status=2, results_synced=True)
    Recipient.objects.create(broadcast=b, target="wm-x", state=Recipient.RECEIVED)
    assert services.schedule_next_sync(b) is None
    assert sync_timer(b) is None
    b.refresh_from_db()
    assert b.totals["final"] is True
    p = selectors.progress(b)
    assert p["live"] is False and p["code"] == "done" and str(p["label"]) == "已完成"


@override_settings(SIYU_BROADCAST_SYNC_FOR_S=FOR)
def test_after_the_end_targets_of_employees_who_never_sent_are_declined():
    b = sent(ago_s=FOR + 10)
    bt = batch(b, task_status=0)
    Recipient.objects.create(broadcast=b, target="wm-a", state=Recipient.DELIVERED, employee_id=bt.employee_id)
    Recipient.objects.create(broadcast=b, target="wm-b", state=Recipient.RECEIVED)
    assert services.schedule_next_sync(b) is None
    states = dict(Recipient.objects.filter(broadcast=b).values_list("target", "state"))
    assert states == {"wm-a": Recipient.DECLINED, "wm-b": Recipient.RECEIVED}
    assert Recipient.objects.get(target="wm-a").reason == "task_ended"
    b.refresh_from_db()
    assert b.totals["declined"] == 1 and b.totals["final"]
    p = selectors.progress(b)
    assert p["code"] == "ended" and str(p["label"]) == "已结束"


def test_statuses_mean_what_they_say():
    now = time.time()
    immediate = Broadcast.objects.create(name="立即", status=Broadcast.SCHEDULED, send_at=None)
    p = selectors.progress(immediate, now)
    assert p["code"] == "creating" and str(p["label"]) != "定时" and p["live"]
    later = Broadcast.objects.create(
        name="定时", status=Broadcast.SCHEDULED, send_at=timezone.now() + timedelta(days=1)
    )
    assert str(selectors.progress(later, now)["label"]) == "定时"
    waiting = sent(totals={"employees": 3, "employees_confirmed": 1})
    p = selectors.progress(waiting, now)
    assert p["code"] == "waiting" and "1/3" in str(p["note"]) and p["live"]
    moment = sent(kind=Broadcast.MOMENT, totals={"employees": 2, "employees_confirmed": 0})
    assert str(selectors.progress(moment, now)["label"]) == "等待员工发表"
    for status in (Broadcast.DRAFT, Broadcast.CANCELLED, Broadcast.FAILED):
        assert selectors.progress(Broadcast.objects.create(name=status, status=status), now)["live"] is False


def test_reasons_are_words():
    assert selectors.reason_label("employee_unselected") == "员工发送时未选择该客户"
    assert selectors.reason_label("over_quota").startswith("客户已达群发接收上限")
    label = selectors.reason_label("errcode:41048")
    assert "没有可发送的客户" in label and "41048" not in label
    assert selectors.reason_label("errcode:x") == "其他原因"


class _Answers:
    """get_groupmsg_send_result's answer for one employee task (contract part 2 §1.4), paged."""

    def __init__(self, items: list[dict]):
        self.items = items
        self.calls = 0

    def get_groupmsg_send_result(self, msgid: str, userid: str, limit: int = 1000, cursor: str = "") -> dict:
        self.calls += 1
        i = int(cursor or 0)
        return {"send_list": self.items[i : i + 2], "next_cursor": str(i + 2) if i + 2 < len(self.items) else ""}


def test_wecom_per_customer_statuses_map_to_honest_states():
    b = sent(ago_s=60)
    bt = batch(b)
    for t in ("sent", "gone", "capped", "unselected"):
        Recipient.objects.create(broadcast=b, target=t, state=Recipient.DELIVERED, employee_id=None)
    Batch.objects.filter(id=bt.id).update(
        lo_id=Recipient.objects.filter(broadcast=b).order_by("id").first().id,
        hi_id=Recipient.objects.filter(broadcast=b).order_by("id").last().id,
    )
    bt.refresh_from_db()
    api = _Answers(
        [
            {"external_userid": "sent", "status": 1, "send_time": 1_700_000_000},
            {"external_userid": "gone", "status": 2},
            {"external_userid": "capped", "status": 3},
            {"external_userid": "unselected", "status": 0},
        ]
    )
    got = services._read_results(api, b, bt, services.Budget(calls=10))
    assert got == 1 and api.calls == 2  # paged
    rows = {r.target: (r.state, r.reason) for r in Recipient.objects.filter(broadcast=b)}
    assert rows == {
        "sent": (Recipient.RECEIVED, ""),
        "gone": (Recipient.FAILED, "not_friend"),
        "capped": (Recipient.FAILED, "over_quota"),
        "unselected": (Recipient.DECLINED, "employee_unselected"),
    }
    t = services.totals(b)
    assert (t["received"], t["failed"], t["declined"], t["pending"]) == (1, 2, 1, 0)
    assert t["failed_by_reason"] == {"not_friend": 1, "over_quota": 1}
    # a budget of one call cannot read two pages: the run stops, the rest continues later
    with pytest.raises(services.BudgetSpent):
        services._read_results(_Answers(api.items), b, bt, services.Budget(calls=1))


# --- the pages: Moments on their own, fragments that stop polling when final ---------------------------
def test_moments_have_their_own_page_and_menu_item(admin_client):
    mass = sent()
    moment = sent(kind=Broadcast.MOMENT)
    Broadcast.objects.filter(id=moment.id).update(name="朋友圈B")
    listing = admin_client.get("/broadcasts/").content.decode()
    assert f'data-broadcast="{mass.id}"' in listing and f'data-broadcast="{moment.id}"' not in listing
    page = admin_client.get("/broadcasts/moments/").content.decode()
    assert f'data-broadcast="{moment.id}"' in page and f'data-broadcast="{mass.id}"' not in page
    assert 'href="/broadcasts/moments/"' in page and "新建朋友圈" in page  # the menu item and the action
    assert "等待员工发表" in page


def test_fragments_poll_while_live_and_stop_with_286(admin_client):
    b = sent(ago_s=60)
    batch(b)
    Recipient.objects.create(broadcast=b, target="wm-x", state=Recipient.RECEIVED)
    html = admin_client.get(f"/broadcasts/{b.id}/").content.decode()
    assert 'data-testid="live-poll"' in html and 'hx-trigger="every ' in html
    r = admin_client.get(f"/broadcasts/{b.id}/", {"part": "live"})
    assert r.status_code == 200 and "<html" not in r.content.decode()
    assert admin_client.get("/broadcasts/", {"part": "rows"}).status_code == 200
    services.schedule_next_sync(b)  # still open: live
    Batch.objects.filter(broadcast=b).update(task_status=2, results_synced=True)
    services.schedule_next_sync(b)  # every task read: final
    r = admin_client.get(f"/broadcasts/{b.id}/", {"part": "live"})
    assert r.status_code == 286 and "已完成" in r.content.decode()
    assert admin_client.get("/broadcasts/", {"part": "rows"}).status_code == 286
    assert 'data-testid="live-poll"' not in admin_client.get(f"/broadcasts/{b.id}/").content.decode()


@override_settings(SIYU_BROADCAST_SYNC_FOR_S=FOR)
def test_worker_start_gives_every_live_task_its_sync_timer():
    live = sent(ago_s=3600)
    final = sent(ago_s=60, totals={"final": True})
    old = sent(ago_s=FOR + 60)
    assert services.resume_live_syncs() == 1
    assert sync_timer(live) is not None and sync_timer(final) is None and sync_timer(old) is None
    assert services.resume_live_syncs() == 0  # a pending timer is kept, not doubled


def test_nothing_sent_is_not_called_done():
    empty = sent(totals={"planned": 0, "skipped": 5, "final": True})
    assert selectors.progress(empty)["code"] == "empty"
    refused = sent(totals={"planned": 4, "delivered": 0, "employees": 1, "final": True})
    p = selectors.progress(refused)
    assert p["code"] == "refused" and str(p["label"]) == "未能创建任务" and not p["live"]
