"""Customer and group transfers (在职继承 / 离职继承, part 2 §3, R10–R14)."""

from __future__ import annotations

import pytest

from tests.receiver import receiving
from tests.sim.helpers import (
    customer_of,
    customers_of,
    employee,
    new_tags,
    own_sim,
    resign,
    tag,
)

DAY = 86400


sim = own_sim(customers=50, seed=41)  # these tests advance the clock by days


@pytest.fixture(scope="module")
def rx(sim):
    """The app's callback URL: every callback of this module's emulator, decrypted."""
    with receiving(sim) as receiver:
        yield receiver


def start(sim, handover, takeover, ids, resigned=False, **extra) -> dict:
    path = "externalcontact/resigned/transfer_customer" if resigned else "externalcontact/transfer_customer"
    return sim.call(path, {"handover_userid": handover, "takeover_userid": takeover, "external_userid": ids, **extra})


def codes(r: dict) -> dict:
    assert r["errcode"] == 0, r
    return {c["external_userid"]: c["errcode"] for c in r["customer"]}


def result(sim, handover, takeover, resigned=False, **extra) -> dict:
    path = "externalcontact/resigned/transfer_result" if resigned else "externalcontact/transfer_result"
    r = sim.call(path, {"handover_userid": handover, "takeover_userid": takeover, **extra})
    assert r["errcode"] == 0, r
    return {c["external_userid"]: c for c in r["customer"]}


def followers(sim, external_userid) -> dict:
    r = sim.get("externalcontact/get", external_userid=external_userid)
    assert r["errcode"] == 0, r
    return {f["userid"]: f for f in r["follow_user"]}


def events_for(rx, external_userid, change_type=None) -> list[dict]:
    return rx.matching(
        lambda e: (
            e.get("ExternalUserID") == external_userid and (change_type is None or e.get("ChangeType") == change_type)
        )
    )


# --- starting transfers (R10, R11) ------------------------------------------------------------------
def test_per_customer_errcodes(sim, sim_rules):
    a, b, other = employee(sim), employee(sim), employee(sim)
    c1, c2 = customers_of(sim, a, 2)
    theirs = customer_of(sim, other)
    got = codes(start(sim, a, b, [c1, "wmNoSuchCustomer", theirs, c1]))
    assert got[c1] == 40129  # the second c1: already in transfer
    r = start(sim, a, b, [c1, "wmNoSuchCustomer", theirs])
    assert [x["errcode"] for x in r["customer"]] == [40129, 40096, 40131]
    assert codes(start(sim, a, a, [c2])) == {c2: 40130}
    sim_rules(transfer_max_per_call=1)
    assert start(sim, a, b, [c2, theirs])["errcode"] == 40058


def test_call_level_errors(sim):
    a, b = employee(sim), employee(sim)
    c = customer_of(sim, a)
    assert start(sim, a, b, [])["errcode"] == 41035
    assert start(sim, a, "ghost", [c])["errcode"] == 40003
    assert start(sim, "ghost", b, [c])["errcode"] == 40003
    assert start(sim, a, b, [c], transfer_success_msg="好" * 201)["errcode"] == 40058
    assert codes(start(sim, a, b, [c], transfer_success_msg="好" * 200)) == {c: 0}
    ids = [f"wmFake{i}" for i in range(101)]
    assert start(sim, a, b, ids)["errcode"] == 40058  # default: at most 100 per call


