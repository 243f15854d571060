"""Welcome codes, send_welcome_msg (rules R16–R17), group welcome templates (R18), callbacks of adds.

The callback tests run a real HTTP receiver and decrypt what arrives with wechatpy's WeChatCrypto.
"""

from __future__ import annotations

import pytest

from tests.receiver import CallbackReceiver
from tests.sim.helpers import employee, outbox, upload_file, upload_image
from tests.simproc import SimProcess


def way(sim, userid, **kw):
    r = sim.call("externalcontact/add_contact_way", {"type": 1, "scene": 2, "user": [userid], **kw})
    assert r["errcode"] == 0, r
    return r["config_id"]


def send(sim, code, **body):
    return sim.call("externalcontact/send_welcome_msg", {"welcome_code": code, **body})["errcode"]


@pytest.fixture
def receiver(sim):
    rcv = CallbackReceiver(sim.corp_id)
    yield rcv
    rcv.close(sim)


# --- callbacks of adds ------------------------------------------------------------------------------


def test_scan_skip_verify_delivers_half_then_full_add(sim, receiver):
    receiver.configure(sim, verify=False)
    e = employee(sim)
    cid = way(sim, e, state="poster", skip_verify=True)
    s = sim.control("scan", {"config_id": cid})
    x, code = s["external_userid"], s["welcome_code"]
    assert code and s["state"] == "poster"

    def mine(ev):
        return ev.get("ExternalUserID") == x

    events = receiver.wait_for(mine, count=2)
    half, full = events[0], events[1]
    assert half["Event"] == "change_external_contact" and half["ChangeType"] == "add_half_external_contact"
    assert full["ChangeType"] == "add_external_contact"
    for ev in (half, full):
        assert ev["UserID"] == e and ev["State"] == "poster" and ev["WelcomeCode"] == code
        assert ev["ToUserName"] == sim.corp_id and ev["FromUserName"] == "sys" and ev["MsgType"] == "event"
        assert int(ev["CreateTime"]) > 0


def test_verified_callback_url_and_normal_add(sim, receiver):
    # the console saves the URL only after the GET check answers the decrypted echostr
    receiver.configure(sim, verify=True)
    assert receiver.verified >= 1
    e = employee(sim)
    cid = way(sim, e, skip_verify=False, state="counter")
    s = sim.control("scan", {"config_id": cid})
    [ev] = receiver.wait_for(lambda ev: ev.get("ExternalUserID") == s["external_userid"])
    assert ev["ChangeType"] == "add_external_contact" and ev["WelcomeCode"] == s["welcome_code"]
    assert ev["State"] == "counter"
    # a refused URL is an error, and the old target stays
    bad = sim.control(
        "config",
        {"callback_url": receiver.url + "?broken=1", "callback_token": "wrong-token", "verify": True},
        expect_ok=False,
    )
    assert bad["ok"] is False


def test_add_friend_event_has_no_state(sim):
    e = employee(sim)
    r = sim.control("add_friend", {"userid": e, "add_way": 2})
    [ev] = outbox(sim, UserID=e, ExternalUserID=r["external_userid"])
    assert ev["ChangeType"] == "add_external_contact" and "State" not in ev and ev["WelcomeCode"] == r["welcome_code"]


def test_console_welcome_means_no_code(sim):
    e = employee(sim, console_welcome=True)
    s = sim.control("scan", {"config_id": way(sim, e)})
    assert s["welcome_code"] is None
    evs = outbox(sim, UserID=e, ExternalUserID=s["external_userid"])
    assert [ev["ChangeType"] for ev in evs] == ["add_half_external_contact", "add_external_contact"]
    assert all("WelcomeCode" not in ev for ev in evs)


def test_chatted_before_readd_means_no_code(sim):
    e = employee(sim)
    cid = way(sim, e, skip_verify=False)
    s = sim.control("scan", {"config_id": cid})
    x = s["external_userid"]
    sim.control("chat", {"userid": e, "external_userid": x})
    assert send(sim, s["welcome_code"], text={"content": "hi"}) == 41051
    sim.control("delete", {"userid": e, "external_userid": x, "by": "customer"})
    again = sim.control("scan", {"config_id": cid, "external_userid": x})
    assert again["added"] is True and again["welcome_code"] is None


