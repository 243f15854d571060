"""Mass messages (企业群发, part 2 §1, R1–R5, R8): tasks, confirmations, receive quotas."""

from __future__ import annotations

import calendar
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from tests.sim.helpers import (
    customer_of,
    customers_of,
    employee,
    new_tags,
    own_sim,
    resign,
    tag,
    upload_image,
)

sim = own_sim(customers=50, seed=21)  # these tests advance the clock


def send(sim, **body) -> dict:
    return sim.call("externalcontact/add_msg_template", body)


def ok_send(sim, **body) -> str:
    r = send(sim, **body)
    assert r["errcode"] == 0, r
    return r["msgid"]


def text(s: str = "新品到店") -> dict:
    return {"content": s}


def results(sim, msgid: str, userid: str, **kw) -> dict:
    r = sim.call("externalcontact/get_groupmsg_send_result", {"msgid": msgid, "userid": userid, **kw})
    assert r["errcode"] == 0, r
    return r


def statuses(sim, msgid: str, userid: str) -> dict:
    return {x.get("external_userid") or x.get("chat_id"): x["status"] for x in results(sim, msgid, userid)["send_list"]}


def tasks(sim, msgid: str, **kw) -> dict:
    r = sim.call("externalcontact/get_groupmsg_task", {"msgid": msgid, **kw})
    assert r["errcode"] == 0, r
    return r


def confirm(sim, msgid: str, userid: str, expect_ok: bool = True) -> dict:
    return sim.control("mass/confirm", {"msgid": msgid, "userid": userid}, expect_ok=expect_ok)


# --- creation (R1) ---------------------------------------------------------------------------------
def test_create_with_sender_fail_list_and_pending_task(sim):
    e, other = employee(sim), employee(sim)
    mine = customers_of(sim, e, 3)
    theirs = customer_of(sim, other)
    r = send(sim, external_userid=[*mine, theirs, "wmNoSuchCustomer"], sender=e, text=text())
    assert r["errcode"] == 0, r
    assert r["msgid"].startswith("msg")
    assert r["fail_list"] == [theirs, "wmNoSuchCustomer"]
    t = tasks(sim, r["msgid"])
    assert t["task_list"] == [{"userid": e, "status": 0}]  # no send_time until sent
    assert t["next_cursor"] == ""
    res = results(sim, r["msgid"], e)["send_list"]
    assert [x["external_userid"] for x in res] == mine
    for x in res:
        assert x == {"external_userid": x["external_userid"], "userid": e, "status": 0}  # no chat_id, no send_time


def test_only_sender_means_all_their_customers(sim):
    e = employee(sim)
    cs = customers_of(sim, e, 3)
    sim.control("delete", {"userid": e, "external_userid": cs[0], "by": "customer"})
    msgid = ok_send(sim, sender=e, text=text())
    assert set(statuses(sim, msgid, e)) == set(cs[1:])


def test_recipient_limit_is_a_rule(sim, sim_rules):
    e = employee(sim)
    cs = customers_of(sim, e, 4)
    sim_rules(msg_template_max_recipients=3)
    assert send(sim, external_userid=cs[:3], sender=e, text=text())["errcode"] == 0
    assert send(sim, external_userid=cs, sender=e, text=text())["errcode"] == 40058


def test_default_recipient_limit_10000(sim):
    ids = [f"wmFake{i:06d}" for i in range(10001)]
    assert send(sim, external_userid=ids, text=text())["errcode"] == 40058
    # exactly 10,000 is accepted as a request; none of them can be sent to → 41048
    assert send(sim, external_userid=ids[:10000], text=text())["errcode"] == 41048


