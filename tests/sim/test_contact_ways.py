"""Contact ways (「联系我」): add/get/list/update/del, temp chats, scan routing (rules R11–R15)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.sim.helpers import employee


def add_way(sim, **body):
    return sim.call("externalcontact/add_contact_way", body)


def counts(sim) -> dict:
    return sim.control("part1/counts")


@pytest.fixture
def emp(sim):
    return employee(sim)


def test_type_and_scene_errors(sim, emp):
    assert add_way(sim, scene=2, user=[emp])["errcode"] == 41037
    assert add_way(sim, type=3, scene=2, user=[emp])["errcode"] == 41039
    assert add_way(sim, type=1, user=[emp])["errcode"] == 41038
    assert add_way(sim, type=1, scene=3, user=[emp])["errcode"] == 41040
    assert add_way(sim, type=1, scene=1, style=9, user=[emp])["errcode"] == 41042
    assert add_way(sim, type=1, scene=1, style=3, user=[emp])["errcode"] == 0
    assert add_way(sim, type=1, scene=2, style=9, user=[emp])["errcode"] == 0  # style only for scene 1


def test_field_rules(sim, emp, sim_rules):
    other = employee(sim)
    assert add_way(sim, type=1, scene=2, user=[emp, other])["errcode"] == 40058  # single: exactly one user
    assert add_way(sim, type=1, scene=2)["errcode"] == 40058
    assert add_way(sim, type=2, scene=2)["errcode"] == 40058  # user and party both empty
    assert add_way(sim, type=1, scene=2, user=[emp], remark="r" * 31)["errcode"] == 40058
    assert add_way(sim, type=1, scene=2, user=[emp], state="s" * 31)["errcode"] == 40058
    assert add_way(sim, type=1, scene=2, user=[emp], remark="r" * 30, state="s" * 30)["errcode"] == 0
    assert add_way(sim, type=1, scene=2, user=["nobody_at_all"])["errcode"] == 60111
    assert add_way(sim, type=2, scene=2, party=[987654])["errcode"] == 60123
    no_contact = employee(sim, contact_enabled=False)
    assert add_way(sim, type=1, scene=2, user=[no_contact])["errcode"] == 84074
    sim_rules(contact_way_max_users=2, state_max_len=5)
    third = employee(sim)
    assert add_way(sim, type=2, scene=2, user=[emp, other, third])["errcode"] == 41041
    assert add_way(sim, type=2, scene=2, user=[emp, other])["errcode"] == 0
    assert add_way(sim, type=1, scene=2, user=[emp], state="123456")["errcode"] == 40058


def test_cap_counts_contact_and_join_ways(sim, emp, sim_rules):
    have = counts(sim)["api_ways"]
    sim_rules(contact_way_cap=have + 2)
    assert add_way(sim, type=1, scene=2, user=[emp])["errcode"] == 0
    chat = sim.control("group/create", {"owner": emp, "name": "上限测试群", "members": []})["chat_id"]
    assert sim.call("externalcontact/groupchat/add_join_way", {"scene": 2, "chat_id_list": [chat]})["errcode"] == 0
    assert add_way(sim, type=1, scene=2, user=[emp])["errcode"] == 41045
    assert sim.call("externalcontact/groupchat/add_join_way", {"scene": 2, "chat_id_list": [chat]})["errcode"] == 41045
    # temporary ways are not counted against the cap
    assert add_way(sim, type=1, scene=2, user=[emp], is_temp=True)["errcode"] == 0
    # deleting frees a slot
    cid = sim.call("externalcontact/list_contact_way", {"start_time": 0, "limit": 1000})["contact_way"][-1]["config_id"]
    assert sim.call("externalcontact/del_contact_way", {"config_id": cid})["errcode"] == 0
    assert add_way(sim, type=1, scene=2, user=[emp])["errcode"] == 0


def test_get_shapes_and_qr_png(sim, emp):
    dept_id = sim.control("department/create", {"name": "联系我测试部", "parentid": 1})["department"]["id"]
    r = add_way(
        sim, type=2, scene=2, user=[emp], party=[dept_id], remark="门店海报", state="poster01", skip_verify=False
    )
    assert r["errcode"] == 0 and len(r["config_id"]) == 32 and r["qr_code"]
    w = sim.call("externalcontact/get_contact_way", {"config_id": r["config_id"]})
    cw = w["contact_way"]
    assert isinstance(cw, dict)  # an object, as the official doc shows
    assert cw["config_id"] == r["config_id"] and cw["type"] == 2 and cw["scene"] == 2 and "style" not in cw
    assert cw["remark"] == "门店海报" and cw["state"] == "poster01" and cw["skip_verify"] is False
    assert cw["user"] == [emp] and cw["party"] == [dept_id] and cw["is_temp"] is False
    assert cw["qr_code"] == r["qr_code"]
    png = sim.http.get(cw["qr_code"], timeout=10)
    assert png.status_code == 200 and png.headers["Content-Type"] == "image/png"
    img = Image.open(io.BytesIO(png.content))
    assert img.format == "PNG" and img.size[0] > 100
    m = add_way(sim, type=1, scene=1, user=[emp])
    assert "qr_code" not in m
    cw1 = sim.call("externalcontact/get_contact_way", {"config_id": m["config_id"]})["contact_way"]
    assert cw1["style"] == 1 and "qr_code" not in cw1 and cw1["skip_verify"] is True
    assert sim.call("externalcontact/get_contact_way", {})["errcode"] == 41043
    assert sim.call("externalcontact/get_contact_way", {"config_id": "0" * 32})["errcode"] == 41044


def test_list_contact_way(sim, emp, sim_rules):
    t0 = sim.control("status")["now"]
    ids = [add_way(sim, type=1, scene=2, user=[emp])["config_id"] for _ in range(3)]
    temp = add_way(sim, type=1, scene=2, user=[emp], is_temp=True)["config_id"]
    sim.call("externalcontact/del_contact_way", {"config_id": ids[1]})
    got, cursor = [], ""
    while True:
        r = sim.call("externalcontact/list_contact_way", {"start_time": t0, "limit": 1, "cursor": cursor})
        assert r["errcode"] == 0 and len(r["contact_way"]) <= 1
        got += [c["config_id"] for c in r["contact_way"]]
        cursor = r["next_cursor"]
        if not cursor:
            break
    assert ids[0] in got and ids[2] in got and ids[1] not in got and temp not in got
    # limit above 1000 is clamped; an inverted window is refused
    assert sim.call("externalcontact/list_contact_way", {"start_time": t0, "limit": 5000})["errcode"] == 0
    assert sim.call("externalcontact/list_contact_way", {"start_time": t0 + 10, "end_time": t0})["errcode"] == 40058
    # default window: the last 90 days
    sim_rules(list_contact_way_window_s=2)
    sim.advance(3)
    assert ids[0] not in [c["config_id"] for c in sim.call("externalcontact/list_contact_way", {})["contact_way"]]


def test_update_and_delete(sim, emp):
    other = employee(sim)
    single = add_way(sim, type=1, scene=2, user=[emp], state="a")["config_id"]
    assert (
        sim.call("externalcontact/update_contact_way", {"config_id": single, "user": [emp, other]})["errcode"] == 40058
    )
    assert (
        sim.call(
            "externalcontact/update_contact_way", {"config_id": single, "user": [other], "remark": "新", "party": [1]}
        )["errcode"]
        == 0
    )
    cw = sim.call("externalcontact/get_contact_way", {"config_id": single})["contact_way"]
    assert cw["user"] == [other] and cw["remark"] == "新" and cw["state"] == "a" and cw["party"] == []
    multi = add_way(sim, type=2, scene=2, user=[emp, other])["config_id"]
    assert sim.call("externalcontact/update_contact_way", {"config_id": multi, "user": [other]})["errcode"] == 0
    assert sim.call("externalcontact/get_contact_way", {"config_id": multi})["contact_way"]["user"] == [other]
    assert sim.call("externalcontact/update_contact_way", {"config_id": multi, "state": "x" * 31})["errcode"] == 40058
    assert sim.call("externalcontact/update_contact_way", {})["errcode"] == 41043
    assert sim.call("externalcontact/del_contact_way", {"config_id": multi})["errcode"] == 0
    assert sim.call("externalcontact/update_contact_way", {"config_id": multi, "remark": "x"})["errcode"] == 41044
    assert sim.call("externalcontact/del_contact_way", {"config_id": multi})["errcode"] == 41044
    assert sim.call("externalcontact/del_contact_way", {})["errcode"] == 41043


def test_temporary_ways(sim, emp):
    assert add_way(sim, type=2, scene=2, user=[emp], is_temp=True)["errcode"] == 40058  # single-member only
    assert add_way(sim, type=1, scene=2, user=[emp], is_temp=True, expires_in=14 * 86400 + 1)["errcode"] == 40058
    assert add_way(sim, type=1, scene=2, user=[emp], is_temp=True, chat_expires_in=14 * 86400 + 1)["errcode"] == 40058
    r = add_way(
        sim,
        type=1,
        scene=2,
        user=[emp],
        is_temp=True,
        expires_in=3600,
        chat_expires_in=600,
        conclusions={"text": {"content": "感谢咨询"}},
    )
    assert r["errcode"] == 0
    cw = sim.call("externalcontact/get_contact_way", {"config_id": r["config_id"]})["contact_way"]
    assert cw["is_temp"] is True and cw["expires_in"] == 3600 and cw["chat_expires_in"] == 600
    assert cw["conclusions"] == {"text": {"content": "感谢咨询"}}
    # a default temp way: 7 d QR, 24 h chat
    d = add_way(sim, type=1, scene=2, user=[emp], is_temp=True)["config_id"]
    cwd = sim.call("externalcontact/get_contact_way", {"config_id": d})["contact_way"]
    assert cwd["expires_in"] == 7 * 86400 and cwd["chat_expires_in"] == 86400
    # the QR code works once
    s = sim.control("scan", {"config_id": r["config_id"]})
    assert s["userid"] == emp
    again = sim.control("scan", {"config_id": r["config_id"]}, expect_ok=False)
    assert again["ok"] is False and "used" in again["error"]
    assert (
        sim.call("externalcontact/update_contact_way", {"config_id": r["config_id"], "remark": "x"})["errcode"] == 41044
    )
    # close_temp_chat: once; not for other relations
    x = s["external_userid"]
    assert sim.call("externalcontact/close_temp_chat", {"userid": emp, "external_userid": x})["errcode"] == 0
    assert sim.call("externalcontact/close_temp_chat", {"userid": emp, "external_userid": x})["errcode"] == 40058
    other = sim.control("add_friend", {"userid": emp, "add_way": 2})["external_userid"]
    assert sim.call("externalcontact/close_temp_chat", {"userid": emp, "external_userid": other})["errcode"] == 40058
    stranger = sim.control("customer/new")["external_userid"][0]
    assert sim.call("externalcontact/close_temp_chat", {"userid": emp, "external_userid": stranger})["errcode"] == 84061


def test_temporary_way_expires(sim, emp):
    r = add_way(sim, type=1, scene=2, user=[emp], is_temp=True, expires_in=30)
    sim.advance(31)
    assert (
        sim.call("externalcontact/update_contact_way", {"config_id": r["config_id"], "remark": "x"})["errcode"] == 41044
    )
    bad = sim.control("scan", {"config_id": r["config_id"]}, expect_ok=False)
    assert bad["ok"] is False and "expired" in bad["error"]


def test_scan_round_robin_over_users_and_party(sim):
    dept_id = sim.control("department/create", {"name": "轮询部门", "parentid": 1})["department"]["id"]
    lead = employee(sim)
    members = sorted(employee(sim, department=[dept_id]) for _ in range(2))
    off = employee(sim, department=[dept_id], contact_enabled=False)
    r = add_way(sim, type=2, scene=2, user=[lead], party=[dept_id], state="rr")
    got = [sim.control("scan", {"config_id": r["config_id"]})["userid"] for _ in range(4)]
    assert got == [lead, *members, lead]
    assert off not in got
    # the add: add_way 1, state from the way, oper_userid the customer
    s = sim.control("scan", {"config_id": r["config_id"]})
    f = next(
        f
        for f in sim.get("externalcontact/get", external_userid=s["external_userid"])["follow_user"]
        if f["userid"] == s["userid"]
    )
    assert f["add_way"] == 1 and f["state"] == "rr" and f["oper_userid"] == s["external_userid"]
    # deleted ways cannot be scanned
    sim.call("externalcontact/del_contact_way", {"config_id": r["config_id"]})
    assert sim.control("scan", {"config_id": r["config_id"]}, expect_ok=False)["ok"] is False


def test_scan_existing_customer(sim, emp):
    r = add_way(sim, type=1, scene=2, user=[emp], state="老客")
    x = sim.control("customer/new")["external_userid"][0]
    s = sim.control("scan", {"config_id": r["config_id"], "external_userid": x})
    assert s["external_userid"] == x and s["added"] is True and s["state"] == "老客"
    # scanning again while already a friend: nothing happens
    assert sim.control("scan", {"config_id": r["config_id"], "external_userid": x})["added"] is False


def test_temporary_way_daily_cap(sim, emp, sim_rules):
    have = counts(sim)["temp_ways_today"]
    sim_rules(temp_contact_way_daily_cap=have + 1)
    assert add_way(sim, type=1, scene=2, user=[emp], is_temp=True)["errcode"] == 0
    assert add_way(sim, type=1, scene=2, user=[emp], is_temp=True)["errcode"] == 41045
    assert add_way(sim, type=1, scene=2, user=[emp])["errcode"] == 0  # ordinary ways are not affected