def test_waiting_then_taken_over_after_24h(sim, rx):
    a, b = employee(sim), employee(sim)
    c1, c2 = customers_of(sim, a, 2)
    (t_tag,) = new_tags(sim, "转接标签")
    tag(sim, a, c1, t_tag)
    sim.control("customer/edit", {"userid": a, "external_userid": c1, "remark": "老客户", "description": "爱黄金"})
    now = sim.control("status")["now"]
    assert codes(start(sim, a, b, [c1, c2], transfer_success_msg="您好，后续由同事服务")) == {c1: 0, c2: 0}
    res = result(sim, a, b)
    assert res[c1]["status"] == 2 and now + DAY - 2 <= res[c1]["takeover_time"] <= now + DAY + 2
    sim.advance(DAY - 120)
    assert result(sim, a, b)[c1]["status"] == 2  # not yet
    sim.advance(240)
    res = result(sim, a, b)
    assert res[c1]["status"] == 1 and res[c2]["status"] == 1
    f = followers(sim, c1)
    assert b in f and a not in f
    assert f[b]["remark"] == "老客户" and f[b]["description"] == "爱黄金"
    assert t_tag in [t.get("tag_id") for t in f[b]["tags"]]
    rx.wait_for(
        lambda e: (
            e.get("ChangeType") == "add_external_contact" and e.get("ExternalUserID") == c1 and e.get("UserID") == b
        )
    )
    dele = rx.wait_for(lambda e: e.get("ChangeType") == "del_external_contact" and e.get("ExternalUserID") == c1)[0]
    assert dele["UserID"] == a and dele["Source"] == "DELETE_BY_TRANSFER"


def test_refuse_within_24h(sim, rx):
    a, b = employee(sim), employee(sim)
    c = customer_of(sim, a)
    codes(start(sim, a, b, [c]))
    out = sim.control("transfer/refuse", {"external_userid": c})
    assert out["status"] == 3
    ev = rx.wait_for(lambda e: e.get("ChangeType") == "transfer_fail" and e.get("ExternalUserID") == c)[0]
    assert ev["FailReason"] == "customer_refused" and ev["UserID"] == b and ev["Event"] == "change_external_contact"
    assert result(sim, a, b)[c] == {"external_userid": c, "status": 3, "takeover_time": 0}
    sim.advance(DAY + 60)
    assert result(sim, a, b)[c]["status"] == 3
    assert set(followers(sim, c)) == {a}  # stays with the handover
    assert sim.control("transfer/refuse", {"external_userid": c}, expect_ok=False)["ok"] is False


def test_customer_leaving_during_the_24h_fails_the_transfer(sim, rx):
    a, b = employee(sim), employee(sim)
    c = customer_of(sim, a)
    codes(start(sim, a, b, [c]))
    sim.control("delete", {"userid": a, "external_userid": c, "by": "customer"})
    sim.advance(DAY + 60)
    assert result(sim, a, b)[c]["status"] == 3
    ev = rx.wait_for(lambda e: e.get("ChangeType") == "transfer_fail" and e.get("ExternalUserID") == c)[0]
    assert ev["FailReason"] == "customer_refused"
    assert b not in followers(sim, c)


def test_takeover_at_capacity_is_status_4(sim, rx):
    a = employee(sim)
    full = employee(sim, customer_cap=1)
    customer_of(sim, full)
    c = customer_of(sim, a)
    assert codes(start(sim, a, full, [c])) == {c: 0}  # capacity is not checked at call time
    sim.advance(DAY + 60)
    assert result(sim, a, full)[c] == {"external_userid": c, "status": 4, "takeover_time": 0}
    ev = rx.wait_for(lambda e: e.get("ChangeType") == "transfer_fail" and e.get("ExternalUserID") == c)[0]
    assert ev["FailReason"] == "customer_limit_exceed" and ev["UserID"] == full
    assert set(followers(sim, c)) == {a}


