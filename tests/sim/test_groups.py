"""Customer groups (groupchat/list, get), join ways (rules R19–R21) and group events."""

from __future__ import annotations

import pytest

from tests.sim.helpers import customer_of, employee, outbox


def create(sim, owner, members=(), name="测试客户群", **kw):
    return sim.control("group/create", {"owner": owner, "name": name, "members": list(members), **kw})["chat_id"]


def new_people(sim, n):
    return sim.control("customer/new", {"n": n})["external_userid"]


def members_of(sim, chat_id):
    return sim.call("externalcontact/groupchat/get", {"chat_id": chat_id})["group_chat"]["member_list"]


@pytest.fixture
def owner(sim):
    return employee(sim)


def test_list_limits(sim, owner):
    def call(**b):
        return sim.call("externalcontact/groupchat/list", b)

    assert call()["errcode"] == 40058  # limit is required
    assert call(limit=0)["errcode"] == 40058
    assert call(limit=1001)["errcode"] == 40058
    assert call(limit=1000)["errcode"] == 0
    assert call(limit=10, status_filter=4)["errcode"] == 40058
    assert call(limit=10, owner_filter={"userid_list": [owner] * 101})["errcode"] == 40058
    assert call(limit=10, owner_filter={"userid_list": [owner] * 100})["errcode"] == 0


def test_list_paging_and_owner_filter(sim, owner):
    mine = sorted(create(sim, owner, name=f"分页群{i}") for i in range(3))
    got, cursor = [], None
    while True:
        body = {"limit": 2, "owner_filter": {"userid_list": [owner]}}
        if cursor:
            body["cursor"] = cursor
        r = sim.call("externalcontact/groupchat/list", body)
        assert len(r["group_chat_list"]) <= 2
        got += [g["chat_id"] for g in r["group_chat_list"]]
        assert all(g["status"] == 0 for g in r["group_chat_list"])
        cursor = r["next_cursor"]
        if not cursor:
            break
    assert got == mine
    everything = sim.call("externalcontact/groupchat/list", {"limit": 1000})["group_chat_list"]
    assert set(mine) <= {g["chat_id"] for g in everything}


def test_list_81017_when_visibility_too_large(sim, owner, sim_rules):
    sim_rules(groupchat_list_visible_cap=1)
    assert sim.call("externalcontact/groupchat/list", {"limit": 10})["errcode"] == 81017
    assert (
        sim.call("externalcontact/groupchat/list", {"limit": 10, "owner_filter": {"userid_list": [owner]}})["errcode"]
        == 0
    )


def test_resigned_owner_groups_need_owner_filter(sim):
    boss = employee(sim)
    chat = create(sim, boss)
    sim.control("employee/resign", {"userid": boss})
    everyone = [g["chat_id"] for g in sim.call("externalcontact/groupchat/list", {"limit": 1000})["group_chat_list"]]
    assert chat not in everyone
    r = sim.call(
        "externalcontact/groupchat/list", {"limit": 10, "status_filter": 1, "owner_filter": {"userid_list": [boss]}}
    )
    assert [g["chat_id"] for g in r["group_chat_list"]] == [chat] and r["group_chat_list"][0]["status"] == 1


def test_get_fields(sim, owner):
    helper = employee(sim)
    cust = customer_of(sim, owner)
    chat = create(sim, owner, [helper, cust], notice="群公告", admin_list=[helper])
    ev = outbox(sim, ChatId=chat)
    assert [e["ChangeType"] for e in ev] == ["create"]
    g = sim.call("externalcontact/groupchat/get", {"chat_id": chat, "need_name": 1})["group_chat"]
    assert g["owner"] == owner and g["notice"] == "群公告" and g["admin_list"] == [{"userid": helper}]
    assert len(g["member_version"]) == 32
    by_id = {m["userid"]: m for m in g["member_list"]}
    assert by_id[owner]["type"] == 1 and "invitor" not in by_id[owner]
    assert by_id[helper]["type"] == 1 and by_id[helper]["name"]
    assert by_id[cust]["type"] == 2 and by_id[cust]["invitor"] == {"userid": owner} and by_id[cust]["unionid"]
    assert by_id[cust]["join_scene"] == 1 and by_id[cust]["name"] and "state" not in by_id[cust]
    plain = sim.call("externalcontact/groupchat/get", {"chat_id": chat})["group_chat"]
    assert all("name" not in m for m in plain["member_list"])  # names only with need_name=1
    assert sim.call("externalcontact/groupchat/get", {"chat_id": "wrNoSuchChat"})["errcode"] == 40050
    assert sim.call("externalcontact/groupchat/get", {})["errcode"] == 40058