def test_content_rules(sim):
    e = employee(sim)
    c = customer_of(sim, e)
    base = {"external_userid": [c], "sender": e}
    assert send(sim, **base)["errcode"] == 44004  # text and attachments both empty
    assert send(sim, **base, text={"content": ""}, attachments=[])["errcode"] == 44004
    assert send(sim, **base, text={"content": "字" * 1334})["errcode"] == 45002  # 4002 bytes > 4000
    assert send(sim, **base, text={"content": "字" * 1333})["errcode"] == 0
    link = {"msgtype": "link", "link": {"title": "活动", "url": "https://example.com/a"}}
    assert send(sim, **base, attachments=[link] * 10)["errcode"] == 40058  # > 9 attachments
    assert send(sim, **base, attachments=[link] * 9)["errcode"] == 0
    assert send(sim, **base, attachments=[{"msgtype": "image", "link": link["link"]}])["errcode"] == 40058
    assert send(sim, **base, attachments=[{"msgtype": "voice", "voice": {"media_id": "x"}}])["errcode"] == 41065
    assert send(sim, **base, attachments=[{"msgtype": "image", "image": {"media_id": "nope"}}])["errcode"] == 40007
    mid = upload_image(sim)
    assert send(sim, **base, attachments=[{"msgtype": "image", "image": {"media_id": mid}}])["errcode"] == 0
    # an image media_id used as a video
    assert send(sim, **base, attachments=[{"msgtype": "video", "video": {"media_id": mid}}])["errcode"] == 40007
    assert send(sim, chat_type="broadcast", **base, text=text())["errcode"] == 86214


def test_expired_media_is_40007(sim, sim_rules):
    e = employee(sim)
    c = customer_of(sim, e)
    mid = upload_image(sim)
    sim_rules(media_ttl_s=0)
    r = send(sim, external_userid=[c], sender=e, attachments=[{"msgtype": "image", "image": {"media_id": mid}}])
    assert r["errcode"] == 40007


def test_sender_rules(sim):
    e = employee(sim)
    c = customer_of(sim, e)
    assert send(sim, text=text())["errcode"] == 40058  # neither external_userid nor sender
    assert send(sim, chat_type="group", text=text())["errcode"] == 40058  # group needs a sender
    assert send(sim, external_userid=[c], sender="nobody_here", text=text())["errcode"] == 40003
    gone = employee(sim)
    resign(sim, gone)
    assert send(sim, sender=gone, text=text())["errcode"] == 40003


def test_nobody_to_send_41048(sim):
    e, other = employee(sim), employee(sim)
    theirs = customer_of(sim, other)
    r = send(sim, external_userid=[theirs], sender=e, text=text())
    assert r["errcode"] == 41048
    assert send(sim, sender=employee(sim), text=text())["errcode"] == 41048  # a sender with no customers


def test_tag_filter_or_within_and_across(sim):
    e = employee(sim)
    a, b, x = new_tags(sim, "A类", "B类", "X类")
    c1, c2, c3, c4, c5 = customers_of(sim, e, 5)
    tag(sim, e, c1, a, x)
    tag(sim, e, c2, b, x)
    tag(sim, e, c3, a)
    tag(sim, e, c4, x)
    tf = {"group_list": [{"tag_list": [a, b]}, {"tag_list": [x]}]}
    msgid = ok_send(sim, sender=e, tag_filter=tf, text=text())
    assert set(statuses(sim, msgid, e)) == {c1, c2}
    # the same filter over an explicit list without a sender
    r = send(sim, external_userid=[c1, c2, c3, c4, c5], tag_filter=tf, text=text())
    assert r["errcode"] == 0 and r["fail_list"] == []
    assert set(statuses(sim, r["msgid"], e)) == {c1, c2}
    # one entry only: OR
    msgid = ok_send(sim, sender=e, tag_filter={"group_list": [{"tag_list": [a, b]}]}, text=text())
    assert set(statuses(sim, msgid, e)) == {c1, c2, c3}
    assert (
        send(sim, sender=e, tag_filter={"group_list": [{"tag_list": ["etNoSuchTag"]}]}, text=text())["errcode"] == 40068
    )


def test_tag_filter_entry_limit(sim, sim_rules):
    e = employee(sim)
    customer_of(sim, e)
    a, b = new_tags(sim, "甲", "乙")
    sim_rules(msg_template_max_tags_per_group=1)
    assert send(sim, sender=e, tag_filter={"group_list": [{"tag_list": [a, b]}]}, text=text())["errcode"] == 40058