def test_already_friends_and_returning_customers_fire_no_add(sim, rx):
    a, b = employee(sim), employee(sim)
    shared = customer_of(sim, a)
    customer_of(sim, b, external_userid=shared)
    back = customer_of(sim, a)
    codes(start(sim, a, b, [shared, back]))
    sim.advance(DAY + 60)
    assert result(sim, a, b)[shared]["status"] == 1
    rx.wait_for(lambda e: e.get("ChangeType") == "add_external_contact" and e.get("ExternalUserID") == back)
    rx.wait_for(lambda e: e.get("ChangeType") == "del_external_contact" and e.get("ExternalUserID") == shared)
    adds = [e for e in events_for(rx, shared, "add_external_contact") if e["UserID"] == b]
    assert len(adds) == 1  # only the original add by b; the transfer fired none
    # `back` returns to a, who transferred it away: no add_external_contact for a
    codes(start(sim, b, a, [back]))
    sim.advance(DAY + 60)
    assert result(sim, b, a)[back]["status"] == 1
    rx.wait_for(
        lambda e: (
            e.get("ChangeType") == "del_external_contact" and e.get("ExternalUserID") == back and e.get("UserID") == b
        )
    )
    adds_for_a = [e for e in events_for(rx, back, "add_external_contact") if e["UserID"] == a]
    assert len(adds_for_a) == 1  # the very first add only
    assert set(followers(sim, back)) == {a}


def test_at_most_two_onjob_transfers_in_90_days(sim):
    a, b = employee(sim), employee(sim)
    c = customer_of(sim, a)
    refused = customer_of(sim, a)
    codes(start(sim, a, b, [c]))
    sim.advance(DAY + 60)
    codes(start(sim, b, a, [c]))
    sim.advance(DAY + 60)
    assert codes(start(sim, a, b, [c])) == {c: 40128}
    # refused transfers do not count
    for _ in range(2):
        codes(start(sim, a, b, [refused]))
        sim.control("transfer/refuse", {"external_userid": refused})
    assert codes(start(sim, a, b, [refused])) == {refused: 0}
    sim.advance(90 * DAY)
    assert codes(start(sim, a, b, [c])) == {c: 0}


def test_transfer_limit_is_a_rule(sim, sim_rules):
    sim_rules(onjob_transfers_per_90d=1)
    a, b = employee(sim), employee(sim)
    c = customer_of(sim, a)
    codes(start(sim, a, b, [c]))
    sim.advance(DAY + 60)
    assert codes(start(sim, b, a, [c])) == {c: 40128}


def test_result_paging_and_errors(sim, sim_rules):
    a, b = employee(sim), employee(sim)
    cs = customers_of(sim, a, 3)
    codes(start(sim, a, b, cs))
    sim_rules(transfer_result_page_size=2)
    r = sim.call("externalcontact/transfer_result", {"handover_userid": a, "takeover_userid": b})
    assert len(r["customer"]) == 2 and r["next_cursor"]
    r2 = sim.call(
        "externalcontact/transfer_result", {"handover_userid": a, "takeover_userid": b, "cursor": r["next_cursor"]}
    )
    assert [x["external_userid"] for x in r["customer"] + r2["customer"]] == cs and r2["next_cursor"] == ""
    assert sim.call("externalcontact/transfer_result", {"handover_userid": a})["errcode"] == 41009