def test_member_events_and_versions(sim, owner):
    chat = create(sim, owner)
    v0 = sim.call("externalcontact/groupchat/get", {"chat_id": chat})["group_chat"]["member_version"]
    a, b = new_people(sim, 2)
    sim.control("group/join", {"chat_id": chat, "external_userid": a, "join_scene": 2})
    sim.control("group/join", {"chat_id": chat, "external_userid": b, "join_scene": 3})
    sim.control("group/leave", {"chat_id": chat, "userid": a, "quit_scene": 1})
    ev = [e for e in outbox(sim, ChatId=chat) if e["ChangeType"] == "update"]
    assert [(e["UpdateDetail"], e["MemChangeList"]) for e in ev] == [
        ("add_member", [a]),
        ("add_member", [b]),
        ("del_member", [a]),
    ]
    assert ev[0]["JoinScene"] == "0" and ev[1]["JoinScene"] == "3" and ev[2]["QuitScene"] == "1"
    assert all(e["MemChangeCnt"] == "1" for e in ev)
    assert ev[0]["LastMemVer"] == v0
    assert ev[1]["LastMemVer"] == ev[0]["CurMemVer"] and ev[2]["LastMemVer"] == ev[1]["CurMemVer"]
    g = sim.call("externalcontact/groupchat/get", {"chat_id": chat})["group_chat"]
    assert g["member_version"] == ev[2]["CurMemVer"]
    assert [m["userid"] for m in g["member_list"]] == [owner, b]
    assert "JoinScene" not in ev[2] and "QuitScene" not in ev[0]
    # the owner cannot leave; a non-member cannot leave
    assert sim.control("group/leave", {"chat_id": chat, "userid": owner}, expect_ok=False)["ok"] is False
    assert sim.control("group/leave", {"chat_id": chat, "userid": a}, expect_ok=False)["ok"] is False


def test_rename_notice_dismiss(sim, owner):
    chat = create(sim, owner)
    sim.control("group/rename", {"chat_id": chat, "name": "新群名"})
    sim.control("group/notice", {"chat_id": chat, "notice": "新公告"})
    g = sim.call("externalcontact/groupchat/get", {"chat_id": chat})["group_chat"]
    assert g["name"] == "新群名" and g["notice"] == "新公告"
    sim.control("group/dismiss", {"chat_id": chat})
    details = [(e["ChangeType"], e.get("UpdateDetail")) for e in outbox(sim, ChatId=chat)]
    assert details == [("create", None), ("update", "change_name"), ("update", "change_notice"), ("dismiss", None)]
    assert sim.call("externalcontact/groupchat/get", {"chat_id": chat})["errcode"] == 40050
    assert chat not in [
        g["chat_id"]
        for g in sim.call("externalcontact/groupchat/list", {"limit": 100, "owner_filter": {"userid_list": [owner]}})[
            "group_chat_list"
        ]
    ]


def test_group_size_limit(sim, owner, sim_rules):
    sim_rules(group_max_members=4)
    people = new_people(sim, 5)
    assert sim.control("group/create", {"owner": owner, "members": people[:4]}, expect_ok=False)["ok"] is False
    chat = create(sim, owner, people[:3])  # owner + 3 = 4
    r = sim.control("group/join", {"chat_id": chat, "external_userid": people[3]}, expect_ok=False)
    assert r["ok"] is False and "full" in r["error"]


