"""wechatpy's WeChatClient, used unchanged, against the emulator: mass messages, transfers,
statistics, media and app messages (part 2)."""

from __future__ import annotations

import io
import time

import pytest
from wechatpy.exceptions import WeChatClientException

from tests.sim.helpers import (
    customer_of,
    customers_of,
    employee,
    own_sim,
    png_bytes,
    resign,
)
from tests.wechatpy_compat import wechatpy_client

AGENT = 1000002


sim = own_sim(customers=30, seed=51)  # these tests resign employees and move customers


@pytest.fixture(scope="module")
def client(sim):
    return wechatpy_client(sim)


def test_add_msg_template_and_group_msg_result(sim, client):
    e = employee(sim)
    cs = customers_of(sim, e, 2)
    r = client.external_contact.add_msg_template(
        {
            "chat_type": "single",
            "external_userid": [*cs, "wmNotACustomer"],
            "sender": e,
            "text": {"content": "文本消息内容"},
            "attachments": [{"msgtype": "link", "link": {"title": "消息标题", "url": "https://example.link.com/path"}}],
        }
    )
    assert r["fail_list"] == ["wmNotACustomer"] and r["msgid"]
    res = client.external_contact.get_group_msg_result(r["msgid"])
    assert res["check_status"] == 1
    assert [(d["external_userid"], d["status"]) for d in res["detail_list"]] == [(c, 0) for c in cs]
    sim.control("mass/confirm", {"msgid": r["msgid"], "userid": e})
    res = client.external_contact.get_group_msg_result(r["msgid"])
    assert all(d["status"] == 1 and d["send_time"] for d in res["detail_list"])


def test_add_msg_template_docstring_shape(sim, client):
    """The template of wechatpy's docstring (pre-attachments fields at the top level)."""
    e = employee(sim)
    c = customer_of(sim, e)
    r = client.external_contact.add_msg_template(
        {
            "chat_type": "single",
            "external_userid": [c],
            "sender": e,
            "text": {"content": "文本消息内容"},
            "image": {"pic_url": "http://p.qpic.cn/pic_wework/3474110808/7a6344sdadfwehe42060/0"},
            "link": {
                "title": "消息标题",
                "picurl": "https://example.pic.com/path",
                "desc": "消息描述",
                "url": "https://example.link.com/path",
            },
        }
    )
    assert r["fail_list"] == []
    lst = sim.call(
        "externalcontact/get_groupmsg_list_v2",
        {
            "chat_type": "single",
            "start_time": sim.control("status")["now"] - 60,
            "end_time": sim.control("status")["now"] + 60,
        },
    )
    m = next(x for x in lst["group_msg_list"] if x["msgid"] == r["msgid"])
    assert [a["msgtype"] for a in m["attachments"]] == ["image", "link"]


def test_add_msg_template_errors_raise(sim, client):
    with pytest.raises(WeChatClientException) as exc:
        client.external_contact.add_msg_template({"chat_type": "single", "sender": employee(sim)})
    assert exc.value.errcode == 44004
    with pytest.raises(WeChatClientException) as exc:
        client.external_contact.add_msg_template({"external_userid": ["wmNobody"], "text": {"content": "x"}})
    assert exc.value.errcode == 41048


def test_get_unassigned_list_and_legacy_transfer(sim, client):
    gone, b = employee(sim), employee(sim)
    cs = customers_of(sim, gone, 2)
    resign(sim, gone)
    r = client.external_contact.get_unassigned_list()
    mine = [x for x in r["info"] if x["handover_userid"] == gone]
    assert [x["external_userid"] for x in mine] == cs and all(x["dimission_time"] for x in mine)
    assert r["is_last"] is True
    page = client.external_contact.get_unassigned_list(page_id=0, page_size=1)
    assert len(page["info"]) == 1 and page["is_last"] is False and page["next_cursor"]
    nxt = client.external_contact.get_unassigned_list(page_size=1, cursor=page["next_cursor"])
    assert nxt["info"] != page["info"]
    assert client.external_contact.transfer(cs[0], gone, b) == {"errcode": 0, "errmsg": "ok"}
    got = sim.get("externalcontact/get", external_userid=cs[0])
    assert [f["userid"] for f in got["follow_user"]] == [b]
    after = client.external_contact.get_unassigned_list()
    assert [x["external_userid"] for x in after["info"] if x["handover_userid"] == gone] == cs[1:]
    with pytest.raises(WeChatClientException) as exc:
        client.external_contact.transfer(cs[0], gone, b)  # no longer the departed member's customer
    assert exc.value.errcode == 40131


