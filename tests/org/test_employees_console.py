"""The employee page against a full sync of the session emulator: counts and the data scope."""

from __future__ import annotations

from siyu.accounts.models import Profile
from siyu.customers.models import FollowRelation
from siyu.groups.models import GroupChat
from siyu.org.models import Department, Employee, EmployeeDepartment
from siyu.org.selectors import employee_ids_in_subtree
from tests.helpers import client_for, make_user


def test_employee_page_counts_and_scope(synced, admin_client):
    r = admin_client.get("/employees/")
    assert r.status_code == 200
    tree = r.context["tree"]
    assert next(n["department"].id for n in tree) == Department.objects.order_by("depth", "-order", "id").first().id
    rows = {row["employee"].id: row for n in tree for row in n["employees"]}
    for e in Employee.objects.exclude(status=Employee.STATUS_LEFT).filter(memberships__isnull=False).distinct():
        row = rows[e.id]
        assert row["active"] == FollowRelation.objects.filter(employee=e, status=FollowRelation.ACTIVE).count()
        assert row["lost"] == FollowRelation.objects.filter(employee=e).exclude(status=FollowRelation.ACTIVE).count()
        assert row["groups"] == GroupChat.objects.filter(owner=e, status=GroupChat.ACTIVE).count()
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

    guide = client_for(make_user("guide3", Profile.GUIDE, wecom_userid=e.userid))
    r = guide.get("/employees/")
    seen = {row["employee"].id for n in r.context["tree"] for row in n["employees"]}
    assert seen == {e.id}
    dept = EmployeeDepartment.objects.filter(employee=e).values_list("department_id", flat=True).first()
    manager = client_for(make_user("mgr3", Profile.STORE_MANAGER, department_id=dept))
    r = manager.get("/employees/")
    seen = {row["employee"].id for n in r.context["tree"] for row in n["employees"]}
    expected = set(
        Employee.objects.filter(id__in=employee_ids_in_subtree(dept))
        .exclude(status=Employee.STATUS_LEFT)
        .values_list("id", flat=True)
    )
    assert seen == expected
    assert {n["department"].id for n in r.context["tree"]} == set(
        Department.objects.filter(path__startswith=Department.objects.get(id=dept).path).values_list("id", flat=True)
    )