def test_no_sender_goes_to_most_recent_active_follower(sim):
    e1, e2 = employee(sim), employee(sim)
    now = sim.control("status")["now"]
    c = customer_of(sim, e1, at=now - 5000)
    customer_of(sim, e2, external_userid=c, at=now - 100)
    r = send(sim, external_userid=[c, "wmUnknownOne"], text=text())
    assert r["errcode"] == 0 and r["fail_list"] == ["wmUnknownOne"]
    assert tasks(sim, r["msgid"])["task_list"] == [{"userid": e2, "status": 0}]
    resign(sim, e2)  # a departed follower no longer counts
    r = send(sim, external_userid=[c], text=text())
    assert tasks(sim, r["msgid"])["task_list"] == [{"userid": e1, "status": 0}]


# --- confirming and quotas (R2, R3) ---------------------------------------------------------------
def test_confirm_sets_statuses_1_2_3(sim, sim_rules):
    sim_rules(customer_msg_quota_mode="daily_1")
    e = employee(sim)
    c_ok, c_gone, c_full = customers_of(sim, e, 3)
    first = ok_send(sim, external_userid=[c_full], sender=e, text=text("先到"))
    confirm(sim, first, e)
    msgid = ok_send(sim, external_userid=[c_ok, c_gone, c_full], sender=e, text=text())
    sim.control("delete", {"userid": e, "external_userid": c_gone, "by": "customer"})
    out = confirm(sim, msgid, e)
    assert out == {"ok": True, "sent": 1, "not_friend": 1, "over_quota": 1}
    res = {x["external_userid"]: x for x in results(sim, msgid, e)["send_list"]}
    assert res[c_ok]["status"] == 1 and res[c_ok]["send_time"] > 0
    assert res[c_gone]["status"] == 2 and "send_time" not in res[c_gone]
    assert res[c_full]["status"] == 3 and "send_time" not in res[c_full]
    t = tasks(sim, msgid)["task_list"][0]
    assert t["status"] == 2 and t["send_time"] == res[c_ok]["send_time"]
    assert confirm(sim, msgid, e, expect_ok=False)["ok"] is False  # already sent


def test_daily_quota_resets_next_day(sim, sim_rules):
    sim_rules(customer_msg_quota_mode="daily_1")
    e = employee(sim)
    c = customer_of(sim, e)
    confirm(sim, ok_send(sim, external_userid=[c], sender=e, text=text()), e)
    assert sim.control("quota", {"external_userid": c})["remaining"] == 0
    second = ok_send(sim, external_userid=[c], sender=e, text=text())
    confirm(sim, second, e)
    assert statuses(sim, second, e) == {c: 3}
    sim.advance(86400)
    q = sim.control("quota", {"external_userid": c})
    assert q["remaining"] == 1 and q["cap"] == 1 and q["mode"] == "daily_1"
    third = ok_send(sim, external_userid=[c], sender=e, text=text())
    confirm(sim, third, e)
    assert statuses(sim, third, e) == {c: 1}


@pytest.mark.parametrize("mode,cap", [("monthly_4", 4), ("weekly_7", 7)])
def test_fixed_quota_modes(sim, sim_rules, mode, cap):
    sim_rules(customer_msg_quota_mode=mode)
    e = employee(sim)
    c = customer_of(sim, e)
    q = sim.control("quota", {"external_userid": c})
    assert q["cap"] == cap and q["remaining"] == cap and q["mode"] == mode
    for _ in range(cap):
        m = ok_send(sim, external_userid=[c], sender=e, text=text())
        confirm(sim, m, e)
        assert statuses(sim, m, e) == {c: 1}
    over = ok_send(sim, external_userid=[c], sender=e, text=text())
    confirm(sim, over, e)
    assert statuses(sim, over, e) == {c: 3}
    assert sim.control("quota", {"external_userid": c})["remaining"] == 0


def test_days_in_month_is_the_default(sim):
    e = employee(sim)
    c = customer_of(sim, e)
    q = sim.control("quota", {"external_userid": c})
    d = dt.datetime.fromtimestamp(sim.control("status")["now"], ZoneInfo("Asia/Shanghai"))
    days = calendar.monthrange(d.year, d.month)[1]
    assert q["mode"] == "days_in_month" and q["cap"] == days and q["remaining"] == days
    for _ in range(days):
        confirm(sim, ok_send(sim, external_userid=[c], sender=e, text=text()), e)
    over = ok_send(sim, external_userid=[c], sender=e, text=text())
    confirm(sim, over, e)
    assert statuses(sim, over, e) == {c: 3}


