"""App messages (应用消息, part 2 §5, R16): message/send, message/recall, what employees received."""

from __future__ import annotations

from tests.sim.helpers import employee, uid, upload_image
from tests.simproc import SimProcess

AGENT = 1000002


def send(sim, **body) -> dict:
    body.setdefault("agentid", AGENT)
    return sim.call("message/send", body)


def text(s: str = "您有一位客户流失") -> dict:
    return {"msgtype": "text", "text": {"content": s}}


def received(sim, userid: str, **kw) -> list[dict]:
    return sim.control("app_messages", {"touser": userid, **kw})["messages"]


def test_send_text_and_app_messages(sim):
    a, b = employee(sim), employee(sim)
    r = send(sim, touser=f"{a}|{b}", **text("客户张三删除了你"))
    assert r["errcode"] == 0, r
    assert r["msgid"] and "invaliduser" not in r
    for u in (a, b):
        msgs = received(sim, u)
        assert len(msgs) == 1
        assert msgs[0]["msgtype"] == "text" and msgs[0]["content"] == {"content": "客户张三删除了你"}
        assert msgs[0]["msgid"] == r["msgid"] and msgs[0]["agentid"] == AGENT and not msgs[0]["dropped"]
    since = received(sim, a)[0]["sent_at"]
    assert len(sim.control("app_messages", {"since": since + 3600})["messages"]) == 0


def test_agentid_and_msgtype(sim):
    a = employee(sim)
    assert send(sim, touser=a, agentid=1000003, **text())["errcode"] == 40056
    assert sim.call("message/send", {"touser": a, **text()})["errcode"] == 41011
    assert send(sim, touser=a, msgtype="fax", fax={})["errcode"] == 40008
    assert send(sim, touser=a, msgtype="text", text={"content": ""})["errcode"] == 44004
    assert send(sim, touser=a, **text("字" * 683))["errcode"] == 45002  # 2049 bytes
    assert send(sim, touser=a, **text("a" * 2048))["errcode"] == 0


def test_partially_and_wholly_invalid_recipients(sim):
    a = employee(sim)
    r = send(sim, touser=f"{a}|NoSuchUser", toparty="987654", totag="1", **text())
    assert r["errcode"] == 0
    assert r["invaliduser"] == "nosuchuser"  # lower-cased as WeCom does
    assert r["invalidparty"] == "987654" and r["invalidtag"] == "1"
    assert len(received(sim, a)) == 1
    assert send(sim, touser="ghost1|ghost2", **text())["errcode"] == 81013
    assert send(sim, touser="", toparty="", totag="", **text())["errcode"] == 82001


def test_recipient_list_limits(sim, sim_rules):
    ids = "|".join(f"u{i}" for i in range(1001))
    assert send(sim, touser=ids, **text())["errcode"] == 40032
    parties = "|".join(str(i) for i in range(101))
    assert send(sim, toparty=parties, **text())["errcode"] == 82002
    tags = "|".join(str(i) for i in range(101))
    assert send(sim, totag=tags, **text())["errcode"] == 82003
    a, b = employee(sim), employee(sim)
    sim_rules(app_msg_max_users=1)
    assert send(sim, touser=f"{a}|{b}", **text())["errcode"] == 40032


def test_toparty_and_all(sim):
    dept = sim.control("department/create", {"name": uid("通知部")})["department"]["id"]
    sub = sim.control("department/create", {"name": uid("通知组"), "parentid": dept})["department"]["id"]
    a, b = employee(sim, department=[dept]), employee(sim, department=[sub])
    r = send(sim, toparty=str(dept), **text("部门通知"))
    assert r["errcode"] == 0
    assert len(received(sim, a)) == 1 and len(received(sim, b)) == 1


def test_touser_all():
    # its own emulator: a message to everyone would land in other tests' inboxes
    own = SimProcess(customers=10, seed=5).start()
    try:
        gone = employee(own)
        own.control("employee/resign", {"userid": gone})
        r = send(own, touser="@all", toparty="987654", **text("全员通知"))
        assert r["errcode"] == 0 and "invalidparty" not in r  # toparty is ignored with @all
        listed = own.get("user/list", department_id=1, fetch_child=1)["userlist"]
        users = [u["userid"] for u in listed if u["status"] == 1]  # active members only
        got = {m["touser"] for m in own.control("app_messages", {"limit": 100000})["messages"]}
        assert got == set(users) and gone not in got
    finally:
        own.stop()