def test_join_way_validation(sim, owner, sim_rules):
    chats = [create(sim, owner, name=f"活码群{i}") for i in range(6)]

    def add(**b):
        return sim.call("externalcontact/groupchat/add_join_way", b)

    assert add(scene=3, chat_id_list=chats[:1])["errcode"] == 40058
    assert add(chat_id_list=chats[:1])["errcode"] == 40058
    assert add(scene=2)["errcode"] == 40058
    assert add(scene=2, chat_id_list=chats)["errcode"] == 40058  # at most 5
    assert add(scene=2, chat_id_list=["wrNoSuchChat"])["errcode"] == 40050
    assert add(scene=2, chat_id_list=chats[:1], room_base_name="名" * 41)["errcode"] == 40058
    assert add(scene=2, chat_id_list=chats[:1], state="s" * 31)["errcode"] == 40058
    r = add(
        scene=2, chat_id_list=chats[:5], remark="备" * 40, room_base_name="名" * 40, room_base_id=10, state="s" * 30
    )
    assert r["errcode"] == 0 and set(r) == {"errcode", "errmsg", "config_id"}  # no qr_code here
    jw = sim.call("externalcontact/groupchat/get_join_way", {"config_id": r["config_id"]})["join_way"]
    assert jw["remark"] == "备" * 30  # truncated silently
    assert jw["chat_id_list"] == chats[:5] and jw["room_base_id"] == 10 and jw["auto_create_room"] == 1
    assert jw["qr_code"].endswith(f"/sim-qr/{r['config_id']}.png") and jw["scene"] == 2
    assert sim.http.get(jw["qr_code"]).headers["Content-Type"] == "image/png"
    m = add(scene=1, chat_id_list=chats[:1])
    assert (
        "qr_code" not in sim.call("externalcontact/groupchat/get_join_way", {"config_id": m["config_id"]})["join_way"]
    )
    # update overwrites everything
    assert (
        sim.call(
            "externalcontact/groupchat/update_join_way",
            {"config_id": r["config_id"], "scene": 2, "chat_id_list": chats[1:2]},
        )["errcode"]
        == 0
    )
    jw = sim.call("externalcontact/groupchat/get_join_way", {"config_id": r["config_id"]})["join_way"]
    assert jw["chat_id_list"] == chats[1:2] and jw["remark"] == "" and jw["state"] == "" and "room_base_id" not in jw
    assert (
        sim.call("externalcontact/groupchat/update_join_way", {"config_id": r["config_id"], "scene": 2})["errcode"]
        == 40058
    )
    assert sim.call("externalcontact/groupchat/del_join_way", {"config_id": r["config_id"]})["errcode"] == 0
    assert sim.call("externalcontact/groupchat/get_join_way", {"config_id": r["config_id"]})["errcode"] == 41044
    assert sim.call("externalcontact/groupchat/get_join_way", {})["errcode"] == 41043
    assert sim.call("externalcontact/groupchat/del_join_way", {"config_id": r["config_id"]})["errcode"] == 41044


def test_join_way_rotates_and_auto_creates(sim, owner, sim_rules):
    sim_rules(group_max_members=3)
    g1 = create(sim, owner, name="福利群")
    g2 = create(sim, owner, name="福利群B")
    cid = sim.call(
        "externalcontact/groupchat/add_join_way",
        {"scene": 2, "chat_id_list": [g1, g2], "room_base_name": "福利群", "room_base_id": 10, "state": "jw_live"},
    )["config_id"]
    joined = [sim.control("group/join", {"config_id": cid}) for _ in range(5)]
    assert [j["chat_id"] for j in joined[:4]] == [g1, g1, g2, g2]
    new_chat = joined[4]["chat_id"]
    assert joined[4]["created_chat_id"] == new_chat and new_chat not in (g1, g2)
    g = sim.call("externalcontact/groupchat/get", {"chat_id": new_chat, "need_name": 1})["group_chat"]
    assert g["name"] == "福利群10" and g["owner"] == owner
    cust = next(m for m in g["member_list"] if m["type"] == 2)
    assert cust["join_scene"] == 3 and cust["state"] == "jw_live" and "invitor" not in cust
    jw = sim.call("externalcontact/groupchat/get_join_way", {"config_id": cid})["join_way"]
    assert jw["chat_id_list"] == [g1, g2, new_chat]
    creates = outbox(sim, ChatId=new_chat)
    assert [e["ChangeType"] for e in creates] == ["create", "update"] and creates[1]["JoinScene"] == "3"
    sim.control("group/join", {"config_id": cid})
    nxt = sim.control("group/join", {"config_id": cid})
    assert sim.call("externalcontact/groupchat/get", {"chat_id": nxt["chat_id"]})["group_chat"]["name"] == "福利群11"


def test_join_way_keeps_at_most_five_chats(sim, owner, sim_rules):
    sim_rules(group_max_members=2)
    people = new_people(sim, 5)
    chats = [create(sim, owner, [p], name=f"满员群{i}") for i, p in enumerate(people)]  # all full
    cid = sim.call(
        "externalcontact/groupchat/add_join_way", {"scene": 2, "chat_id_list": chats, "room_base_name": "新群"}
    )["config_id"]
    new = sim.control("group/join", {"config_id": cid})["chat_id"]
    jw = sim.call("externalcontact/groupchat/get_join_way", {"config_id": cid})["join_way"]
    assert len(jw["chat_id_list"]) == 5 and jw["chat_id_list"] == [*chats[1:], new]
    assert sim.call("externalcontact/groupchat/get", {"chat_id": new})["group_chat"]["name"] == "新群1"


def test_join_way_full_without_auto_create(sim, owner, sim_rules):
    sim_rules(group_max_members=2)
    chat = create(sim, owner, new_people(sim, 1))
    cid = sim.call(
        "externalcontact/groupchat/add_join_way", {"scene": 2, "chat_id_list": [chat], "auto_create_room": 0}
    )["config_id"]
    r = sim.control("group/join", {"config_id": cid}, expect_ok=False)
    assert r["ok"] is False and "full" in r["error"]
