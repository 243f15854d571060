"""The domain pages in the console shell: the menu links them per role, and in English no
Chinese is left on them (tags, groups, employees, sync).
"""

from __future__ import annotations

from django.utils import timezone

from siyu.accounts.models import Profile
from siyu.customers.models import Customer, FollowRelation, Tag, TagGroup
from siyu.groups.models import GroupChat, GroupMember
from siyu.org.models import Department, Employee, EmployeeDepartment
from siyu.sync import nightly
from siyu.sync.models import SyncRun
from tests.helpers import CJK, a_guide_with_groups, client_for, make_user, text_without_switcher


def test_menu_links(synced, admin_client):
    body = admin_client.get("/").content.decode()
    for url in ("/tags/", "/groups/", "/employees/", "/settings/sync/"):
        assert f'href="{url}"' in body, url
    guide = client_for(make_user("guide9", Profile.GUIDE, wecom_userid=a_guide_with_groups().userid))
    body = guide.get("/").content.decode()
    assert 'href="/settings/sync/"' not in body and 'href="/groups/"' in body and 'href="/tags/"' in body


def test_english_pages_have_no_chinese_left(transactional_db, admin_client):
    """With ASCII data, every string on the pages is the console's own: all translated."""
    now = timezone.now()
    dept = Department.objects.create(id=1, name="HQ", path="/1/")
    emp = Employee.objects.create(userid="zhangsan", name="Zhang San", contact_enabled=True)
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
    GroupMember.objects.create(group=chat, userid="wmX2", name="Bob", join_time=now, left_at=now, quit_scene=0)
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
    assert "The name cannot be empty." in main and not CJK.findall(text_without_switcher(main))
