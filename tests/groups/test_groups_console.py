"""Customer group pages against a full sync of the session emulator: the data scope, filters,
and hostile group names and nicknames rendered inert.
"""

from __future__ import annotations

from siyu.accounts.models import Profile
from siyu.customers.models import TagGroup
from siyu.groups import services as group_services
from siyu.groups.models import GroupChat, GroupMember
from siyu.org.models import Employee, EmployeeDepartment
from siyu.org.selectors import employee_ids_in_subtree
from tests.helpers import a_guide_with_groups, client_for, make_user


def test_group_list_and_detail_are_scoped_with_filters(synced, admin_client):
    total = GroupChat.objects.count()
    r = admin_client.get("/groups/")
    assert r.status_code == 200 and r.context["page"].paginator.count == total
    owner = a_guide_with_groups()
    own = GroupChat.objects.filter(owner=owner)
    guide = client_for(make_user("guide2", Profile.GUIDE, wecom_userid=owner.userid))
    r = guide.get("/groups/")
    assert r.context["page"].paginator.count == own.count() < total
    assert {g.owner_id for g in r.context["page"].object_list} == {owner.id}
    mine = own.first()
    theirs = GroupChat.objects.exclude(owner=owner).first()
    assert guide.get(f"/groups/{mine.id}/").status_code == 200
    assert guide.get(f"/groups/{theirs.id}/").status_code == 403
    assert guide.get("/groups/999999/").status_code == 404

    # store manager: groups owned by the department subtree
    dept = EmployeeDepartment.objects.filter(employee=owner).values_list("department_id", flat=True).first()
    manager = client_for(make_user("mgr2", Profile.STORE_MANAGER, department_id=dept))
    sub = employee_ids_in_subtree(dept)
    r = manager.get("/groups/")
    assert r.context["page"].paginator.count == GroupChat.objects.filter(owner_id__in=sub).count()
    outside = GroupChat.objects.exclude(owner_id__in=sub).first()
    if outside is not None:
        assert manager.get(f"/groups/{outside.id}/").status_code == 403

    # filters
    r = admin_client.get("/groups/", {"owner": owner.id})
    assert r.context["page"].paginator.count == own.count()
    r = admin_client.get("/groups/", {"department": dept})
    assert r.context["page"].paginator.count == GroupChat.objects.filter(owner_id__in=sub).count()
    r = admin_client.get("/groups/", {"status": "dismissed"})
    assert r.context["page"].paginator.count == GroupChat.objects.filter(status=GroupChat.DISMISSED).count()
    word = mine.name[:3]
    r = admin_client.get("/groups/", {"q": word})
    assert r.context["page"].paginator.count == GroupChat.objects.filter(name__icontains=word).count() >= 1

    # the detail: current members (employees and customers) with scene, invitor and time
    r = admin_client.get(f"/groups/{mine.id}/")
    members = GroupMember.objects.filter(group=mine, left_at__isnull=True)
    assert r.context["page"].paginator.count == members.count()
    assert r.context["customers"] == members.filter(type=GroupMember.CUSTOMER).count()
    assert r.content.decode().count('data-testid="member-row"') == min(members.count(), 50)
    # a big group is paged: 50 members and 50 history rows a page
    big = max(GroupChat.objects.all(), key=lambda g: g.members.count())
    r = admin_client.get(f"/groups/{big.id}/")
    n = GroupMember.objects.filter(group=big, left_at__isnull=True).count()
    body = r.content.decode()
    assert body.count('data-testid="member-row"') == min(n, 50)
    assert body.count('data-testid="history-row"') == min(GroupMember.objects.filter(group=big).count(), 50)
    if n > 50:
        r2 = admin_client.get(f"/groups/{big.id}/", {"page": 2})
        first = {m.id for m in r.context["page"].object_list}
        assert first.isdisjoint(m.id for m in r2.context["page"].object_list)


def test_hostile_group_names_and_nicknames_render_inert(synced, admin_client):
    sim = synced
    hostile = sim.control("world/sample", {})["hostile"]
    assert hostile
    owner = Employee.objects.filter(contact_enabled=True, status=Employee.STATUS_ACTIVE).first()
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
    admin_client.post("/tags/groups/new/", {"name": "恶意组", "tags": "<img src=x onerror=alert(1)>"})
    body = admin_client.get("/tags/").content.decode()
    assert "<img src=x onerror" not in body and "&lt;img src=x onerror=alert(1)&gt;" in body
    gid = TagGroup.objects.get(name="恶意组", deleted=False).group_id
    admin_client.post(f"/tags/groups/{gid}/delete/")
    sim.control("group/dismiss", {"chat_id": res["chat_id"]})