def test_employee_confirms_later(sim, sim_rules):
    sim_rules(employee_confirms_half_add_immediately=False)
    e = employee(sim)
    cid = way(sim, e, state="later")
    # 1) the welcome goes out on the half event: the full add carries no code
    s = sim.control("scan", {"config_id": cid})
    x = s["external_userid"]
    assert [ev["ChangeType"] for ev in outbox(sim, UserID=e, ExternalUserID=x)] == ["add_half_external_contact"]
    assert e in [f["userid"] for f in sim.get("externalcontact/get", external_userid=x)["follow_user"]]
    assert send(sim, s["welcome_code"], text={"content": "欢迎"}) == 0
    sim.control("confirm_add", {"userid": e, "external_userid": x})
    full = outbox(sim, UserID=e, ExternalUserID=x, ChangeType="add_external_contact")
    assert len(full) == 1 and "WelcomeCode" not in full[0] and full[0]["State"] == "later"
    assert sim.control("confirm_add", {"userid": e, "external_userid": x}, expect_ok=False)["ok"] is False
    # 2) no welcome yet: the full add carries the (still valid) code
    s2 = sim.control("scan", {"config_id": cid})
    c2 = sim.control("confirm_add", {"userid": e, "external_userid": s2["external_userid"]})
    assert c2["welcome_code"] == s2["welcome_code"]
    [full2] = outbox(sim, UserID=e, ExternalUserID=s2["external_userid"], ChangeType="add_external_contact")
    assert full2["WelcomeCode"] == s2["welcome_code"]
    # 3) the employee adds back after the code expired: the full add brings a fresh code
    s3 = sim.control("scan", {"config_id": cid})
    sim.advance(21)
    c3 = sim.control("confirm_add", {"userid": e, "external_userid": s3["external_userid"]})
    assert c3["welcome_code"] and c3["welcome_code"] != s3["welcome_code"]
    assert send(sim, s3["welcome_code"], text={"content": "late"}) == 41050
    assert send(sim, c3["welcome_code"], text={"content": "fresh"}) == 0


# --- send_welcome_msg ----------------------------------------------------------------------------


def test_welcome_code_single_use_and_20s_window(sim):
    e = employee(sim)
    cid = way(sim, e, skip_verify=False)
    s = sim.control("scan", {"config_id": cid})
    assert send(sim, s["welcome_code"], text={"content": "欢迎光临"}) == 0
    assert send(sim, s["welcome_code"], text={"content": "again"}) == 41051  # single use
    s2 = sim.control("scan", {"config_id": cid})
    # 17 s of the 20 s window: the emulator's clock runs on with real time, and a loaded machine
    # can spend a second or two between the scan and the send.
    sim.advance(17)
    assert send(sim, s2["welcome_code"], text={"content": "just in time"}) == 0
    s3 = sim.control("scan", {"config_id": cid})
    sim.advance(21)
    assert send(sim, s3["welcome_code"], text={"content": "too late"}) == 41050  # expired
    assert send(sim, "") == 41049
    assert sim.call("externalcontact/send_welcome_msg", {"text": {"content": "x"}})["errcode"] == 41049
    assert send(sim, "no-such-code", text={"content": "x"}) == 41050
    log = sim.control("welcome_log", {"userid": e})["welcome_codes"]
    by_code = {c["code"]: c for c in log}
    assert by_code[s["welcome_code"]]["used_at"] is not None
    assert by_code[s["welcome_code"]]["sent_payload"] == {"text": {"content": "欢迎光临"}}
    assert 17 <= by_code[s2["welcome_code"]]["latency_s"] <= 20
    assert by_code[s3["welcome_code"]]["used_at"] is None


def test_welcome_code_void_after_chat_or_readd(sim):
    e = employee(sim)
    cid = way(sim, e, skip_verify=False)
    s = sim.control("scan", {"config_id": cid})
    sim.control("chat", {"userid": e, "external_userid": s["external_userid"]})
    assert send(sim, s["welcome_code"], text={"content": "x"}) == 41051
    s2 = sim.control("scan", {"config_id": cid})
    x2 = s2["external_userid"]
    sim.control("delete", {"userid": e, "external_userid": x2, "by": "customer"})
    s3 = sim.control("scan", {"config_id": cid, "external_userid": x2})
    assert s3["welcome_code"] != s2["welcome_code"]
    assert send(sim, s2["welcome_code"], text={"content": "old add"}) == 41050  # superseded by the re-add
    assert send(sim, s3["welcome_code"], text={"content": "new add"}) == 0


