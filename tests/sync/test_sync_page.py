"""The sync page: sync now, progress polling, and the nightly reconciliation's timer and run."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from siyu.accounts.models import Profile
from siyu.core.models import Timer
from siyu.core.worker import Worker
from siyu.customers.models import Customer, FollowRelation
from siyu.org.models import Employee
from siyu.sync import nightly
from siyu.sync.models import SyncRun
from tests.helpers import client_for, make_user, messages_of

CHINA = ZoneInfo("Asia/Shanghai")


def test_sync_page_sync_now_and_the_nightly_timer(synced, admin_client):
    run = SyncRun.objects.get()
    r = admin_client.get("/settings/sync/")
    assert r.status_code == 200
    body = r.content.decode()
    assert f"#{run.id}" in body and 'data-testid="sync-run-status">完成<' in body
    assert 'hx-trigger="every 2s"' not in body  # nothing under way: no polling
    assert f"{Customer.objects.count():,}" in body
    for role in (Profile.OPERATOR, Profile.GUIDE):
        binding = {"wecom_userid": "x"} if role == Profile.GUIDE else {}
        c = client_for(make_user(f"u-{role}", role, **binding))
        assert c.get("/settings/sync/").status_code == 403
        assert c.post("/settings/sync/run/").status_code == 403

    # sync now: enqueued for the worker; the page polls while it is queued
    from django_tasks_db.models import DBTaskResult

    r = admin_client.post("/settings/sync/run/", follow=True)
    assert any("已加入队列" in m for m in messages_of(r))
    assert DBTaskResult.objects.filter(status="READY", task_path="siyu.sync.tasks.full_sync").count() == 1
    assert 'hx-trigger="every 2s"' in r.content.decode() and 'data-testid="sync-queued"' in r.content.decode()
    admin_client.post("/settings/sync/run/")  # a second click while queued adds nothing
    assert DBTaskResult.objects.filter(status="READY").count() == 1
    DBTaskResult.objects.all().delete()

    # a worker start schedules the nightly timer once, at the next 03:00 China time
    Worker(interval=0.05).run(max_idle_s=0.2)
    Worker(interval=0.05).run(max_idle_s=0.2)
    timers = list(Timer.objects.filter(kind=nightly.KIND, status="pending"))
    assert len(timers) == 1
    due = datetime.fromtimestamp(timers[0].run_after, tz=CHINA)
    now = timezone.now().astimezone(CHINA)
    assert (due.hour, due.minute, due.second) == (
        3,
        0,
        0,
    ) and now < due <= now + timedelta(days=1)
    assert timers[0].key == f"nightly-sync:{due.date().isoformat()}"
    assert due.strftime("%Y-%m-%d 03:00") in admin_client.get("/settings/sync/").content.decode()

    # drift the nightly run must correct: a relation WeCom does not have
    emp = Employee.objects.filter(contact_enabled=True, status=Employee.STATUS_ACTIVE).first()
    ghost = Customer.objects.create(external_userid="wmGhost0001", name="ghost")
    FollowRelation.objects.create(customer=ghost, employee=emp, added_at=timezone.now() - timedelta(days=3))

    # the timer fires (its handler called as the worker would): tonight's sync is enqueued and
    # tomorrow's timer scheduled
    from django.db import transaction

    with transaction.atomic():
        nightly.on_nightly_timer(timers[0].payload)
    Timer.objects.filter(id=timers[0].id).update(status="done", key=None)
    pending = list(Timer.objects.filter(kind=nightly.KIND, status="pending"))
    assert len(pending) == 1 and datetime.fromtimestamp(pending[0].run_after, tz=CHINA) == due + timedelta(days=1)
    assert DBTaskResult.objects.filter(status="READY", task_path="siyu.sync.nightly.nightly_sync").count() == 1

    Worker(interval=0.05).run(max_idle_s=0.5)  # runs the nightly sync
    nightly_run = SyncRun.objects.order_by("-id").first()
    assert nightly_run.id != run.id and nightly_run.status == SyncRun.DONE
    assert nightly_run.state.get("trigger") == "nightly"
    assert nightly_run.counts["reconciled_relations"] == 1
    assert FollowRelation.objects.get(customer=ghost).status == FollowRelation.GONE
    body = admin_client.get("/settings/sync/").content.decode()
    assert "夜间对账" in body
    corrections = body.split('data-testid="sync-corrections"', 1)[1].split("</table>", 1)[0]
    assert "标记为流失" in corrections and ">1<" in corrections


def test_running_sync_is_polled_and_shows_progress(transactional_db, admin_client):
    now = timezone.now()
    run = SyncRun.objects.create(
        started_at=now,
        phase="customers",
        owner="elsewhere:1",
        counts={"relations": 50, "departments": 3},
        totals={"relations": 200},
        state={"customers": {"chains": []}},
    )
    r = admin_client.get("/settings/sync/")
    body = r.content.decode()
    assert 'hx-get="/settings/sync/status/"' in body and 'hx-trigger="every 2s"' in body
    latest = r.context["latest"]
    steps = {s["key"]: s["pct"] for s in latest["steps"]}
    assert steps == {
        "org": 100,
        "tags": 100,
        "customers": 25,
        "groups": 0,
        "reconcile": 0,
    }
    assert latest["overall"] == 5 + 5 + 15
    assert admin_client.get("/settings/sync/status/").status_code == 200
    SyncRun.objects.filter(id=run.id).update(status=SyncRun.DONE, phase="done", finished_at=now)
    assert 'hx-trigger="every 2s"' not in admin_client.get("/settings/sync/status/").content.decode()
