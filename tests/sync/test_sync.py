"""The full sync against the emulator: exact counts, idempotence, reconciliation, resuming.

The product's rows are compared with the emulator's own answers to other endpoints than the ones
the sync reads (externalcontact/list per employee, externalcontact/get per customer, the tag list,
groupchat/list + get), so a mistake in the sync's paging or mapping cannot hide itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection
from django.db.models import Count, F

from siyu.customers.models import (
    Customer,
    CustomerEvent,
    FollowRelation,
    FollowTag,
    Tag,
    TagGroup,
)
from siyu.groups.models import GroupChat, GroupMember
from siyu.org.models import Department, Employee
from siyu.sync.models import SyncRun
from siyu.sync.services import (
    FullSync,
    NothingToResume,
    SyncBusy,
    claim,
    run_full_sync,
)
from tests.conftest import point_product_at

ROOT = Path(__file__).resolve().parents[2]


class Stop(Exception):
    """Raised from a page hook: the process 'dies' after a committed page."""


@pytest.fixture
def product(sim, transactional_db):
    """The product pointed at the session emulator. The sync's reader threads open their own
    database connections, so the test database must be committed to (transactional_db)."""
    point_product_at(sim)
    yield sim


def emulator_view(sim) -> dict:
    """What WeCom says, read through endpoints the sync does not use for it."""
    follow = sim.get("externalcontact/get_follow_user_list")["follow_user"]
    relations: set[tuple[str, str]] = set()
    for userid in follow:
        r = sim.get("externalcontact/list", userid=userid)
        assert r["errcode"] in (0, 84061), r
        relations.update((userid, x) for x in r.get("external_userid", []))
    tags: dict[tuple[str, str], set[str]] = {}
    remarks: dict[tuple[str, str], str] = {}
    for x in sorted({x for _, x in relations}):
        r = sim.get("externalcontact/get", external_userid=x)
        assert r["errcode"] == 0, r
        for f in r["follow_user"]:
            tags[(f["userid"], x)] = {t["tag_id"] for t in f["tags"] if t["type"] == 1}
            remarks[(f["userid"], x)] = f["remark"]
    groups = {}
    cursor = ""
    while True:
        r = sim.call("externalcontact/groupchat/list", {"limit": 1000, "cursor": cursor})
        for g in r["group_chat_list"]:
            detail = sim.call("externalcontact/groupchat/get", {"chat_id": g["chat_id"]})["group_chat"]
            groups[g["chat_id"]] = {m["userid"] for m in detail["member_list"]}
        cursor = r["next_cursor"]
        if not cursor:
            break
    tag_groups = sim.call("externalcontact/get_corp_tag_list", {})["tag_group"]
    return {
        "departments": {d["id"] for d in sim.get("department/list")["department"]},
        "employees": {u["userid"] for u in sim.get("user/list", department_id=1, fetch_child=1)["userlist"]},
        "follow": set(follow),
        "relations": relations,
        "tags": tags,
        "remarks": remarks,
        "groups": groups,
        "tag_groups": {g["group_id"] for g in tag_groups},
        "tag_ids": {t["id"] for g in tag_groups for t in g["tag"]},
    }


def assert_matches(view: dict) -> None:
    assert set(Department.objects.values_list("id", flat=True)) == view["departments"]
    assert (
        set(Employee.objects.exclude(status=Employee.STATUS_LEFT).values_list("userid", flat=True)) == view["employees"]
    )
    assert set(Employee.objects.filter(contact_enabled=True).values_list("userid", flat=True)) == view["follow"]

    live = FollowRelation.objects.exclude(status__in=FollowRelation.LOST_STATUSES)
    mine = set(live.values_list("employee__userid", "customer__external_userid"))
    assert mine == view["relations"]
    per_employee: dict[str, int] = {}
    for userid, _ in view["relations"]:
        per_employee[userid] = per_employee.get(userid, 0) + 1
    for userid, n in per_employee.items():
        assert live.filter(employee__userid=userid).count() == n, userid
    active = Customer.objects.filter(status=Customer.ACTIVE)
    assert set(active.values_list("external_userid", flat=True)) == {x for _, x in view["relations"]}
    # customers whose relations all ended are kept, as lost
    assert not Customer.objects.filter(status=Customer.LOST, lost_at__isnull=True).exists()
    assert not live.filter(customer__status=Customer.LOST).exists()

    tagged: dict[tuple[str, str], set[str]] = {}
    for userid, x, tag_id in FollowTag.objects.filter(relation__in=live).values_list(
        "relation__employee__userid", "relation__customer__external_userid", "tag__tag_id"
    ):
        tagged.setdefault((userid, x), set()).add(tag_id)
    assert {k: v for k, v in view["tags"].items() if v} == tagged
    assert not FollowTag.objects.exclude(customer_id=F("relation__customer_id")).exists()
    remarks = {(u, x): r for u, x, r in live.values_list("employee__userid", "customer__external_userid", "remark")}
    assert remarks == view["remarks"]

    assert set(TagGroup.objects.filter(deleted=False).values_list("group_id", flat=True)) == view["tag_groups"]
    assert set(Tag.objects.filter(deleted=False).values_list("tag_id", flat=True)) == view["tag_ids"]

    assert set(GroupChat.objects.filter(status=GroupChat.ACTIVE).values_list("chat_id", flat=True)) == set(
        view["groups"]
    )
    for chat_id, members in view["groups"].items():
        current = GroupMember.objects.filter(group__chat_id=chat_id, left_at__isnull=True)
        assert set(current.values_list("userid", flat=True)) == members, chat_id
        assert GroupChat.objects.get(chat_id=chat_id).member_count == len(members)


def assert_no_duplicates() -> None:
    """One timeline 'added' per relation and one 'group_joined' per customer stay."""
    assert CustomerEvent.objects.filter(kind=CustomerEvent.ADDED).count() == FollowRelation.objects.count()
    joins = CustomerEvent.objects.filter(kind=CustomerEvent.GROUP_JOINED).count()
    assert joins == GroupMember.objects.filter(customer__isnull=False).count()


def test_full_sync_gives_exactly_the_emulators_data(product):
    sim = product
    run = run_full_sync(workers=3)
    assert run.status == SyncRun.DONE and run.phase == "done"
    view = emulator_view(sim)
    assert_matches(view)
    assert_no_duplicates()
    assert run.counts["relations"] == len(view["relations"])
    assert run.counts["customers"] == Customer.objects.count()
    assert run.totals["relations"] == len(view["relations"])  # the estimate is exact here
    assert run.counts["groups"] == len(view["groups"]) == run.totals["groups"]
    assert not Customer.objects.exclude(status=Customer.ACTIVE).exists()
    assert Customer.objects.filter(first_added_at__isnull=True).count() == 0

    # A second run changes nothing and writes no timeline entries.
    events = CustomerEvent.objects.count()
    again = run_full_sync(workers=2, page_limit=37)
    assert again.id != run.id and again.counts["new_relations"] == 0 and again.counts["events"] == 0
    assert again.counts["reconciled_relations"] == 0 and again.counts["reconciled_groups"] == 0
    assert CustomerEvent.objects.count() == events
    assert_matches(emulator_view(sim))


def test_sync_reconciles_what_wecom_no_longer_has(product):
    sim = product
    run_full_sync()
    # A customer followed by exactly one employee, deleted by that employee while no callback
    # reached us; a group dismissed the same way.
    single = Customer.objects.annotate(n=Count("relations")).filter(n=1).values("id")
    rel = (
        FollowRelation.objects.filter(status=FollowRelation.ACTIVE, customer_id__in=single)
        .select_related("customer", "employee")
        .order_by("id")
        .first()
    )
    sim.control(
        "delete", {"userid": rel.employee.userid, "external_userid": rel.customer.external_userid, "by": "employee"}
    )
    chat = GroupChat.objects.filter(status=GroupChat.ACTIVE).order_by("id").first()
    sim.control("group/dismiss", {"chat_id": chat.chat_id})

    run = run_full_sync()
    assert run.counts["reconciled_relations"] == 1
    assert run.counts["reconciled_groups"] == 1
    rel.refresh_from_db()
    assert rel.status == FollowRelation.GONE and rel.status_changed_at is not None
    customer = Customer.objects.get(id=rel.customer_id)
    assert customer.status == Customer.LOST and customer.lost_at == rel.status_changed_at  # kept, not deleted
    assert CustomerEvent.objects.filter(customer=customer, kind=CustomerEvent.LOST, detail__by="sync").count() == 1
    chat.refresh_from_db()
    assert chat.status == GroupChat.DISMISSED and chat.dismissed_at is not None
    assert not GroupMember.objects.filter(group=chat, left_at__isnull=True).exists()
    assert_matches(emulator_view(sim))


def test_interrupted_sync_resumes_where_it_stopped(product):
    sim = product
    pages = {"customers": 0, "groups": 0}

    def die_after(phase: str, n: int):
        def hook(run, current):
            pages[current] += 1
            if current == phase and pages[current] == n:
                raise Stop(f"killed after {n} {phase} pages")

        return hook

    with pytest.raises(Stop):
        FullSync(claim(), workers=2, page_limit=20, on_page=die_after("customers", 4)).execute()
    run = SyncRun.objects.get()
    assert run.status == SyncRun.FAILED and run.phase == "customers" and "killed" in run.error
    assert run.counts["pages"] >= 4  # pages fetched meanwhile may have been written together
    written = FollowRelation.objects.count()
    assert 0 < written <= run.counts["pages"] * 20 < len(emulator_view(sim)["relations"])
    cursors = [c["cursor"] for c in run.state["customers"]["chains"]]
    assert any(cursors)

    pages.update(customers=0, groups=0)
    group_batch = 1
    with pytest.raises(Stop):
        FullSync(
            claim(resume_only=True), workers=2, page_limit=20, group_batch=group_batch, on_page=die_after("groups", 2)
        ).execute()
    run.refresh_from_db()
    assert run.status == SyncRun.FAILED and run.phase == "groups" and run.resumes == 1
    assert run.state["groups"]["done"] == 2 * group_batch

    done = run_full_sync(resume_only=True, workers=2)
    assert done.id == run.id and done.status == SyncRun.DONE and done.resumes == 2
    view = emulator_view(sim)
    assert_matches(view)
    assert_no_duplicates()
    # every relation was counted once although pages were read twice around the interruptions
    assert done.counts["new_relations"] == len(view["relations"])
    assert done.counts["groups"] == len(view["groups"])


def _sync_process(*args: str) -> subprocess.Popen:
    name = connection.settings_dict["NAME"]
    env = dict(
        os.environ, DJANGO_SETTINGS_MODULE="tests.settings", PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "src")])
    )
    if connection.vendor == "postgresql":
        env["DATABASE_URL"] = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" + name
    else:
        env["DATABASE_URL"] = f"sqlite:///{name}"
    return subprocess.Popen(
        [sys.executable, "-m", "siyu.cli", "sync", *args],
        env=env,
        cwd=str(ROOT),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_siyu_sync_killed_then_resumed(product):
    sim = product
    first = _sync_process("--limit", "1", "--workers", "1")
    deadline = time.time() + 60
    while time.time() < deadline:
        run = SyncRun.objects.first()
        if run and run.counts.get("pages", 0) >= 20:
            break
        time.sleep(0.02)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    run = SyncRun.objects.get()
    assert run.status == SyncRun.RUNNING and run.phase == "customers"  # died without a word
    assert run.counts["pages"] >= 20

    second = _sync_process("--resume")
    out, _ = second.communicate(timeout=120)
    assert second.returncode == 0, out
    assert f"resuming sync run {run.id} at phase customers" in out
    assert f"sync run {run.id} done" in out
    assert "[customers]" in out  # the progress line
    run.refresh_from_db()
    assert run.status == SyncRun.DONE and run.resumes == 1
    assert_matches(emulator_view(sim))
    assert_no_duplicates()


def test_a_running_sync_is_not_started_twice(product):
    with pytest.raises(NothingToResume):
        claim(resume_only=True)
    run = claim()
    SyncRun.objects.filter(id=run.id).update(owner="elsewhere:1")
    with pytest.raises(SyncBusy):
        claim()
    # a restart abandons an interrupted run (its owner gone) and starts a new one
    SyncRun.objects.filter(id=run.id).update(status=SyncRun.FAILED, owner="")
    fresh = claim(restart=True)
    assert fresh.id != run.id
    assert SyncRun.objects.get(id=run.id).status == SyncRun.ABANDONED


def test_full_sync_task_runs_in_the_worker(product):
    from siyu.core.worker import Worker
    from siyu.sync.tasks import full_sync

    result = full_sync.enqueue()
    Worker(interval=0.05).run(max_idle_s=1)
    result.refresh()
    assert result.status == "SUCCESSFUL", result
    assert result.return_value["status"] == SyncRun.DONE
    assert FollowRelation.objects.exists()