# --- resigned members (R12) ------------------------------------------------------------------------
def test_resigned_flow(sim, rx, sim_rules):
    gone, b, active = employee(sim), employee(sim), employee(sim)
    cs = customers_of(sim, gone, 3)
    mine = customer_of(sim, active)
    assert codes(start(sim, active, b, [mine], resigned=True)) == {mine: 40097}
    info = resign(sim, gone)
    assert start(sim, gone, b, cs)["errcode"] == 40003  # the on-job API refuses a departed handover
    r = sim.call("externalcontact/get_unassigned_list", {"page_size": 1000})
    listed = [x for x in r["info"] if x["handover_userid"] == gone]
    assert [x["external_userid"] for x in listed] == cs
    assert all(x["dimission_time"] == info["dimission_time"] for x in listed)
    assert r["is_last"] is True and r["next_cursor"] == ""
    # paging by cursor
    seen, cursor = [], ""
    while True:
        page = sim.call("externalcontact/get_unassigned_list", {"page_size": 2, "cursor": cursor})
        assert len(page["info"]) <= 2
        seen += [(x["handover_userid"], x["external_userid"]) for x in page["info"]]
        if page["is_last"]:
            assert page["next_cursor"] == ""
            break
        cursor = page["next_cursor"]
    assert [x for x in seen if x[0] == gone] == [(gone, c) for c in cs]
    # start the resigned transfer: the customers leave the unassigned list
    assert codes(start(sim, gone, b, cs[:2], resigned=True)) == {cs[0]: 0, cs[1]: 0}
    left = [
        x["external_userid"]
        for x in sim.call("externalcontact/get_unassigned_list", {})["info"]
        if x["handover_userid"] == gone
    ]
    assert left == cs[2:]
    res = result(sim, gone, b, resigned=True)
    assert {c: res[c]["status"] for c in cs[:2]} == {cs[0]: 2, cs[1]: 2}
    sim.advance(DAY + 60)
    res = result(sim, gone, b, resigned=True)
    assert res[cs[0]]["status"] == 1
    rx.wait_for(
        lambda e: (
            e.get("ChangeType") == "add_external_contact" and e.get("ExternalUserID") == cs[0] and e.get("UserID") == b
        )
    )
    # no DELETE_BY_TRANSFER for a departed member's relations
    assert not events_for(rx, cs[0], "del_external_contact")
    assert result(sim, gone, b) == {}  # on-job results are separate
    sim_rules(resigned_max_age_days=1)
    sim.advance(2 * DAY)
    assert codes(start(sim, gone, b, cs[2:], resigned=True)) == {cs[2]: 40131}
    assert all(x["handover_userid"] != gone for x in sim.call("externalcontact/get_unassigned_list", {})["info"])


def test_unassigned_list_legacy_paging(sim, sim_rules):
    gone = employee(sim)
    customers_of(sim, gone, 2)
    resign(sim, gone)
    sim_rules(unassigned_max_page_size=1)
    r = sim.call("externalcontact/get_unassigned_list", {"page_size": 1000})  # clamped to the max
    assert len(r["info"]) == 1 and r["is_last"] is False
    sim.reset_rules()
    assert sim.call("externalcontact/get_unassigned_list", {"page_id": 50, "page_size": 1000})["errcode"] == 40058
    assert sim.call("externalcontact/get_unassigned_list", {"page_id": 0, "page_size": 1000})["errcode"] == 0
    assert sim.call("externalcontact/get_unassigned_list", {"cursor": "%%%"})["errcode"] == 50100


# --- legacy transfer ---------------------------------------------------------------------------------
def test_legacy_transfer_is_immediate(sim, rx):
    a, b = employee(sim), employee(sim)
    c, stranger = customer_of(sim, a), customer_of(sim, employee(sim))
    body = {"handover_userid": a, "takeover_userid": b}
    assert sim.call("externalcontact/transfer", {**body, "external_userid": stranger})["errcode"] == 40131
    assert sim.call("externalcontact/transfer", {**body, "external_userid": "wmNope"})["errcode"] == 40096
    assert sim.call("externalcontact/transfer", body)["errcode"] == 41035
    assert sim.call("externalcontact/transfer", {**body, "external_userid": c})["errcode"] == 0
    assert set(followers(sim, c)) == {b}
    assert result(sim, a, b)[c]["status"] == 1
    rx.wait_for(lambda e: e.get("ChangeType") == "del_external_contact" and e.get("ExternalUserID") == c)
    full = employee(sim, customer_cap=0)
    c2 = customer_of(sim, a)
    r = sim.call("externalcontact/transfer", {"handover_userid": a, "takeover_userid": full, "external_userid": c2})
    assert r["errcode"] == 40099


# --- group transfers (R13) -----------------------------------------------------------------------------
def group(sim, owner, members=()) -> str:
    return sim.control("group/create", {"owner": owner, "name": "继承群", "members": list(members)})["chat_id"]


def failed(r: dict) -> dict:
    assert r["errcode"] == 0, r
    return {f["chat_id"]: f["errcode"] for f in r["failed_chat_list"]}


