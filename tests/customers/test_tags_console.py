"""Tag management, customer groups, employees and the sync page, against the emulator.

Tag changes made in the console must reach WeCom (checked with the emulator's own
get_corp_tag_list) and the local copy; changes made in WeCom's admin console come back by
callback. Group and employee pages honour the data scope; hostile names render inert.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db.models import Count
from django.test import Client
from django.utils import timezone

from siyu.accounts import services as accounts
from siyu.accounts.models import Profile
from siyu.core.models import Timer
from siyu.core.worker import Worker
from siyu.sync import nightly
from siyu.sync.models import SyncRun
from siyu.customers.tags import selectors as tag_selectors
from siyu.customers.models import (
    Customer,
    FollowRelation,
    FollowTag,
    Tag,
    TagGroup,
)
from siyu.sync.services import run_full_sync
from siyu.groups import services as group_services
from siyu.groups.models import GroupChat, GroupMember
from siyu.org.models import Department, Employee, EmployeeDepartment
from siyu.org.selectors import employee_ids_in_subtree
from tests.conftest import point_product_at
from tests.sync.test_sync_callbacks import World

PASSWORD = "tags-pass-123"
CHINA = ZoneInfo("Asia/Shanghai")


def user(username: str, role: str, **binding):
    u, _ = accounts.ensure_user(username, PASSWORD, role=role, **binding)
    return u


def client_for(u) -> Client:
    c = Client()
    c.force_login(u)
    return c


@pytest.fixture
def synced(sim, transactional_db):
    """The product pointed at the session emulator and fully synced with it."""
    point_product_at(sim)
    run_full_sync(workers=2)
    yield sim


@pytest.fixture
def admin_client(transactional_db):
    return client_for(user("admin", Profile.ADMIN))


def wecom_groups(sim, **body) -> list[dict]:
    return sim.call("externalcontact/get_corp_tag_list", body)["tag_group"]


def wecom_group_named(sim, name: str) -> dict | None:
    return next((g for g in wecom_groups(sim) if g["group_name"] == name), None)


def local_tags(group: TagGroup) -> list[str]:
    return list(
        Tag.objects.filter(group=group, deleted=False)
        .order_by("-order", "id")
        .values_list("name", flat=True)
    )


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def a_guide_with_groups() -> Employee:
    owner_id = (
        GroupChat.objects.filter(status=GroupChat.ACTIVE, owner__isnull=False)
        .values("owner_id")
        .annotate(n=Count("id"))
        .order_by("-n")
        .values_list("owner_id", flat=True)
        .first()
    )
    return Employee.objects.get(id=owner_id)


# --- tags -------------------------------------------------------------------------------------
def test_tag_crud_reaches_wecom_and_the_local_copy(synced, admin_client):
    sim = synced
    name = f"测试组{uuid.uuid4().hex[:6]}"
    r = admin_client.post(
        "/tags/groups/new/", {"name": name, "tags": "甲，乙, 丙"}, follow=True
    )
    assert r.status_code == 200 and any("已创建" in m for m in messages_of(r)), (
        messages_of(r)
    )
    wg = wecom_group_named(sim, name)
    assert wg is not None and [t["name"] for t in wg["tag"]] == ["甲", "乙", "丙"]
    group = TagGroup.objects.get(group_id=wg["group_id"], deleted=False)
    assert local_tags(group) == ["甲", "乙", "丙"]
    # the new group sorts first, in WeCom and here
    assert wecom_groups(sim)[0]["group_id"] == group.group_id
    assert (
        tag_selectors.tag_library(accounts_scope_everything())[0]["group"].group_id
        == group.group_id
    )
    body = r.content.decode()
    assert name in body and "甲" in body

    # add tags: appended after the existing ones
    r = admin_client.post(
        f"/tags/groups/{group.group_id}/tags/", {"tags": "丁"}, follow=True
    )
    assert any("已添加" in m for m in messages_of(r))
    assert [
        t["name"] for t in wecom_groups(sim, group_id=[group.group_id])[0]["tag"]
    ] == ["甲", "乙", "丙", "丁"]
    assert local_tags(group) == ["甲", "乙", "丙", "丁"]

    # rename a tag and the group
    yi = Tag.objects.get(group=group, name="乙", deleted=False)
    admin_client.post(f"/tags/{yi.tag_id}/rename/", {"name": "乙二"})
    admin_client.post(f"/tags/{group.group_id}/rename/", {"name": name + "改"})
    wg = wecom_groups(sim, group_id=[group.group_id])[0]
    assert wg["group_name"] == name + "改" and [t["name"] for t in wg["tag"]] == [
        "甲",
        "乙二",
        "丙",
        "丁",
    ]
    group.refresh_from_db()
    assert group.name == name + "改" and local_tags(group) == ["甲", "乙二", "丙", "丁"]

    # reorder: 丙 up, then 甲 down
    bing = Tag.objects.get(group=group, name="丙", deleted=False)
    admin_client.post(f"/tags/{bing.tag_id}/move/", {"direction": "up"})
    jia = Tag.objects.get(group=group, name="甲", deleted=False)
    admin_client.post(f"/tags/{jia.tag_id}/move/", {"direction": "down"})
    expected = ["丙", "甲", "乙二", "丁"]
    assert [
        t["name"] for t in wecom_groups(sim, group_id=[group.group_id])[0]["tag"]
    ] == expected
    assert local_tags(group) == expected
    # a group moves among the groups
    admin_client.post(f"/tags/{group.group_id}/move/", {"direction": "down"})
    assert [g["group_id"] for g in wecom_groups(sim)].index(group.group_id) == 1
    assert (
        list(
            TagGroup.objects.filter(deleted=False)
            .order_by("-order", "id")
            .values_list("group_id", flat=True)
        ).index(group.group_id)
        == 1
    )

    # delete a tag, then the group
    r = admin_client.post(f"/tags/tags/{jia.tag_id}/delete/", follow=True)
    assert any("已删除" in m for m in messages_of(r))
    assert [
        t["name"] for t in wecom_groups(sim, group_id=[group.group_id])[0]["tag"]
    ] == ["丙", "乙二", "丁"]
    assert Tag.objects.get(tag_id=jia.tag_id).deleted
    admin_client.post(f"/tags/groups/{group.group_id}/delete/")
    assert wecom_group_named(sim, name + "改") is None
    group.refresh_from_db()
    assert group.deleted and not Tag.objects.filter(group=group, deleted=False).exists()
    assert name + "改" not in admin_client.get("/tags/").content.decode()


def accounts_scope_everything():
    from siyu.accounts.selectors import DataScope

    return DataScope(everything=True)


def test_wecom_refusals_are_shown_with_errcode_and_meaning(
    synced, admin_client, sim_rules
):
    before = Tag.objects.filter(deleted=False).count()
    r = admin_client.post(
        "/tags/groups/new/", {"name": "超长" * 16, "tags": "a"}, follow=True
    )
    msgs = messages_of(r)
    assert any("40072" in m and "30" in m for m in msgs), msgs
    live = len([t for g in wecom_groups(synced) for t in g["tag"]])
    sim_rules(corp_tag_cap=live)
    r = admin_client.post(
        "/tags/groups/new/", {"name": "上限组", "tags": "x"}, follow=True
    )
    msgs = messages_of(r)
    assert any("40126" in m and "上限" in m for m in msgs), msgs
    assert (
        'class="alert alert-error' in r.content.decode()
        or "alert-error" in r.content.decode()
    )
    assert (
        Tag.objects.filter(deleted=False).count() == before
        and wecom_group_named(synced, "上限组") is None
    )
    # a duplicate name inside a group
    tag = Tag.objects.filter(deleted=False).select_related("group").first()
    other = (
        Tag.objects.filter(group=tag.group, deleted=False).exclude(id=tag.id).first()
    )
    if other is not None:
        r = admin_client.post(
            f"/tags/{tag.tag_id}/rename/", {"name": other.name}, follow=True
        )
        assert any("40071" in m for m in messages_of(r)), messages_of(r)


def test_tag_page_is_read_only_for_store_managers_and_guides_and_counts_are_scoped(
    synced, admin_client
):
    guide_emp = Employee.objects.filter(
        relations__status=FollowRelation.ACTIVE, relations__follow_tags__isnull=False
    ).first()
    guide = client_for(user("guide1", Profile.GUIDE, wecom_userid=guide_emp.userid))
    dept = (
        EmployeeDepartment.objects.filter(employee=guide_emp)
        .values_list("department_id", flat=True)
        .first()
    )
    manager = client_for(user("mgr1", Profile.STORE_MANAGER, department_id=dept))
    tag = Tag.objects.filter(deleted=False).first()
    for c in (guide, manager):
        r = c.get("/tags/")
        assert r.status_code == 200
        body = r.content.decode()
        assert (
            "group-create" not in body
            and "tag-delete" not in body
            and "你的角色只能查看标签" in body
        )
        assert (
            c.post("/tags/groups/new/", {"name": "x", "tags": "y"}).status_code == 403
        )
        assert c.post(f"/tags/tags/{tag.tag_id}/delete/").status_code == 403
        assert c.post(f"/tags/{tag.tag_id}/rename/", {"name": "z"}).status_code == 403
    assert not Tag.objects.get(id=tag.id).deleted
    # counts: the guide counts only their own customers with the tag
    from siyu.accounts.selectors import data_scope

    counts = tag_selectors.tag_customer_counts(
        data_scope(user("guide1", Profile.GUIDE, wecom_userid=guide_emp.userid))
    )
    expected = dict(
        FollowTag.objects.filter(
            relation__employee=guide_emp,
            relation__status=FollowRelation.ACTIVE,
            tag__deleted=False,
        )
        .values("tag_id")
        .annotate(n=Count("customer_id", distinct=True))
        .values_list("tag_id", "n")
    )
    assert counts == expected and counts
    everyone = tag_selectors.tag_customer_counts(accounts_scope_everything())
    assert all(everyone[t] >= n for t, n in counts.items())
    # the page shows the admin's (corp-wide) count for a tag
    tag_pk, n = max(everyone.items(), key=lambda kv: kv[1])
    t = Tag.objects.get(id=tag_pk)
    body = admin_client.get("/tags/").content.decode()
    row = body.split(f'data-tag="{t.tag_id}"', 1)[1].split("</tr>", 1)[0]
    assert f'data-testid="tag-count">{n:,}<' in row


def test_admin_side_tag_and_group_changes_come_back_by_callback(live_callbacks):
    sim = live_callbacks
    run_full_sync(workers=2)
    world = World(sim)
    admin = client_for(user("admin", Profile.ADMIN))
    name = f"后台组{uuid.uuid4().hex[:6]}"
    res = world.control("tags/admin_create", {"group_name": name, "tags": ["春", "夏"]})
    gid = res["tag_group"]["group_id"]
    world.process()
    group = TagGroup.objects.get(group_id=gid)
    assert sorted(local_tags(group)) == sorted(
        ["春", "夏"]
    )  # equal orders: WeCom's tie order is arbitrary
    assert name in admin.get("/tags/").content.decode()

    chun = res["tag_group"]["tag"][0]["id"]
    world.control("tags/admin_update", {"id": chun, "name": "春天"})
    world.process()
    assert Tag.objects.get(tag_id=chun).name == "春天"
    xia = res["tag_group"]["tag"][1]["id"]
    world.control("tags/admin_shuffle", {"group_id": gid, "order": [xia, chun]})
    world.process()
    assert local_tags(group) == ["夏", "春天"]
    world.control("tags/admin_delete", {"group_id": [gid]})
    world.process()
    group.refresh_from_db()
    assert group.deleted and name not in admin.get("/tags/").content.decode()

    # a member leaves a group: the join/leave history shows it
    chat = (
        GroupMember.objects.filter(
            left_at__isnull=True,
            type=GroupMember.CUSTOMER,
            group__status=GroupChat.ACTIVE,
        )
        .select_related("group")
        .first()
    )
    world.control("group/leave", {"chat_id": chat.group.chat_id, "userid": chat.userid})
    world.process()
    stay = GroupMember.objects.get(id=chat.id)
    assert stay.left_at is not None
    body = admin.get(f"/groups/{chat.group_id}/").content.decode()
    history = body.split('data-testid="history-table"', 1)[1]
    assert history.count('data-left="1"') >= 1


# --- groups -----------------------------------------------------------------------------------
def test_group_list_and_detail_are_scoped_with_filters(synced, admin_client):
    total = GroupChat.objects.count()
    r = admin_client.get("/groups/")
    assert r.status_code == 200 and r.context["page"].paginator.count == total
    owner = a_guide_with_groups()
    own = GroupChat.objects.filter(owner=owner)
    guide = client_for(user("guide2", Profile.GUIDE, wecom_userid=owner.userid))
    r = guide.get("/groups/")
    assert r.context["page"].paginator.count == own.count() < total
    assert {g.owner_id for g in r.context["page"].object_list} == {owner.id}
    mine = own.first()
    theirs = GroupChat.objects.exclude(owner=owner).first()
    assert guide.get(f"/groups/{mine.id}/").status_code == 200
    assert guide.get(f"/groups/{theirs.id}/").status_code == 403
    assert guide.get("/groups/999999/").status_code == 404

    # store manager: groups owned by the department subtree
    dept = (
        EmployeeDepartment.objects.filter(employee=owner)
        .values_list("department_id", flat=True)
        .first()
    )
    manager = client_for(user("mgr2", Profile.STORE_MANAGER, department_id=dept))
    sub = employee_ids_in_subtree(dept)
    r = manager.get("/groups/")
    assert (
        r.context["page"].paginator.count
        == GroupChat.objects.filter(owner_id__in=sub).count()
    )
    outside = GroupChat.objects.exclude(owner_id__in=sub).first()
    if outside is not None:
        assert manager.get(f"/groups/{outside.id}/").status_code == 403

    # filters
    r = admin_client.get("/groups/", {"owner": owner.id})
    assert r.context["page"].paginator.count == own.count()
    r = admin_client.get("/groups/", {"department": dept})
    assert (
        r.context["page"].paginator.count
        == GroupChat.objects.filter(owner_id__in=sub).count()
    )
    r = admin_client.get("/groups/", {"status": "dismissed"})
    assert (
        r.context["page"].paginator.count
        == GroupChat.objects.filter(status=GroupChat.DISMISSED).count()
    )
    word = mine.name[:3]
    r = admin_client.get("/groups/", {"q": word})
    assert (
        r.context["page"].paginator.count
        == GroupChat.objects.filter(name__icontains=word).count()
        >= 1
    )

    # the detail: current members (employees and customers) with scene, invitor and time
    r = admin_client.get(f"/groups/{mine.id}/")
    members = GroupMember.objects.filter(group=mine, left_at__isnull=True)
    assert len(r.context["current"]) == members.count()
    assert r.context["customers"] == members.filter(type=GroupMember.CUSTOMER).count()
    assert r.content.decode().count('data-testid="member-row"') == members.count()


def test_hostile_group_names_and_nicknames_render_inert(synced, admin_client):
    sim = synced
    hostile = sim.control("world/sample", {})["hostile"]
    assert hostile
    owner = Employee.objects.filter(
        contact_enabled=True, status=Employee.STATUS_ACTIVE
    ).first()
    evil = '<script>alert("g")</script>'
    res = sim.control(
        "group/create",
        {
            "owner": owner.userid,
            "name": evil,
            "members": [h["external_userid"] for h in hostile[:3]],
        },
    )
    detail = group_services.fetch_group(res["chat_id"])
    from django.db import transaction

    with transaction.atomic():
        group_services.write_groups([detail])
    chat = GroupChat.objects.get(chat_id=res["chat_id"])
    for url in ("/groups/", f"/groups/{chat.id}/", "/employees/"):
        body = admin_client.get(url).content.decode()
        assert "<script>alert" not in body, url
        if url != "/employees/":
            assert "&lt;script&gt;alert(&quot;g&quot;)&lt;/script&gt;" in body, url
    body = admin_client.get(f"/groups/{chat.id}/").content.decode()
    for h in hostile[:3]:
        if "<" in h["name"]:
            assert h["name"] not in body
    # a hostile tag name
    admin_client.post(
        "/tags/groups/new/", {"name": "恶意组", "tags": "<img src=x onerror=alert(1)>"}
    )
    body = admin_client.get("/tags/").content.decode()
    assert (
        "<img src=x onerror" not in body
        and "&lt;img src=x onerror=alert(1)&gt;" in body
    )
    gid = TagGroup.objects.get(name="恶意组", deleted=False).group_id
    admin_client.post(f"/tags/groups/{gid}/delete/")
    sim.control("group/dismiss", {"chat_id": res["chat_id"]})


# --- employees --------------------------------------------------------------------------------
def test_employee_page_counts_and_scope(synced, admin_client):
    r = admin_client.get("/employees/")
    assert r.status_code == 200
    tree = r.context["tree"]
    assert (
        next(n["department"].id for n in tree)
        == Department.objects.order_by("depth", "-order", "id").first().id
    )
    rows = {row["employee"].id: row for n in tree for row in n["employees"]}
    for e in (
        Employee.objects.exclude(status=Employee.STATUS_LEFT)
        .filter(memberships__isnull=False)
        .distinct()
    ):
        row = rows[e.id]
        assert (
            row["active"]
            == FollowRelation.objects.filter(
                employee=e, status=FollowRelation.ACTIVE
            ).count()
        )
        assert (
            row["lost"]
            == FollowRelation.objects.filter(employee=e)
            .exclude(status=FollowRelation.ACTIVE)
            .count()
        )
        assert (
            row["groups"]
            == GroupChat.objects.filter(owner=e, status=GroupChat.ACTIVE).count()
        )
    # against WeCom: externalcontact/list per member
    e = max(rows.values(), key=lambda row: row["active"])["employee"]
    listed = (
        synced.call("externalcontact/list", {"userid": e.userid})
        if False
        else synced.get("externalcontact/list", userid=e.userid)
    )
    assert rows[e.id]["active"] == len(listed["external_userid"])
    body = r.content.decode()
    assert f'data-employee="{e.userid}"' in body

    guide = client_for(user("guide3", Profile.GUIDE, wecom_userid=e.userid))
    r = guide.get("/employees/")
    seen = {row["employee"].id for n in r.context["tree"] for row in n["employees"]}
    assert seen == {e.id}
    dept = (
        EmployeeDepartment.objects.filter(employee=e)
        .values_list("department_id", flat=True)
        .first()
    )
    manager = client_for(user("mgr3", Profile.STORE_MANAGER, department_id=dept))
    r = manager.get("/employees/")
    seen = {row["employee"].id for n in r.context["tree"] for row in n["employees"]}
    expected = set(
        Employee.objects.filter(id__in=employee_ids_in_subtree(dept))
        .exclude(status=Employee.STATUS_LEFT)
        .values_list("id", flat=True)
    )
    assert seen == expected
    assert {n["department"].id for n in r.context["tree"]} == set(
        Department.objects.filter(
            path__startswith=Department.objects.get(id=dept).path
        ).values_list("id", flat=True)
    )


# --- sync page and the nightly reconciliation ------------------------------------------------------
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
        c = client_for(user(f"u-{role}", role, **binding))
        assert c.get("/settings/sync/").status_code == 403
        assert c.post("/settings/sync/run/").status_code == 403

    # sync now: enqueued for the worker; the page polls while it is queued
    from django_tasks_db.models import DBTaskResult

    r = admin_client.post("/settings/sync/run/", follow=True)
    assert any("已加入队列" in m for m in messages_of(r))
    assert (
        DBTaskResult.objects.filter(
            status="READY", task_path="siyu.sync.tasks.full_sync"
        ).count()
        == 1
    )
    assert (
        'hx-trigger="every 2s"' in r.content.decode()
        and 'data-testid="sync-queued"' in r.content.decode()
    )
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
    assert (
        due.strftime("%Y-%m-%d 03:00")
        in admin_client.get("/settings/sync/").content.decode()
    )

    # drift the nightly run must correct: a relation WeCom does not have
    emp = Employee.objects.filter(
        contact_enabled=True, status=Employee.STATUS_ACTIVE
    ).first()
    ghost = Customer.objects.create(external_userid="wmGhost0001", name="ghost")
    FollowRelation.objects.create(
        customer=ghost, employee=emp, added_at=timezone.now() - timedelta(days=3)
    )

    # the timer fires (its handler called as the worker would): tonight's sync is enqueued and
    # tomorrow's timer scheduled
    from django.db import transaction

    with transaction.atomic():
        nightly.on_nightly_timer(timers[0].payload)
    Timer.objects.filter(id=timers[0].id).update(status="done", key=None)
    pending = list(Timer.objects.filter(kind=nightly.KIND, status="pending"))
    assert len(pending) == 1 and datetime.fromtimestamp(
        pending[0].run_after, tz=CHINA
    ) == due + timedelta(days=1)
    assert (
        DBTaskResult.objects.filter(
            status="READY", task_path="siyu.sync.nightly.nightly_sync"
        ).count()
        == 1
    )

    Worker(interval=0.05).run(max_idle_s=0.5)  # runs the nightly sync
    nightly_run = SyncRun.objects.order_by("-id").first()
    assert nightly_run.id != run.id and nightly_run.status == SyncRun.DONE
    assert nightly_run.state.get("trigger") == "nightly"
    assert nightly_run.counts["reconciled_relations"] == 1
    assert FollowRelation.objects.get(customer=ghost).status == FollowRelation.GONE
    body = admin_client.get("/settings/sync/").content.decode()
    assert "夜间对账" in body
    corrections = body.split('data-testid="sync-corrections"', 1)[1].split(
        "</table>", 1
    )[0]
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
    SyncRun.objects.filter(id=run.id).update(
        status=SyncRun.DONE, phase="done", finished_at=now
    )
    assert (
        'hx-trigger="every 2s"'
        not in admin_client.get("/settings/sync/status/").content.decode()
    )


def test_menu_links(synced, admin_client):
    body = admin_client.get("/").content.decode()
    for url in ("/tags/", "/groups/", "/employees/", "/settings/sync/"):
        assert f'href="{url}"' in body, url
    guide = client_for(
        user("guide9", Profile.GUIDE, wecom_userid=a_guide_with_groups().userid)
    )
    body = guide.get("/").content.decode()
    assert (
        'href="/settings/sync/"' not in body
        and 'href="/groups/"' in body
        and 'href="/tags/"' in body
    )


def test_english_pages_have_no_chinese_left(transactional_db, admin_client):
    """With ASCII data, every string on the pages is the console's own: all translated."""
    from tests.wecom.test_settings_console import CJK, text_without_switcher

    now = timezone.now()
    dept = Department.objects.create(id=1, name="HQ", path="/1/")
    emp = Employee.objects.create(
        userid="zhangsan", name="Zhang San", contact_enabled=True
    )
    EmployeeDepartment.objects.create(employee=emp, department=dept, is_leader=True)
    cust = Customer.objects.create(external_userid="wmX1", name="Alice")
    FollowRelation.objects.create(customer=cust, employee=emp, added_at=now)
    grp = TagGroup.objects.create(group_id="etG1", name="Level", order=1)
    tag = Tag.objects.create(tag_id="etT1", group=grp, name="VIP")
    chat = GroupChat.objects.create(
        chat_id="wrC1",
        name="Fans",
        owner=emp,
        created_at=now,
        member_count=2,
        customer_count=1,
        owner_status=1,
    )
    GroupMember.objects.create(
        group=chat,
        userid="zhangsan",
        type=GroupMember.EMPLOYEE,
        employee=emp,
        join_time=now,
        is_admin=True,
    )
    GroupMember.objects.create(
        group=chat,
        userid="wmX1",
        customer=cust,
        join_time=now,
        join_scene=3,
        invitor_userid="zhangsan",
    )
    GroupMember.objects.create(
        group=chat, userid="wmX2", name="Bob", join_time=now, left_at=now, quit_scene=0
    )
    GroupMember.objects.create(
        group=chat,
        userid="wmX3",
        name="Carol",
        join_time=now,
        left_at=now,
        quit_scene=1,
    )
    SyncRun.objects.create(
        started_at=now,
        finished_at=now,
        status=SyncRun.DONE,
        phase="done",
        counts={
            "departments": 1,
            "customers": 1,
            "reconciled_relations": 0,
            "reconciled_groups": 0,
            "tags_deleted": 0,
            "employees_left": 0,
            "new_relations": 1,
        },
        state={"trigger": "nightly"},
    )
    SyncRun.objects.create(
        started_at=now,
        phase="groups",
        owner="x:1",
        totals={"groups": 4},
        state={"groups": {"done": 1}},
        counts={},
        resumes=1,
        error="boom",
    )
    nightly.schedule_after()
    admin_client.cookies["django_language"] = "en"
    for url in (
        "/tags/",
        "/groups/",
        f"/groups/{chat.id}/",
        "/employees/?left=1",
        "/settings/sync/",
        "/settings/sync/status/",
    ):
        r = admin_client.get(url)
        assert r.status_code == 200, url
        # the page's own content (the sidebar lists other apps' pages too)
        main = r.content.decode().split('<main class="content">', 1)[-1]
        leftovers = CJK.findall(text_without_switcher(main))
        assert not leftovers, f"{url}: untranslated {''.join(leftovers)!r}"
    body = admin_client.get("/tags/").content.decode()
    assert "Customer tags" in body and "VIP" in body
    assert "Customer groups" in admin_client.get("/groups/").content.decode()
    r = admin_client.post(f"/tags/{tag.tag_id}/rename/", {"name": ""}, follow=True)
    main = r.content.decode().split('<main class="content">', 1)[-1]
    assert "The name cannot be empty." in main and not CJK.findall(
        text_without_switcher(main)
    )
