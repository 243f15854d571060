"""Org control actions (employee/*, department/*) and the change_contact callbacks they send.

A small HTTP receiver stands in for the product: the emulator POSTs encrypted events to it, and
the test decrypts them with wechatpy exactly as a real callback endpoint would.
"""

from __future__ import annotations

import pytest

from tests.receiver import receiving
from tests.simproc import SimProcess


@pytest.fixture(scope="module")
def org_sim():
    with SimProcess(customers=2000, seed=3, demo=True) as proc, receiving(proc) as receiver:
        proc.receiver = receiver
        yield proc


@pytest.fixture
def rx(org_sim):
    org_sim.receiver.drain()
    return org_sim.receiver


def change(rx, change_type: str, **match) -> dict:
    """The next callback of ``change_type`` whose fields match ``match``; it is taken off the receiver,
    so that the next call finds a later one."""
    return rx.take(lambda e: e.get("ChangeType") == change_type and all(e.get(k) == v for k, v in match.items()))


def test_callback_url_verification(org_sim):
    """The console-style verification (GET with an encrypted echostr) passes against the receiver."""
    r = org_sim.control("config", {"callback_url": org_sim.receiver.url, "verify": True})
    assert r["callback"]["url"] == org_sim.receiver.url


def test_employee_create_sends_create_user(org_sim, rx):
    r = org_sim.control(
        "employee/create",
        {
            "userid": "linxiaoyu",
            "name": "林小雨",
            "department": [6, 7],
            "is_leader_in_dept": [0, 1],
            "main_department": 7,
            "position": "导购",
            "mobile": "13912345678",
            "gender": "2",
            "email": "linxiaoyu@example.com",
            "alias": "Rain",
        },
    )
    assert r["user"]["userid"] == "linxiaoyu"
    e = change(rx, "create_user", UserID="linxiaoyu")
    assert e["Event"] == "change_contact"
    assert e["Name"] == "林小雨"
    assert e["Department"] == "6,7"
    assert e["IsLeaderInDept"] == "0,1"
    assert e["MainDepartment"] == "7"
    assert e["Position"] == "导购"
    assert e["Mobile"] == "13912345678"
    assert e["Gender"] == "2"
    assert e["Email"] == "linxiaoyu@example.com"
    assert e["Status"] == "1"
    assert e["Alias"] == "Rain"
    assert e["Avatar"].startswith("http")
    u = org_sim.get("user/get", userid="linxiaoyu")
    assert u["errcode"] == 0 and u["department"] == [6, 7] and u["is_leader_in_dept"] == [0, 1]
    assert "linxiaoyu" in org_sim.get("externalcontact/get_follow_user_list")["follow_user"]
    leaders = {d["id"]: d["department_leader"] for d in org_sim.get("department/list")["department"]}
    assert "linxiaoyu" in leaders[7] and "linxiaoyu" not in leaders[6]
    # duplicates and unknown departments are refused
    assert org_sim.control("employee/create", {"userid": "LinXiaoYu", "name": "x"}, expect_ok=False)["ok"] is False
    bad = org_sim.control("employee/create", {"userid": "nobody1", "name": "x", "department": [999]}, expect_ok=False)
    assert "60123" in bad["error"]


def test_employee_update_sends_only_changed_fields(org_sim, rx):
    org_sim.control("employee/create", {"userid": "sunqi", "name": "孙琪", "department": [8], "position": "导购"})
    change(rx, "create_user", UserID="sunqi")
    org_sim.control("employee/update", {"userid": "sunqi", "position": "资深导购", "mobile": "13700001111"})
    e = change(rx, "update_user", UserID="sunqi")
    assert e["Position"] == "资深导购" and e["Mobile"] == "13700001111"
    for absent in ("Name", "Department", "Gender", "Email", "Status", "NewUserID", "Alias"):
        assert absent not in e
    org_sim.control("employee/update", {"userid": "sunqi", "department": [8, 9]})
    e = change(rx, "update_user", UserID="sunqi")
    assert e["Department"] == "8,9" and e["IsLeaderInDept"] == "0,0"
    assert "Position" not in e
    # an update that changes nothing sends nothing
    r = org_sim.control("employee/update", {"userid": "sunqi", "position": "资深导购"})
    assert r["event"] is False
    assert not [x for x in rx.drain(1.5) if x.get("UserID") == "sunqi"]