def test_employee_sends_count_toward_quota(sim, sim_rules):
    sim_rules(customer_msg_quota_mode="daily_1")
    e = employee(sim)
    c, d = customers_of(sim, e, 2)
    out = sim.control("mass/employee_send", {"userid": e, "external_userids": [c], "text": "个人群发"})
    assert out["sent"] == 1
    corp = ok_send(sim, external_userid=[c, d], sender=e, text=text())
    confirm(sim, corp, e)
    assert statuses(sim, corp, e) == {c: 3, d: 1}
    now = sim.control("status")["now"]
    lst = sim.call(
        "externalcontact/get_groupmsg_list_v2",
        {"chat_type": "single", "start_time": now - 60, "end_time": now + 60, "filter_type": 1, "creator": e},
    )
    assert [m["msgid"] for m in lst["group_msg_list"]] == [out["msgid"]]
    assert lst["group_msg_list"][0]["creator"] == e and lst["group_msg_list"][0]["create_type"] == 1


def test_quota_action_needs_a_recipient(sim):
    assert sim.control("quota", {}, expect_ok=False)["ok"] is False


# --- group sends -----------------------------------------------------------------------------------
def test_group_send_results_and_group_quota(sim, sim_rules):
    sim_rules(group_msg_quota_mode="daily_1")
    e, other = employee(sim), employee(sim)
    cs = customers_of(sim, e, 2)
    g1 = sim.control("group/create", {"owner": e, "name": "群一", "members": cs})["chat_id"]
    g2 = sim.control("group/create", {"owner": e, "name": "群二", "members": cs[:1]})["chat_id"]
    g_other = sim.control("group/create", {"owner": other, "name": "别人的群", "members": []})["chat_id"]
    assert send(sim, chat_type="group", sender=e, chat_id_list=[g_other], text=text())["errcode"] == 41048
    msgid = ok_send(sim, chat_type="group", sender=e, chat_id_list=[g1, g2, g_other], text=text())
    res = results(sim, msgid, e)["send_list"]
    assert [x["chat_id"] for x in res] == [g1, g2]
    assert all("external_userid" not in x for x in res)
    sim.control("group/dismiss", {"chat_id": g2})
    confirm(sim, msgid, e)
    assert statuses(sim, msgid, e) == {g1: 1, g2: 2}
    assert sim.control("quota", {"chat_id": g1})["remaining"] == 0
    again = ok_send(sim, chat_type="group", sender=e, text=text())  # no chat list: all the sender's groups
    assert set(statuses(sim, again, e)) == {g1}
    confirm(sim, again, e)
    assert statuses(sim, again, e) == {g1: 3}


def test_group_chat_list_limit(sim, sim_rules):
    e = employee(sim)
    g = sim.control("group/create", {"owner": e, "name": "群", "members": []})["chat_id"]
    sim_rules(msg_template_max_chats=2)
    assert send(sim, chat_type="group", sender=e, chat_id_list=[g, "wr1", "wr2"], text=text())["errcode"] == 40058
    assert send(sim, chat_type="group", sender=e, chat_id_list=[g, "wr1"], text=text())["errcode"] == 0


