"""wechatpy's WeChatClient, used unchanged, against the emulator: customers, tags, contact ways,
welcome messages, group welcome templates and customer groups."""

from __future__ import annotations

import pytest
from wechatpy.exceptions import WeChatClientException

from tests.sim.helpers import customer_of, employee, upload_image
from tests.wechatpy_compat import wechatpy_client


@pytest.fixture(scope="module")
def client(sim):
    return wechatpy_client(sim)


def test_customers(sim, client):
    e = employee(sim)
    xs = [customer_of(sim, e) for _ in range(3)]
    assert e in client.external_contact.get_follow_user_list()["follow_user"]
    assert client.external_contact.list(e)["external_userid"] == xs
    info = client.external_contact.get(xs[0])
    assert info["external_contact"]["external_userid"] == xs[0] and info["follow_user"][0]["userid"] == e
    page = client.external_contact.batch_get_by_user(e, "", 2)  # sends the legacy single userid
    assert len(page["external_contact_list"]) == 2 and page["next_cursor"]
    rest = client.external_contact.batch_get_by_user(e, page["next_cursor"], 2)
    assert len(rest["external_contact_list"]) == 1 and rest["next_cursor"] == ""
    assert [r["external_contact"]["external_userid"] for r in client.external_contact.gen_all_by_user(e, 2)] == xs
    with pytest.raises(WeChatClientException) as err:
        client.external_contact.get("wmNoSuchCustomer0000000000000000")
    assert err.value.errcode == 40096


def test_tags(sim, client):
    e = employee(sim)
    x = customer_of(sim, e)
    grp = client.external_contact.add_corp_tag(None, "wechatpy标签组", 3, [{"name": "甲", "order": 1}, {"name": "乙"}])
    grp = grp["tag_group"]
    t1, t2 = grp["tag"][0]["id"], grp["tag"][1]["id"]
    listed = client.external_contact.get_corp_tag_list([t1])["tag_group"]
    assert listed[0]["group_id"] == grp["group_id"] and [t["id"] for t in listed[0]["tag"]] == [t1]
    client.external_contact.edit_corp_tag(t1, name="甲改", order=9)
    client.external_contact.mark_tag(e, x, add_tag=[t1, t2])
    client.external_contact.mark_tag(e, x, remove_tag=[t2])
    tags = client.external_contact.get(x)["follow_user"][0]["tags"]
    assert [(t["tag_id"], t["tag_name"]) for t in tags] == [(t1, "甲改")]
    client.external_contact.del_corp_tag(tag_id=[t2])
    client.external_contact.del_corp_tag(group_id=[grp["group_id"]])
    assert grp["group_id"] not in [g["group_id"] for g in client.external_contact.get_corp_tag_list()["tag_group"]]
    with pytest.raises(WeChatClientException) as err:
        client.external_contact.mark_tag(e, x, add_tag=[t1])
    assert err.value.errcode == 40068


def test_contact_ways_and_welcome(sim, client):
    e = employee(sim)
    r = client.external_contact.add_contact_way(1, 2, remark="wechatpy", skip_verify=False, state="wp", user=[e])
    cid = r["config_id"]
    assert r["qr_code"]
    cw = client.external_contact.get_contact_way(cid)["contact_way"]
    assert cw["state"] == "wp" and cw["user"] == [e] and cw["skip_verify"] is False
    client.external_contact.update_contact_way(cid, "新备注", state="wp2")
    cw = client.external_contact.get_contact_way(cid)["contact_way"]
    assert cw["remark"] == "新备注" and cw["state"] == "wp2" and cw["skip_verify"] is True  # wechatpy always sends it
    s = sim.control("scan", {"config_id": cid})
    img = upload_image(sim)
    client.external_contact.send_welcome_msg(
        {
            "welcome_code": s["welcome_code"],
            "text": {"content": "欢迎！"},
            "attachments": [{"msgtype": "image", "image": {"media_id": img}}],
        }
    )
    with pytest.raises(WeChatClientException) as err:
        client.external_contact.send_welcome_msg({"welcome_code": s["welcome_code"], "text": {"content": "再来"}})
    assert err.value.errcode == 41051
    client.external_contact.del_contact_way(cid)
    with pytest.raises(WeChatClientException) as err:
        client.external_contact.get_contact_way(cid)
    assert err.value.errcode == 41044


def test_group_welcome_templates(sim, client):
    tid = client.external_contact.add_group_welcome_template({"text": {"content": "欢迎入群"}})["template_id"]
    assert client.external_contact.get_group_welcome_template(tid)["text"] == {"content": "欢迎入群"}
    client.external_contact.update_group_welcome_template({"text": {"content": "欢迎新朋友"}}, tid)
    assert client.external_contact.get_group_welcome_template(tid)["text"] == {"content": "欢迎新朋友"}
    client.external_contact.del_group_welcome_template(tid)
    with pytest.raises(WeChatClientException):
        client.external_contact.get_group_welcome_template(tid)


def test_group_chats(sim, client):
    owner = employee(sim)
    cust = customer_of(sim, owner)
    chats = sorted(
        sim.control("group/create", {"owner": owner, "name": f"wechatpy群{i}", "members": [cust]})["chat_id"]
        for i in range(3)
    )
    r = client.external_contact.get_group_chat_list(2, owner_filter={"userid_list": [owner]})
    assert [g["chat_id"] for g in r["group_chat_list"]] == chats[:2] and r["next_cursor"]
    r2 = client.external_contact.get_group_chat_list(2, owner_filter={"userid_list": [owner]}, cursor=r["next_cursor"])
    assert [g["chat_id"] for g in r2["group_chat_list"]] == chats[2:]
    info = client.external_contact.get_group_chat_info(chats[0])["group_chat"]
    assert info["owner"] == owner and {m["userid"] for m in info["member_list"]} == {owner, cust}
    gc = client.external_contact_group_chat
    assert [g["chat_id"] for g in gc.list(owner_userid_list=[owner], limit=10)["group_chat_list"]] == chats
    assert [g["chat_id"] for g in gc.list_all(owner_userid_list=[owner], limit=1)] == chats
    one = gc.get(chats[1])["group_chat"]
    assert one["chat_id"] == chats[1] and one["name"].startswith("wechatpy群")
    with pytest.raises(WeChatClientException) as err:
        gc.get("wrNoSuchChat")
    assert err.value.errcode == 40050