def test_employee_rename_sends_new_userid_and_keeps_customers(org_sim, rx):
    sample = org_sim.control("world/sample", {"n": 50})
    victim = next(c for c in sample["customers"] if len(c["followers"]) == 1)
    old = victim["followers"][0]
    before = org_sim.get("user/get", userid=old)
    org_sim.control("employee/update", {"userid": old, "new_userid": old + "_new", "name": before["name"] + "A"})
    e = change(rx, "update_user", UserID=old)
    assert e["NewUserID"] == old + "_new"
    assert e["Name"] == before["name"] + "A"
    assert org_sim.get("user/get", userid=old)["errcode"] == 60111
    assert org_sim.get("user/get", userid=old + "_new")["department"] == before["department"]
    after = org_sim.control("world/sample", {"n": 50})
    moved = next(c for c in after["customers"] if c["external_userid"] == victim["external_userid"])
    assert moved["followers"] == [old + "_new"]
    follow = org_sim.get("externalcontact/get_follow_user_list")["follow_user"]
    assert old + "_new" in follow and old not in follow


def test_employee_resign(org_sim, rx):
    sample = org_sim.control("world/sample", {"n": 200})
    owners = {g["owner"] for g in sample["groups"]}
    guide = next(e for e in sample["store_employees"] if e["userid"] in owners)
    r = org_sim.control("employee/resign", {"userid": guide["userid"]})
    assert r["unassigned_customers"] > 0
    assert r["groups_to_inherit"] >= 1
    e = change(rx, "delete_user", UserID=guide["userid"])
    assert set(e) >= {"ToUserName", "FromUserName", "CreateTime", "MsgType", "Event", "ChangeType", "UserID"}
    assert org_sim.get("user/get", userid=guide["userid"])["errcode"] == 60111
    assert guide["userid"] not in org_sim.get("externalcontact/get_follow_user_list")["follow_user"]
    users = org_sim.get("user/list", department_id=1, fetch_child=1)["userlist"]
    assert guide["userid"] not in {u["userid"] for u in users}
    after = org_sim.control("world/sample", {"n": 200})
    assert guide["userid"] in after["resigned"]
    # the resigned owner's groups are 离职待继承 (status 1)
    mine = [g for g in after["groups"] if g["owner"] == guide["userid"]]
    assert mine and all(g["status"] == 1 for g in mine)
    r2 = org_sim.call("externalcontact/get_unassigned_list", {"page_size": 1000})
    if r2.get("errcode") != 404:
        handed = {i["external_userid"] for i in r2["info"] if i["handover_userid"] == guide["userid"]}
        assert handed
    # a second resignation is refused: the member is gone
    assert org_sim.control("employee/resign", {"userid": guide["userid"]}, expect_ok=False)["ok"] is False


def test_employee_delete(org_sim, rx):
    org_sim.control("employee/create", {"userid": "tempworker", "name": "临时工", "department": [10]})
    change(rx, "create_user", UserID="tempworker")
    r = org_sim.control("employee/delete", {"userid": "tempworker"})
    assert r["dimission_time"]
    change(rx, "delete_user", UserID="tempworker")
    assert org_sim.get("user/get", userid="tempworker")["errcode"] == 60111
    # purge removes the row outright (already departed: no second event)
    r = org_sim.control("employee/delete", {"userid": "tempworker", "purge": True})
    assert r["purged"] is True
    assert not [x for x in rx.drain(1.5) if x.get("UserID") == "tempworker"]
    assert "tempworker" not in org_sim.control("world/sample", {"n": 500})["resigned"]