def test_onjob_legacy_transfer_with_message(sim, client):
    a, b = employee(sim), employee(sim)
    c = customer_of(sim, a)
    client.external_contact.transfer(c, a, b, transfer_success_msg="您好，后续由同事为您服务")
    assert [f["userid"] for f in sim.get("externalcontact/get", external_userid=c)["follow_user"]] == [b]


def test_get_user_behavior_data(sim, client):
    e = employee(sim)
    customers_of(sim, e, 2)
    now = sim.control("status")["now"]
    r = client.external_contact.get_user_behavior_data([e], now - 3 * 86400, now)
    assert len(r["behavior_data"]) == 4
    assert r["behavior_data"][-1]["new_contact_cnt"] == 2
    with pytest.raises(WeChatClientException) as exc:
        client.external_contact.get_user_behavior_data([e], now - 40 * 86400, now)
    assert exc.value.errcode == 40058


def test_group_chat_statistic(sim, client):
    e = employee(sim)
    cs = customers_of(sim, e, 2)
    sim.control("group/create", {"owner": e, "name": "wechatpy群", "members": cs})
    now = sim.control("status")["now"]
    r = client.external_contact_group_chat.statistic(now, owner_userid_list=[e])
    assert r["total"] == 1 and r["items"][0]["owner"] == e
    assert r["items"][0]["data"]["new_chat_cnt"] == 1 and r["items"][0]["data"]["member_total"] == 3


def test_media_upload_download_and_upload_img(sim, client, monkeypatch):
    data = png_bytes(200)
    f = io.BytesIO(data)
    f.name = "商品.png"
    r = client.media.upload("image", f)
    assert r["type"] == "image" and r["media_id"]
    # media.download calls requests.get on the hard-coded real host: route it through the client's
    # session (whose adapter rewrites that host to the emulator).
    import wechatpy.work.client.api.media as media_api

    monkeypatch.setattr(media_api.requests, "get", client._http.get)
    resp = client.media.download(r["media_id"])
    assert resp.status_code == 200 and resp.content == data
    img = io.BytesIO(png_bytes())
    img.name = "logo.png"
    assert client.media.upload_img(img)["url"].startswith("https://p.qpic.cn/")
    bad = io.BytesIO(b"12345")
    bad.name = "tiny.txt"
    with pytest.raises(WeChatClientException) as exc:
        client.media.upload("file", bad)
    assert exc.value.errcode == 40006


def test_message_send(sim, client):
    a, b = employee(sim), employee(sim)
    r = client.message.send_text(AGENT, [a, b, "Ghost"], "您的客户张三已删除您")
    assert r["invaliduser"] == "ghost" and r["msgid"]
    client.message.send_markdown(AGENT, a, "**客户流失** 请跟进")
    client.message.send_text_card(AGENT, a, "客户流失", "张三删除了你", "https://example.com/c/1", btntxt="查看")
    got = sim.control("app_messages", {"touser": a})["messages"]
    assert [m["msgtype"] for m in got] == ["text", "markdown", "textcard"]
    assert got[2]["content"]["btntxt"] == "查看"
    with pytest.raises(WeChatClientException) as exc:
        client.message.send_text(1, a, "x")
    assert exc.value.errcode == 40056
    with pytest.raises(WeChatClientException) as exc:
        client.message.send_text(AGENT, ["nobody1", "nobody2"], "x")
    assert exc.value.errcode == 81013


def test_token_refresh_after_revocation(sim, client):
    e = employee(sim)
    sim.control("tokens/revoke")
    time.sleep(0.01)
    r = client.message.send_text(AGENT, e, "重新取令牌")  # 40014 → wechatpy fetches a new token, retries
    assert r["errcode"] == 0