def test_welcome_content_rules(sim, sim_rules):
    e = employee(sim)
    cid = way(sim, e, skip_verify=False)
    code = sim.control("scan", {"config_id": cid})["welcome_code"]
    img = upload_image(sim)
    f = upload_file(sim)
    link = {"msgtype": "link", "link": {"title": "新品", "url": "https://example.com/a", "desc": "d"}}
    assert send(sim, code, text={"content": "字" * 1334}) == 45002  # 4002 bytes > 4000
    assert send(sim, code, attachments=[link] * 10) == 40058
    assert send(sim, code, attachments=[{"msgtype": "image", "link": link["link"]}]) == 41065
    assert send(sim, code, attachments=[{"msgtype": "voice", "voice": {"media_id": img}}]) == 41065
    assert send(sim, code, attachments=[{"msgtype": "image", "image": {"media_id": "no-such-media"}}]) == 40007
    assert send(sim, code, attachments=[{"msgtype": "link", "link": {"title": "t"}}]) == 40058
    assert send(sim, code, attachments=[{"msgtype": "link", "link": {"title": "t" * 129, "url": "u"}}]) == 45002
    assert (
        send(
            sim,
            code,
            attachments=[{"msgtype": "miniprogram", "miniprogram": {"title": "t", "appid": "wx1", "page": "/p"}}],
        )
        == 40058
    )
    assert send(sim, code) == 40058
    assert send(sim, code, text={"content": ""}, attachments=[]) == 40058
    # errors did not use the code up; at the limits it goes through
    body_ok = {
        "text": {"content": "字" * 1333},
        "attachments": [link] * 7
        + [
            {"msgtype": "image", "image": {"media_id": img, "pic_url": "http://x/y"}},
            {"msgtype": "file", "file": {"media_id": f}},
        ],
    }
    assert send(sim, code, **body_ok) == 0
    sent = next(c for c in sim.control("welcome_log", {"userid": e})["welcome_codes"] if c["code"] == code)
    assert sent["sent_payload"]["attachments"][7] == {"msgtype": "image", "image": {"media_id": img}}  # media_id wins


def test_expired_media(sim, sim_rules):
    sim_rules(media_ttl_s=5)
    e = employee(sim)
    img = upload_image(sim)
    sim.advance(6)
    code = sim.control("scan", {"config_id": way(sim, e, skip_verify=False)})["welcome_code"]
    assert send(sim, code, attachments=[{"msgtype": "image", "image": {"media_id": img}}]) == 40007
    assert send(sim, code, attachments=[{"msgtype": "image", "image": {"media_id": upload_image(sim)}}]) == 0


# --- group welcome templates ---------------------------------------------------------------------


def test_group_welcome_template_crud(sim):
    img = upload_image(sim)
    r = sim.call(
        "externalcontact/group_welcome_template/add",
        {"text": {"content": "欢迎%NICKNAME%"}, "image": {"media_id": img}, "notify": 0},
    )
    assert r["errcode"] == 0 and r["template_id"]
    tid = r["template_id"]
    g = sim.call("externalcontact/group_welcome_template/get", {"template_id": tid})
    assert g["text"] == {"content": "欢迎%NICKNAME%"} and set(g["image"]) == {"pic_url"}  # images come back as pic_url
    assert (
        sim.call(
            "externalcontact/group_welcome_template/edit",
            {"template_id": tid, "link": {"title": "活动", "url": "https://example.com"}},
        )["errcode"]
        == 0
    )
    g = sim.call("externalcontact/group_welcome_template/get", {"template_id": tid})
    assert g["text"] == {"content": "欢迎%NICKNAME%"} and "image" not in g and g["link"]["title"] == "活动"
    assert sim.call("externalcontact/group_welcome_template/del", {"template_id": tid})["errcode"] == 0
    assert sim.call("externalcontact/group_welcome_template/get", {"template_id": tid})["errcode"] == 40058
    assert sim.call("externalcontact/group_welcome_template/add", {})["errcode"] == 40058
    assert (
        sim.call("externalcontact/group_welcome_template/add", {"text": {"content": "字" * 1001}})["errcode"] == 45002
    )
    assert sim.call("externalcontact/group_welcome_template/add", {"file": {"media_id": "nope"}})["errcode"] == 40007
    # several attachments: one is kept (image > link > miniprogram > file > video)
    both = sim.call(
        "externalcontact/group_welcome_template/add",
        {"link": {"title": "l", "url": "https://e.com"}, "file": {"media_id": upload_file(sim)}},
    )
    g = sim.call("externalcontact/group_welcome_template/get", {"template_id": both["template_id"]})
    assert "link" in g and "file" not in g
    sim.call("externalcontact/group_welcome_template/del", {"template_id": both["template_id"]})