# --- lists and paging (R5) -------------------------------------------------------------------------
def test_groupmsg_list_v2(sim):
    e = employee(sim)
    c = customer_of(sim, e)
    start = sim.advance(7200)  # a window with no other test's messages
    ids = [ok_send(sim, external_userid=[c], sender=e, text=text(f"第{i}条")) for i in range(3)]
    body = {"chat_type": "single", "start_time": start, "end_time": start + 3600, "filter_type": 0}
    r = sim.call("externalcontact/get_groupmsg_list_v2", {**body, "limit": 2})
    assert len(r["group_msg_list"]) == 2 and r["next_cursor"]
    m0 = r["group_msg_list"][0]
    assert "creator" not in m0  # API-created messages carry no creator
    assert m0["create_type"] == 0 and isinstance(m0["create_time"], str) and m0["create_time"].isdigit()
    assert m0["text"]["content"].startswith("第")
    r2 = sim.call("externalcontact/get_groupmsg_list_v2", {**body, "limit": 2, "cursor": r["next_cursor"]})
    assert len(r2["group_msg_list"]) == 1 and r2["next_cursor"] == ""
    assert sorted(m["msgid"] for m in r["group_msg_list"] + r2["group_msg_list"]) == sorted(ids)
    big = sim.call("externalcontact/get_groupmsg_list_v2", {**body, "limit": 500})  # over 100 → default 50
    assert big["errcode"] == 0 and sorted(m["msgid"] for m in big["group_msg_list"]) == sorted(ids)
    r = sim.call("externalcontact/get_groupmsg_list_v2", {**body, "filter_type": 1})
    assert r["group_msg_list"] == []
    sim.set_rules(groupmsg_list_default_limit=1, groupmsg_list_max_limit=2)
    try:  # a limit above the max falls back to the default, not to the max
        assert len(sim.call("externalcontact/get_groupmsg_list_v2", {**body, "limit": 3})["group_msg_list"]) == 1
        assert len(sim.call("externalcontact/get_groupmsg_list_v2", {**body, "limit": 2})["group_msg_list"]) == 2
    finally:
        sim.reset_rules()
    assert sim.call("externalcontact/get_groupmsg_list_v2", {**body, "cursor": "garbage!"})["errcode"] == 50100
    assert sim.call("externalcontact/get_groupmsg_list_v2", {**body, "chat_type": "x"})["errcode"] == 86214


def test_groupmsg_list_span_at_most_a_month(sim):
    now = sim.control("status")["now"]
    body = {"chat_type": "single", "end_time": now}
    assert sim.call("externalcontact/get_groupmsg_list_v2", {**body, "start_time": now - 31 * 86400})["errcode"] == 0
    r = sim.call("externalcontact/get_groupmsg_list_v2", {**body, "start_time": now - 31 * 86400 - 1})
    assert r["errcode"] == 40058
    assert sim.call("externalcontact/get_groupmsg_list_v2", {"chat_type": "single"})["errcode"] == 40058


def test_task_and_result_paging(sim, sim_rules):
    e = employee(sim)
    cs = customers_of(sim, e, 5)
    msgid = ok_send(sim, external_userid=cs, sender=e, text=text())
    got, cursor = [], ""
    while True:
        r = results(sim, msgid, e, limit=2, cursor=cursor)
        assert len(r["send_list"]) <= 2
        got += [x["external_userid"] for x in r["send_list"]]
        cursor = r["next_cursor"]
        if not cursor:
            break
    assert got == cs
    sim_rules(groupmsg_page_max_limit=3, groupmsg_page_default_limit=2)
    r = results(sim, msgid, e, limit=5000)  # above the max: clamped to it
    assert len(r["send_list"]) == 3 and r["next_cursor"]
    assert len(results(sim, msgid, e)["send_list"]) == 2  # no limit: the default
    e2 = employee(sim)
    customer_of(sim, e2)
    many = send(sim, external_userid=[*cs, customer_of(sim, e2)], text=text())["msgid"]
    assert len(tasks(sim, many)["task_list"]) == 2 and tasks(sim, many, limit=1)["next_cursor"]
    assert sim.call("externalcontact/get_groupmsg_send_result", {"msgid": msgid})["errcode"] == 41009
    assert sim.call("externalcontact/get_groupmsg_task", {})["errcode"] == 41046
    assert sim.call("externalcontact/get_groupmsg_task", {"msgid": "msgNope"})["errcode"] == 41047


def test_legacy_get_group_msg_result(sim):
    e = employee(sim)
    cs = customers_of(sim, e, 2)
    msgid = ok_send(sim, external_userid=cs, sender=e, text=text())
    confirm(sim, msgid, e)
    r = sim.call("externalcontact/get_group_msg_result", {"msgid": msgid})
    assert r["errcode"] == 0 and r["check_status"] == 1
    assert [(x["external_userid"], x["userid"], x["status"]) for x in r["detail_list"]] == [(c, e, 1) for c in cs]
    assert all(x["send_time"] for x in r["detail_list"])


