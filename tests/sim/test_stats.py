"""Statistics (part 2 §4, R15): 联系客户统计 and 群聊数据统计."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from tests.sim.helpers import customer_of, customers_of, employee, uid

CST = ZoneInfo("Asia/Shanghai")
DAY = 86400


def midnight(ts: int) -> int:
    d = dt.datetime.fromtimestamp(ts, CST).replace(hour=0, minute=0, second=0, microsecond=0)
    return int(d.timestamp())


def now(sim) -> int:
    return sim.control("status")["now"]


def behavior(sim, **body) -> dict:
    return sim.call("externalcontact/get_user_behavior_data", body)


def test_new_contacts_and_negative_feedback_today(sim):
    e = employee(sim)
    _c1, _c2, c3 = customers_of(sim, e, 3)
    sim.control("delete", {"userid": e, "external_userid": c3, "by": "customer"})
    today = midnight(now(sim))
    r = behavior(sim, userid=[e], start_time=today + 5 * 3600, end_time=now(sim))
    assert r["errcode"] == 0, r
    assert len(r["behavior_data"]) == 1
    item = r["behavior_data"][0]
    assert item["stat_time"] == today  # floored to 00:00 China time
    assert item["new_contact_cnt"] == 3
    assert item["negative_feedback_cnt"] == 1
    assert 3 <= item["new_apply_cnt"] <= 5  # the three requests the employee sent, plus pending ones
    for k in ("chat_cnt", "message_cnt"):
        assert isinstance(item[k], int) and item[k] >= 0


def test_one_item_per_day_aggregated_and_deterministic(sim):
    end = now(sim)
    users = [employee(sim) for _ in range(3)]
    for k, u in enumerate(users):
        for i in range(25):  # customers added over the last 20 days
            customer_of(sim, u, at=end - (i * 19 + k) * 3600 * 20 // 24)
    start = midnight(end) - 29 * DAY
    r = behavior(sim, userid=users, start_time=start, end_time=end)
    assert r["errcode"] == 0, r
    days = [x["stat_time"] for x in r["behavior_data"]]
    assert days == [midnight(start) + i * DAY for i in range(30)]
    singles = [behavior(sim, userid=[u], start_time=start, end_time=end)["behavior_data"] for u in users]
    for i, item in enumerate(r["behavior_data"]):
        for k in ("chat_cnt", "message_cnt", "new_contact_cnt", "negative_feedback_cnt", "new_apply_cnt"):
            assert item[k] == sum(s[i][k] for s in singles), k
        if "reply_percentage" in item:
            assert 0 <= item["reply_percentage"] <= 100
    assert any(x["chat_cnt"] > 0 for x in r["behavior_data"])
    assert any(x["new_contact_cnt"] > 0 for x in r["behavior_data"])
    assert r == behavior(sim, userid=users, start_time=start, end_time=end)


def test_partyid_covers_the_department_tree(sim):
    top = sim.control("department/create", {"name": uid("统计部")})["department"]["id"]
    sub = sim.control("department/create", {"name": uid("统计组"), "parentid": top})["department"]["id"]
    a, b = employee(sim, department=[top]), employee(sim, department=[sub])
    customer_of(sim, a)
    customers_of(sim, b, 2)
    t = now(sim)
    r = behavior(sim, partyid=[top], start_time=t, end_time=t)
    assert r["behavior_data"][0]["new_contact_cnt"] == 3
    assert behavior(sim, partyid=[98765431], start_time=t, end_time=t)["errcode"] == 60123


def test_behavior_request_rules(sim, sim_rules):
    t = now(sim)
    e = employee(sim)
    assert behavior(sim, start_time=t, end_time=t)["errcode"] == 40058  # userid and partyid both empty
    assert behavior(sim, userid=[], partyid=[], start_time=t, end_time=t)["errcode"] == 40058
    assert behavior(sim, userid=["nobody_at_all"], start_time=t, end_time=t)["errcode"] == 60111
    today = midnight(t)
    assert behavior(sim, userid=[e], start_time=today - 30 * DAY, end_time=t)["errcode"] == 0
    assert behavior(sim, userid=[e], start_time=today - 31 * DAY, end_time=t)["errcode"] == 40058  # span > 30 days
    assert behavior(sim, userid=[e], start_time=today - 180 * DAY, end_time=today - 170 * DAY)["errcode"] == 0
    assert behavior(sim, userid=[e], start_time=today - 181 * DAY, end_time=today - 170 * DAY)["errcode"] == 40058
    assert behavior(sim, userid=[e], start_time=t, end_time=t - 2 * DAY)["errcode"] == 40058
    assert behavior(sim, userid=[e], end_time=t)["errcode"] == 40058
    many = [f"u{i}" for i in range(101)]
    assert behavior(sim, userid=many, start_time=t, end_time=t)["errcode"] == 40058  # > 100 ids
    sim_rules(stats_max_ids=2)
    assert behavior(sim, partyid=[1, 2, 3], start_time=t, end_time=t)["errcode"] == 40058


# --- groups ----------------------------------------------------------------------------------------
def stat(sim, **body) -> dict:
    return sim.call("externalcontact/groupchat/statistic", body)


def test_group_statistic_by_owner(sim):
    a, b = employee(sim), employee(sim)
    ca = customers_of(sim, a, 3)
    sim.control("group/create", {"owner": a, "name": "统计群1", "members": ca})
    sim.control("group/create", {"owner": a, "name": "统计群2", "members": ca[:1]})
    sim.control("group/create", {"owner": b, "name": "统计群3", "members": []})
    today = midnight(now(sim))
    r = stat(sim, day_begin_time=today, owner_filter={"userid_list": [a, b]})
    assert r["errcode"] == 0, r
    assert r["total"] == 2 and r["next_offset"] == 2
    items = {x["owner"]: x["data"] for x in r["items"]}
    assert items[a]["new_chat_cnt"] == 2 and items[a]["chat_total"] == 2
    assert items[a]["member_total"] == 6 and items[a]["new_member_cnt"] == 6  # owner + members, both groups
    assert items[b]["chat_total"] == 1 and items[b]["member_total"] == 1
    assert set(items[a]) == {
        "new_chat_cnt",
        "chat_total",
        "chat_has_msg",
        "new_member_cnt",
        "member_total",
        "member_has_msg",
        "msg_total",
        "migrate_trainee_chat_cnt",
    }
    assert [x["owner"] for x in r["items"]] == [a, b]  # order_by 1 (new groups), descending
    asc = stat(sim, day_begin_time=today, owner_filter={"userid_list": [a, b]}, order_by=4, order_asc=1)
    assert [x["owner"] for x in asc["items"]] == [b, a]
    page = stat(sim, day_begin_time=today, owner_filter={"userid_list": [a, b]}, offset=1, limit=1)
    assert [x["owner"] for x in page["items"]] == [b] and page["next_offset"] == 2 and page["total"] == 2


def test_group_statistic_rules(sim, sim_rules):
    today = midnight(now(sim))
    assert stat(sim)["errcode"] == 40058  # day_begin_time missing
    assert stat(sim, day_begin_time=today, limit=1001)["errcode"] == 40058
    assert stat(sim, day_begin_time=today, limit=1000)["errcode"] == 0
    assert stat(sim, day_begin_time=today, order_by=5)["errcode"] == 40058
    assert stat(sim, day_begin_time=today - 31 * DAY, day_end_time=today)["errcode"] == 40058
    assert stat(sim, day_begin_time=today - 181 * DAY)["errcode"] == 40058
    owners = [f"o{i}" for i in range(101)]
    assert stat(sim, day_begin_time=today, owner_filter={"userid_list": owners})["errcode"] == 40058
    sim_rules(stats_max_ids=1)
    assert stat(sim, day_begin_time=today, owner_filter={"userid_list": ["x", "y"]})["errcode"] == 40058


def test_group_statistic_by_day(sim):
    a = employee(sim)
    cs = customers_of(sim, a, 2)
    t = now(sim)
    today = midnight(t)
    sim.control("group/create", {"owner": a, "name": "昨天的群", "members": cs, "at": today - DAY + 3600})
    sim.control("group/create", {"owner": a, "name": "今天的群", "members": []})
    r = sim.call(
        "externalcontact/groupchat/statistic_group_by_day",
        {"day_begin_time": today - 2 * DAY, "day_end_time": t, "owner_filter": {"userid_list": [a]}},
    )
    assert r["errcode"] == 0, r
    assert [x["stat_time"] for x in r["items"]] == [today - 2 * DAY, today - DAY, today]
    d = [x["data"] for x in r["items"]]
    assert [x["new_chat_cnt"] for x in d] == [0, 1, 1]
    assert [x["chat_total"] for x in d] == [0, 1, 2]
    assert d[2]["member_total"] == 4  # 3 in yesterday's group (joined then) + today's owner
    by_owner = stat(sim, day_begin_time=today - 2 * DAY, day_end_time=t, owner_filter={"userid_list": [a]})
    assert by_owner["items"][0]["data"]["new_chat_cnt"] == 2
    assert by_owner["items"][0]["data"]["msg_total"] == sum(x["msg_total"] for x in d)