def test_group_welcome_template_cap(sim, sim_rules):
    have = sim.control("part1/counts")["group_welcome_templates"]
    sim_rules(group_welcome_template_cap=have + 1)
    r = sim.call("externalcontact/group_welcome_template/add", {"text": {"content": "一"}})
    assert r["errcode"] == 0
    assert sim.call("externalcontact/group_welcome_template/add", {"text": {"content": "二"}})["errcode"] == 41055
    sim.call("externalcontact/group_welcome_template/del", {"template_id": r["template_id"]})
    assert sim.control("part1/counts")["group_welcome_templates"] == have


def test_group_welcome_template_other_app_41058(sim):
    r = sim.call("externalcontact/group_welcome_template/add", {"text": {"content": "本应用的素材"}})
    tid = r["template_id"]
    # Another app: a second emulator process on the same database accepting another secret issues
    # a token for it; the calls then go to the main emulator with that token.
    other = SimProcess(
        customers=300,
        seed=7,
        env={
            "SIM_DATABASE_URL": f"sqlite:///{sim.workdir / 'sim.sqlite3'}",
            "SIM_SECRET": "siyu-sim-other-app-secret-000000000000000",
        },
    )
    other.secret = "siyu-sim-other-app-secret-000000000000000"
    other.start()
    try:
        token = other.token()
    finally:
        other.stop()
    url = f"{sim.base_url}/cgi-bin/externalcontact/group_welcome_template/"
    edit = sim.http.post(
        url + "edit", params={"access_token": token}, json={"template_id": tid, "text": {"content": "改"}}
    ).json()
    assert edit["errcode"] == 41058
    assert (
        sim.http.post(url + "del", params={"access_token": token}, json={"template_id": tid}).json()["errcode"] == 41058
    )
    got = sim.http.post(url + "get", params={"access_token": token}, json={"template_id": tid}).json()
    assert got["errcode"] == 0 and got["text"] == {"content": "本应用的素材"}  # reading is allowed
    assert sim.call("externalcontact/group_welcome_template/del", {"template_id": tid})["errcode"] == 0


# --- the customers' side in a process of its own (siyu sim --world) -------------------------------


def test_a_world_process_scans_into_the_same_corp_and_serves_nothing_else(sim, receiver):
    """``siyu sim --world`` over the emulator's database: its scans (committed a few per
    transaction) are the main process's adds — listed by the API, delivered as callbacks by the
    main process, welcome codes usable there — while it answers no WeCom API and no other action."""
    receiver.configure(sim, verify=False)
    e = employee(sim)
    cid = way(sim, e, state="world", skip_verify=False)
    world = sim.world()
    try:
        out = world.control("scan_many", {"config_id": cid, "n": 7, "per_tx": 3})
        assert len(out["scans"]) == 7 and out["per_user"] == {e: 7}
        assert (
            world.http.get(
                f"{world.base_url}/cgi-bin/gettoken", params={"corpid": sim.corp_id, "corpsecret": sim.secret}
            ).status_code
            == 404
        )
        refused = world.control("time/advance", {"seconds": 60}, expect_ok=False)
        assert not refused["ok"] and "main emulator process" in refused["error"]
    finally:
        world.stop()
    listed = sim.get("externalcontact/list", userid=e)
    assert sorted(listed["external_userid"]) == sorted(s["external_userid"] for s in out["scans"])
    assert send(sim, out["scans"][0]["welcome_code"], text={"content": "你好"}) == 0
    # delivered by the main process (its delivery polls the outbox: the world's commits do not wake it)
    events = receiver.wait_for(
        lambda x: x.get("ChangeType") == "add_external_contact" and x.get("UserID") == e, count=7
    )
    assert {x["WelcomeCode"] for x in events} == {s["welcome_code"] for s in out["scans"]}