def test_per_member_rate_limit_drops_silently(sim, sim_rules):
    a = employee(sim)
    sim_rules(app_msg_per_member_min=2)
    for i in range(3):
        assert send(sim, touser=a, **text(f"第{i}条"))["errcode"] == 0
    assert [m["content"]["content"] for m in received(sim, a)] == ["第0条", "第1条"]
    everything = received(sim, a, include_dropped=True)
    assert [m["dropped"] for m in everything] == [False, False, True]


def test_hourly_limit(sim, sim_rules):
    a = employee(sim)
    sim_rules(app_msg_per_member_min=0, app_msg_per_member_hour=3)
    for i in range(5):
        assert send(sim, touser=a, **text(f"{i}"))["errcode"] == 0
    assert len(received(sim, a)) == 3


def test_default_rate_limit_30_per_minute(sim):
    a = employee(sim)
    for i in range(31):
        assert send(sim, touser=a, **text(f"{i}"))["errcode"] == 0
    assert len(received(sim, a)) == 30


def test_duplicate_check(sim):
    a = employee(sim)
    body = {"touser": a, **text("重复内容"), "enable_duplicate_check": 1, "duplicate_check_interval": 600}
    assert send(sim, **body)["errcode"] == 0
    assert send(sim, **body)["errcode"] == 0
    assert len(received(sim, a)) == 1


def test_message_types(sim):
    a = employee(sim)
    mid = upload_image(sim)
    ok = [
        {"msgtype": "markdown", "markdown": {"content": "**流失提醒**"}},
        {"msgtype": "textcard", "textcard": {"title": "客户流失", "description": "详情", "url": "https://e.com"}},
        {"msgtype": "news", "news": {"articles": [{"title": "t", "url": "https://e.com"}]}},
        {"msgtype": "image", "image": {"media_id": mid}},
        {
            "msgtype": "miniprogram_notice",
            "miniprogram_notice": {"appid": "wx1", "title": "通知", "content_item": [{"key": "k", "value": "v"}]},
        },
    ]
    for m in ok:
        assert send(sim, touser=a, **m)["errcode"] == 0, m
    assert [m["msgtype"] for m in received(sim, a)] == [m["msgtype"] for m in ok]
    bad = [
        ({"msgtype": "textcard", "textcard": {"title": "t", "url": "https://e.com"}}, 41033),
        ({"msgtype": "textcard", "textcard": {"description": "d", "url": "https://e.com"}}, 41016),
        ({"msgtype": "news", "news": {"articles": [{"title": "t"}] * 9}}, 45008),
        ({"msgtype": "news", "news": {"articles": []}}, 45008),
        ({"msgtype": "image", "image": {"media_id": "nope"}}, 40007),
        ({"msgtype": "file", "file": {}}, 41006),
        ({"msgtype": "file", "file": {"media_id": mid}}, 40007),  # an image is not a file
        ({"msgtype": "markdown", "markdown": {"content": "x" * 2049}}, 45002),
        ({"msgtype": "miniprogram_notice", "miniprogram_notice": {"title": "t"}}, 90200),
        (
            {
                "msgtype": "miniprogram_notice",
                "miniprogram_notice": {"appid": "wx1", "title": "t", "content_item": [{"key": "k", "value": "v"}] * 11},
            },
            90201,
        ),
    ]
    for m, code in bad:
        assert send(sim, touser=a, **m)["errcode"] == code, m


def test_recall(sim, sim_rules):
    a = employee(sim)
    msgid = send(sim, touser=a, **text("撤回我"))["msgid"]
    assert sim.call("message/recall", {"msgid": msgid})["errcode"] == 0
    assert received(sim, a)[0]["recalled"] is True
    assert sim.call("message/recall", {"msgid": "nope"})["errcode"] == 40058
    old = send(sim, touser=a, **text("太久了"))["msgid"]
    sim_rules(app_msg_recall_window_s=0)
    assert sim.call("message/recall", {"msgid": old})["errcode"] == 40058