def test_resigned_group_transfer(sim, rx, sim_rules):
    owner, new, active = employee(sim), employee(sim), employee(sim)
    c = customer_of(sim, owner)
    g1, g2 = group(sim, owner, [c]), group(sim, owner)
    g_active = group(sim, active)
    g_gone = group(sim, owner)
    sim.control("group/dismiss", {"chat_id": g_gone})
    resign(sim, owner)
    assert sim.call("externalcontact/groupchat/get", {"chat_id": g1})["group_chat"]["owner"] == owner
    r = sim.call(
        "externalcontact/groupchat/transfer", {"chat_id_list": [g1, g_active, g_gone, "wrNoSuchChat"], "new_owner": new}
    )
    assert failed(r) == {g_active: 90500, g_gone: 49008, "wrNoSuchChat": 90501}
    assert all(f["errmsg"] for f in r["failed_chat_list"])
    chat = sim.call("externalcontact/groupchat/get", {"chat_id": g1})["group_chat"]
    assert chat["owner"] == new
    assert new in [m["userid"] for m in chat["member_list"]]
    lst = sim.call(
        "externalcontact/groupchat/list", {"status_filter": 3, "owner_filter": {"userid_list": [new]}, "limit": 100}
    )
    assert g1 in [x["chat_id"] for x in lst["group_chat_list"]]
    ev = rx.wait_for(lambda e: e.get("ChatId") == g1 and e.get("UpdateDetail") == "change_owner")[0]
    assert ev["Event"] == "change_external_chat" and ev["ChangeType"] == "update"
    # call-level rules
    assert sim.call("externalcontact/groupchat/transfer", {"chat_id_list": [], "new_owner": new})["errcode"] == 40058
    assert sim.call("externalcontact/groupchat/transfer", {"chat_id_list": [g2]})["errcode"] == 40058
    assert (
        sim.call("externalcontact/groupchat/transfer", {"chat_id_list": [g2], "new_owner": owner})["errcode"] == 40003
    )
    ids = [f"wr{i}" for i in range(101)]
    assert sim.call("externalcontact/groupchat/transfer", {"chat_id_list": ids, "new_owner": new})["errcode"] == 40058
    sim_rules(group_transfer_max_per_call=1)
    assert (
        sim.call("externalcontact/groupchat/transfer", {"chat_id_list": [g2, g1], "new_owner": new})["errcode"] == 40058
    )


def test_onjob_group_transfer_rules(sim, rx, sim_rules):
    a, b, c = employee(sim), employee(sim), employee(sim)
    g = group(sim, a)
    gone_owner = employee(sim)
    g_gone = group(sim, gone_owner)
    resign(sim, gone_owner)
    r = sim.call("externalcontact/groupchat/onjob_transfer", {"chat_id_list": [g, g_gone], "new_owner": a})
    assert failed(r) == {g: 90504, g_gone: 90502}
    assert failed(sim.call("externalcontact/groupchat/onjob_transfer", {"chat_id_list": [g], "new_owner": b})) == {}
    rx.wait_for(lambda e: e.get("ChatId") == g and e.get("UpdateDetail") == "change_owner")
    assert failed(sim.call("externalcontact/groupchat/onjob_transfer", {"chat_id_list": [g], "new_owner": c})) == {}
    # a third time within 90 days
    assert failed(sim.call("externalcontact/groupchat/onjob_transfer", {"chat_id_list": [g], "new_owner": a})) == {
        g: 40128
    }
    sim.advance(91 * DAY)
    assert failed(sim.call("externalcontact/groupchat/onjob_transfer", {"chat_id_list": [g], "new_owner": a})) == {}


def test_group_transfer_daily_cap(sim, sim_rules):
    a, b = employee(sim), employee(sim)
    g1, g2, g3 = group(sim, a), group(sim, a), group(sim, a)
    sim_rules(group_transfer_daily_cap=2)
    r = sim.call("externalcontact/groupchat/onjob_transfer", {"chat_id_list": [g1, g2, g3], "new_owner": b})
    assert failed(r) == {g3: 45009}
    sim.advance(DAY)
    assert failed(sim.call("externalcontact/groupchat/onjob_transfer", {"chat_id_list": [g3], "new_owner": b})) == {}