def test_employee_set_sends_nothing(org_sim, rx):
    uid = org_sim.control("world/sample", {"n": 5})["store_employees"][0]["userid"]
    r = org_sim.control("employee/set", {"userid": uid, "customer_cap": 10, "console_welcome": True})
    assert r["user"]["customer_cap"] == 10 and r["user"]["console_welcome"] is True
    r = org_sim.control("employee/set", {"userid": uid, "contact_enabled": False})
    assert uid not in org_sim.get("externalcontact/get_follow_user_list")["follow_user"]
    org_sim.control(
        "employee/set", {"userid": uid, "contact_enabled": True, "customer_cap": 50000, "console_welcome": False}
    )
    assert uid in org_sim.get("externalcontact/get_follow_user_list")["follow_user"]
    assert not [x for x in rx.drain(1.5) if x.get("UserID") == uid]
    assert org_sim.control("employee/set", {"userid": uid}, expect_ok=False)["ok"] is False


def test_department_events(org_sim, rx):
    r = org_sim.control("department/create", {"name": "苏州中心店", "parentid": 4})
    dept = r["department"]
    e = change(rx, "create_party", Id=str(dept["id"]))
    assert e["Name"] == "苏州中心店" and e["ParentId"] == "4" and e["Order"] == str(dept["order"])
    assert any(d["id"] == dept["id"] for d in org_sim.get("department/list", id=4)["department"])
    # rename only: Name, no ParentId
    org_sim.control("department/update", {"id": dept["id"], "name": "苏州中心旗舰店"})
    e = change(rx, "update_party", Id=str(dept["id"]))
    assert e["Name"] == "苏州中心旗舰店" and "ParentId" not in e
    # move only: ParentId, no Name
    org_sim.control("department/update", {"id": dept["id"], "parentid": 5})
    e = change(rx, "update_party", Id=str(dept["id"]))
    assert e["ParentId"] == "5" and "Name" not in e
    assert org_sim.get("department/get", id=dept["id"])["department"]["parentid"] == 5
    # a department cannot move under its own descendant; siblings cannot share a name
    assert org_sim.control("department/update", {"id": 5, "parentid": dept["id"]}, expect_ok=False)["ok"] is False
    dup = org_sim.control("department/create", {"name": "苏州中心旗舰店", "parentid": 5}, expect_ok=False)
    assert "60008" in dup["error"]
    # not while it has members
    org_sim.control("employee/create", {"userid": "szguide", "name": "苏导购", "department": [dept["id"]]})
    refused = org_sim.control("department/delete", {"id": dept["id"]}, expect_ok=False)
    assert "60005" in refused["error"]
    org_sim.control("employee/update", {"userid": "szguide", "department": [5]})
    org_sim.control("department/delete", {"id": dept["id"]})
    e = change(rx, "delete_party", Id=str(dept["id"]))
    assert org_sim.get("department/get", id=dept["id"])["errcode"] == 60123
    # regions with stores and the root cannot be deleted
    assert "60006" in org_sim.control("department/delete", {"id": 4}, expect_ok=False)["error"]
    assert org_sim.control("department/delete", {"id": 1}, expect_ok=False)["ok"] is False


def test_wechatpy_client_reads_org(org_sim):
    """wechatpy's WeChatClient, unchanged, reads the org from the emulator."""
    from tests.wechatpy_compat import wechatpy_client

    c = wechatpy_client(org_sim)
    depts = c.department.list()
    assert any(d["name"] == "华东大区" for d in depts)
    users = c.user.list(1, fetch_child=True)
    assert len(users) >= 30
    one = c.user.get(users[0]["userid"])
    assert one["userid"] == users[0]["userid"]
    assert c.department.get_users(6, simple=True)