# --- remind and cancel (R4, R8) ---------------------------------------------------------------------
def test_remind_three_times_per_24h(sim):
    e = employee(sim)
    msgid = ok_send(sim, external_userid=[customer_of(sim, e)], sender=e, text=text())
    for _ in range(3):
        assert sim.call("externalcontact/remind_groupmsg_send", {"msgid": msgid})["errcode"] == 0
    assert sim.call("externalcontact/remind_groupmsg_send", {"msgid": msgid})["errcode"] == 45009
    sim.advance(86401)
    assert sim.call("externalcontact/remind_groupmsg_send", {"msgid": msgid})["errcode"] == 0
    assert sim.call("externalcontact/remind_groupmsg_send", {"msgid": "msgNope"})["errcode"] == 41047


def test_remind_cap_is_a_rule(sim, sim_rules):
    e = employee(sim)
    msgid = ok_send(sim, external_userid=[customer_of(sim, e)], sender=e, text=text())
    sim_rules(remind_max_per_24h=1)
    assert sim.call("externalcontact/remind_groupmsg_send", {"msgid": msgid})["errcode"] == 0
    assert sim.call("externalcontact/remind_groupmsg_send", {"msgid": msgid})["errcode"] == 45009


def test_cancel_stops_the_remaining_tasks(sim):
    e1, e2 = employee(sim), employee(sim)
    c1, c2 = customer_of(sim, e1), customer_of(sim, e2)
    r = send(sim, external_userid=[c1, c2], text=text())
    msgid = r["msgid"]
    confirm(sim, msgid, e1)
    assert sim.call("externalcontact/cancel_groupmsg_send", {"msgid": msgid})["errcode"] == 0
    assert confirm(sim, msgid, e2, expect_ok=False)["ok"] is False
    assert statuses(sim, msgid, e1) == {c1: 1}  # already sent stays sent
    assert statuses(sim, msgid, e2) == {c2: 0}
    by_user = {t["userid"]: t["status"] for t in tasks(sim, msgid)["task_list"]}
    assert by_user == {e1: 2, e2: 0}
    assert sim.call("externalcontact/cancel_groupmsg_send", {"msgid": "msgNope"})["errcode"] == 41047
    assert sim.call("externalcontact/cancel_groupmsg_send", {})["errcode"] == 41046


# --- simulated employees -----------------------------------------------------------------------------
def test_auto_confirm_and_ignore(sim):
    e1, e2 = employee(sim), employee(sim)
    c1, c2 = customer_of(sim, e1), customer_of(sim, e2)
    sim.control("mass/auto", {"probability": 1, "delay_s": 600, "seed": 3})
    try:
        msgid = send(sim, external_userid=[c1, c2], text=text())["msgid"]
    finally:
        sim.control("mass/auto", {"probability": 0})
    sim.control("mass/ignore", {"msgid": msgid, "userid": e2})
    assert statuses(sim, msgid, e1) == {c1: 0}
    sim.advance(1000)  # beyond 600 s × 1.5
    assert statuses(sim, msgid, e1) == {c1: 1}
    assert statuses(sim, msgid, e2) == {c2: 0}
    assert confirm(sim, msgid, e2, expect_ok=False)["ok"] is False  # ignored: never sends
    later = send(sim, external_userid=[c1], sender=e1, text=text())["msgid"]
    sim.advance(1000)
    assert statuses(sim, later, e1) == {c1: 0}  # probability 0 again: nobody confirms


def test_auto_probability_is_deterministic(sim):
    es = [employee(sim) for _ in range(8)]
    cs = [customer_of(sim, e) for e in es]
    sim.control("mass/auto", {"probability": 0.5, "delay_s": 0, "seed": 9})
    try:
        msgid = send(sim, external_userid=cs, text=text())["msgid"]
    finally:
        sim.control("mass/auto", {"probability": 0})
    sim.control("tick")
    sent = {t["userid"] for t in tasks(sim, msgid)["task_list"] if t["status"] == 2}
    assert 0 < len(sent) < len(es)
    assert sim.control("mass/auto", {"probability": 2}, expect_ok=False)["ok"] is False
