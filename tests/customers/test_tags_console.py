"""Tag management against the emulator.

Tag changes made in the console must reach WeCom (checked with the emulator's own
get_corp_tag_list) and the local copy; changes made in WeCom's admin console come back by
callback. The tag page honours the data scope.
"""

from __future__ import annotations

import uuid

from django.db.models import Count

from siyu.accounts.models import Profile
from siyu.customers.models import FollowRelation, FollowTag, Tag, TagGroup
from siyu.customers.tags import selectors as tag_selectors
from siyu.groups.models import GroupChat, GroupMember
from siyu.org.models import Employee, EmployeeDepartment
from siyu.sync.services import run_full_sync
from tests.helpers import client_for, make_user, messages_of
from tests.sync.test_sync_callbacks import World


def wecom_groups(sim, **body) -> list[dict]:
    return sim.call("externalcontact/get_corp_tag_list", body)["tag_group"]


def wecom_group_named(sim, name: str) -> dict | None:
    return next((g for g in wecom_groups(sim) if g["group_name"] == name), None)


def local_tags(group: TagGroup) -> list[str]:
    return list(Tag.objects.filter(group=group, deleted=False).order_by("-order", "id").values_list("name", flat=True))


def test_tag_crud_reaches_wecom_and_the_local_copy(synced, admin_client):
    sim = synced
    name = f"测试组{uuid.uuid4().hex[:6]}"
    r = admin_client.post("/tags/groups/new/", {"name": name, "tags": "甲，乙, 丙"}, follow=True)
    assert r.status_code == 200 and any("已创建" in m for m in messages_of(r)), messages_of(r)
    wg = wecom_group_named(sim, name)
    assert wg is not None and [t["name"] for t in wg["tag"]] == ["甲", "乙", "丙"]
    group = TagGroup.objects.get(group_id=wg["group_id"], deleted=False)
    assert local_tags(group) == ["甲", "乙", "丙"]
    # the new group sorts first, in WeCom and here
    assert wecom_groups(sim)[0]["group_id"] == group.group_id
    assert tag_selectors.tag_library(accounts_scope_everything())[0]["group"].group_id == group.group_id
    body = r.content.decode()
    assert name in body and "甲" in body

    # add tags: appended after the existing ones
    r = admin_client.post(f"/tags/groups/{group.group_id}/tags/", {"tags": "丁"}, follow=True)
    assert any("已添加" in m for m in messages_of(r))
    assert [t["name"] for t in wecom_groups(sim, group_id=[group.group_id])[0]["tag"]] == ["甲", "乙", "丙", "丁"]
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
    assert [t["name"] for t in wecom_groups(sim, group_id=[group.group_id])[0]["tag"]] == expected
    assert local_tags(group) == expected
    # a group moves among the groups
    admin_client.post(f"/tags/{group.group_id}/move/", {"direction": "down"})
    assert [g["group_id"] for g in wecom_groups(sim)].index(group.group_id) == 1
    assert (
        list(TagGroup.objects.filter(deleted=False).order_by("-order", "id").values_list("group_id", flat=True)).index(
            group.group_id
        )
        == 1
    )

    # delete a tag, then the group
    r = admin_client.post(f"/tags/tags/{jia.tag_id}/delete/", follow=True)
    assert any("已删除" in m for m in messages_of(r))
    assert [t["name"] for t in wecom_groups(sim, group_id=[group.group_id])[0]["tag"]] == ["丙", "乙二", "丁"]
    assert Tag.objects.get(tag_id=jia.tag_id).deleted
    admin_client.post(f"/tags/groups/{group.group_id}/delete/")
    assert wecom_group_named(sim, name + "改") is None
    group.refresh_from_db()
    assert group.deleted and not Tag.objects.filter(group=group, deleted=False).exists()
    assert name + "改" not in admin_client.get("/tags/").content.decode()


def accounts_scope_everything():
    from siyu.accounts.selectors import DataScope

    return DataScope(everything=True)


def test_wecom_refusals_are_shown_with_errcode_and_meaning(synced, admin_client, sim_rules):
    before = Tag.objects.filter(deleted=False).count()
    r = admin_client.post("/tags/groups/new/", {"name": "超长" * 16, "tags": "a"}, follow=True)
    msgs = messages_of(r)
    assert any("40072" in m and "30" in m for m in msgs), msgs
    live = len([t for g in wecom_groups(synced) for t in g["tag"]])
    sim_rules(corp_tag_cap=live)
    r = admin_client.post("/tags/groups/new/", {"name": "上限组", "tags": "x"}, follow=True)
    msgs = messages_of(r)
    assert any("40126" in m and "上限" in m for m in msgs), msgs
    assert 'class="alert alert-error' in r.content.decode() or "alert-error" in r.content.decode()
    assert Tag.objects.filter(deleted=False).count() == before and wecom_group_named(synced, "上限组") is None
    # a duplicate name inside a group
    tag = Tag.objects.filter(deleted=False).select_related("group").first()
    other = Tag.objects.filter(group=tag.group, deleted=False).exclude(id=tag.id).first()
    if other is not None:
        r = admin_client.post(f"/tags/{tag.tag_id}/rename/", {"name": other.name}, follow=True)
        assert any("40071" in m for m in messages_of(r)), messages_of(r)


def test_tag_page_is_read_only_for_store_managers_and_guides_and_counts_are_scoped(synced, admin_client):
    guide_emp = Employee.objects.filter(
        relations__status=FollowRelation.ACTIVE, relations__follow_tags__isnull=False
    ).first()
    guide = client_for(make_user("guide1", Profile.GUIDE, wecom_userid=guide_emp.userid))
    dept = EmployeeDepartment.objects.filter(employee=guide_emp).values_list("department_id", flat=True).first()
    manager = client_for(make_user("mgr1", Profile.STORE_MANAGER, department_id=dept))
    tag = Tag.objects.filter(deleted=False).first()
    for c in (guide, manager):
        r = c.get("/tags/")
        assert r.status_code == 200
        body = r.content.decode()
        assert "group-create" not in body and "tag-delete" not in body and "你的角色只能查看标签" in body
        assert c.post("/tags/groups/new/", {"name": "x", "tags": "y"}).status_code == 403
        assert c.post(f"/tags/tags/{tag.tag_id}/delete/").status_code == 403
        assert c.post(f"/tags/{tag.tag_id}/rename/", {"name": "z"}).status_code == 403
    assert not Tag.objects.get(id=tag.id).deleted
    # counts: the guide counts only their own customers with the tag
    from siyu.accounts.selectors import data_scope

    counts = tag_selectors.tag_customer_counts(
        data_scope(make_user("guide1", Profile.GUIDE, wecom_userid=guide_emp.userid))
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
    admin = client_for(make_user("admin", Profile.ADMIN))
    name = f"后台组{uuid.uuid4().hex[:6]}"
    res = world.control("tags/admin_create", {"group_name": name, "tags": ["春", "夏"]})
    gid = res["tag_group"]["group_id"]
    world.process()
    group = TagGroup.objects.get(group_id=gid)
    assert sorted(local_tags(group)) == sorted(["春", "夏"])  # equal orders: WeCom's tie order is arbitrary
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
