"""Corp tags: get/add/edit/del_corp_tag and mark_tag (rules R8–R10), tag callbacks, admin console."""

from __future__ import annotations

import itertools

from tests.sim.helpers import customer_of, employee, outbox

_n = itertools.count(1)


def uniq(prefix: str = "组") -> str:
    return f"p1{prefix}{next(_n)}"


def add(sim, group_name=None, names=(), **kw):
    body = {"tag": [{"name": n} for n in names], **kw}
    if group_name is not None:
        body["group_name"] = group_name
    return sim.call("externalcontact/add_corp_tag", body)


def tag_count(sim) -> int:
    return sim.control("part1/counts")["corp_tags"]


def test_add_and_list(sim):
    g = uniq()
    r = add(sim, g, ["金卡", "银卡"], order=7)
    assert r["errcode"] == 0
    grp = r["tag_group"]
    assert grp["group_name"] == g and grp["order"] == 7 and grp["group_id"].startswith("et")
    assert [t["name"] for t in grp["tag"]] == ["金卡", "银卡"] and all(t["id"].startswith("et") for t in grp["tag"])
    everything = sim.call("externalcontact/get_corp_tag_list", {})["tag_group"]
    mine = [x for x in everything if x["group_id"] == grp["group_id"]]
    assert len(mine) == 1 and {t["name"] for t in mine[0]["tag"]} == {"金卡", "银卡"}
    # larger order sorts first
    orders = [x["order"] for x in everything]
    assert orders == sorted(orders, reverse=True)
    # by group_id; tag_id ignored when group_id is given
    by_group = sim.call(
        "externalcontact/get_corp_tag_list", {"group_id": [grp["group_id"]], "tag_id": [everything[0]["tag"][0]["id"]]}
    )["tag_group"]
    assert [x["group_id"] for x in by_group] == [grp["group_id"]] and len(by_group[0]["tag"]) == 2
    by_tag = sim.call("externalcontact/get_corp_tag_list", {"tag_id": [grp["tag"][1]["id"]]})["tag_group"]
    assert [t["id"] for t in by_tag[0]["tag"]] == [grp["tag"][1]["id"]]


def test_group_name_appends_and_duplicates_collapse(sim):
    g = uniq()
    first = add(sim, g, ["A", "A", "B"])["tag_group"]
    assert [t["name"] for t in first["tag"]] == ["A", "B"]  # duplicate names: one tag
    again = add(sim, g, ["B", "C"])["tag_group"]
    assert again["group_id"] == first["group_id"]  # an existing group_name appends
    b_id = next(t["id"] for t in first["tag"] if t["name"] == "B")
    assert next((t["name"], t["id"] == b_id) for t in again["tag"]) == ("B", True)
    listed = sim.call("externalcontact/get_corp_tag_list", {"group_id": [first["group_id"]]})["tag_group"][0]
    assert sorted(t["name"] for t in listed["tag"]) == ["A", "B", "C"]
    # group_id given: group_name and order ignored
    via_id = add(sim, "ignored-name", ["D"], group_id=first["group_id"], order=99)["tag_group"]
    assert via_id["group_id"] == first["group_id"] and via_id["group_name"] == g and via_id["order"] == 0


def test_add_errors(sim):
    assert add(sim, uniq(), [])["errcode"] == 40058  # empty groups cannot be created
    assert add(sim, uniq(), ["x" * 31])["errcode"] == 40072
    assert add(sim, "g" * 31, ["x"])["errcode"] == 40072
    assert add(sim, uniq(), [""])["errcode"] == 40071
    assert add(sim, None, ["x"], group_id="etNoSuchGroup")["errcode"] == 40068
    assert add(sim, None, ["x"])["errcode"] == 40071  # neither group_id nor group_name
    # at the limit: 30 characters
    assert add(sim, uniq() + "g" * 20, ["x" * 30])["errcode"] == 0


def test_corp_tag_cap(sim, sim_rules):
    have = tag_count(sim)
    sim_rules(corp_tag_cap=have + 2)
    g = uniq()
    assert add(sim, g, ["1", "2", "3"])["errcode"] == 40126  # would exceed: nothing created
    assert tag_count(sim) == have
    assert add(sim, g, ["1", "2"])["errcode"] == 0
    assert add(sim, g, ["3"])["errcode"] == 40126
    assert add(sim, g, ["1"])["errcode"] == 0  # an existing name creates nothing


def test_edit(sim):
    a = add(sim, uniq(), ["甲", "乙"])["tag_group"]
    b = add(sim, uniq(), ["丙"])["tag_group"]
    t1, t2 = a["tag"][0]["id"], a["tag"][1]["id"]
    assert sim.call("externalcontact/edit_corp_tag", {"id": t1, "name": "甲2", "order": 5})["errcode"] == 0
    assert sim.call("externalcontact/edit_corp_tag", {"id": t2, "name": "甲2"})["errcode"] == 40071  # clash in group
    assert sim.call("externalcontact/edit_corp_tag", {"id": b["tag"][0]["id"], "name": "甲2"})["errcode"] == 0
    assert sim.call("externalcontact/edit_corp_tag", {"id": a["group_id"], "name": b["group_name"]})["errcode"] == 40071
    assert sim.call("externalcontact/edit_corp_tag", {"id": a["group_id"], "name": "x" * 31})["errcode"] == 40072
    assert sim.call("externalcontact/edit_corp_tag", {"id": "etNoSuchTag", "name": "n"})["errcode"] == 40068
    assert sim.call("externalcontact/edit_corp_tag", {"name": "n"})["errcode"] == 40058
    new_name = uniq("改")
    assert (
        sim.call("externalcontact/edit_corp_tag", {"id": a["group_id"], "name": new_name, "order": 3})["errcode"] == 0
    )
    g = sim.call("externalcontact/get_corp_tag_list", {"group_id": [a["group_id"]]})["tag_group"][0]
    assert g["group_name"] == new_name and g["order"] == 3
    assert {(t["id"], t["name"], t["order"]) for t in g["tag"]} >= {(t1, "甲2", 5)}


def test_delete_rules(sim):
    e = employee(sim)
    x = customer_of(sim, e)
    a = add(sim, uniq(), ["一", "二"])["tag_group"]
    t1, t2 = a["tag"][0]["id"], a["tag"][1]["id"]
    sim.call("externalcontact/mark_tag", {"userid": e, "external_userid": x, "add_tag": [t1, t2]})
    assert sim.call("externalcontact/del_corp_tag", {})["errcode"] == 40058
    assert sim.call("externalcontact/del_corp_tag", {"tag_id": [t1, "etNoSuchTag"]})["errcode"] == 40068
    assert sim.call("externalcontact/del_corp_tag", {"tag_id": [t1]})["errcode"] == 0
    [f] = sim.get("externalcontact/get", external_userid=x)["follow_user"]
    assert [t["tag_id"] for t in f["tags"]] == [t2]  # deleted tags disappear from customers
    assert sim.call("externalcontact/del_corp_tag", {"tag_id": [t1]})["errcode"] == 40068  # already deleted
    # deleting the group's last tag deletes the group
    assert sim.call("externalcontact/del_corp_tag", {"tag_id": [t2]})["errcode"] == 0
    g = sim.call("externalcontact/get_corp_tag_list", {"group_id": [a["group_id"]]})["tag_group"][0]
    assert g["deleted"] is True and all(t["deleted"] for t in g["tag"])
    assert a["group_id"] not in [x["group_id"] for x in sim.call("externalcontact/get_corp_tag_list", {})["tag_group"]]
    # deleting a group deletes its tags
    b = add(sim, uniq(), ["三", "四"])["tag_group"]
    assert sim.call("externalcontact/del_corp_tag", {"group_id": [b["group_id"]]})["errcode"] == 0
    tl = sim.call("externalcontact/get_corp_tag_list", {"tag_id": [t["id"] for t in b["tag"]]})["tag_group"]
    assert all(t["deleted"] for t in tl[0]["tag"])
    assert (
        sim.call("externalcontact/mark_tag", {"userid": e, "external_userid": x, "add_tag": [b["tag"][0]["id"]]})[
            "errcode"
        ]
        == 40068
    )


def test_mark_tag(sim):
    e1, e2 = employee(sim), employee(sim)
    x = customer_of(sim, e1)
    sim.control("add_friend", {"userid": e2, "external_userid": x, "add_way": 1})
    a = add(sim, uniq(), ["一", "二"])["tag_group"]
    t1, t2 = a["tag"][0]["id"], a["tag"][1]["id"]

    def call(**b):
        return sim.call("externalcontact/mark_tag", {"userid": e1, "external_userid": x, **b})["errcode"]

    assert call(add_tag=[t1, t2]) == 0
    assert call(remove_tag=[t1]) == 0
    assert call() == 40058
    assert call(add_tag=["etNoSuchTag"]) == 40068
    assert call(add_tag="not-a-list") == 40058
    stranger = customer_of(sim, e2)
    assert (
        sim.call("externalcontact/mark_tag", {"userid": e1, "external_userid": stranger, "add_tag": [t1]})["errcode"]
        == 84061
    )
    follows = {f["userid"]: f for f in sim.get("externalcontact/get", external_userid=x)["follow_user"]}
    assert [t["tag_id"] for t in follows[e1]["tags"]] == [t2]
    assert follows[e2]["tags"] == []  # tags belong to the (employee, customer) pair
    # no edit_external_contact for API tagging by default
    assert outbox(sim, UserID=e1, ExternalUserID=x, ChangeType="edit_external_contact") == []


def test_api_tag_changes_fire_callbacks(sim, sim_rules):
    grp = add(sim, uniq(), ["五"])["tag_group"]
    created = outbox(sim, Event="change_external_tag", ChangeType="create")
    ids = {(e["Id"], e["TagType"]) for e in created}
    assert (grp["group_id"], "tag_group") in ids and (grp["tag"][0]["id"], "tag") in ids
    sim.call("externalcontact/edit_corp_tag", {"id": grp["tag"][0]["id"], "name": "六"})
    assert outbox(sim, Event="change_external_tag", ChangeType="update", Id=grp["tag"][0]["id"])[0]["TagType"] == "tag"
    sim_rules(tag_api_changes_callback=False)
    quiet = add(sim, uniq(), ["七"])["tag_group"]
    assert outbox(sim, Event="change_external_tag", Id=quiet["group_id"]) == []


def test_admin_console_actions_fire_callbacks(sim):
    r = sim.control("tags/admin_create", {"group_name": uniq("后台"), "tags": ["甲", {"name": "乙", "order": 2}]})
    grp = r["tag_group"]
    gid = grp["group_id"]
    t_a, t_b = grp["tag"][0]["id"], grp["tag"][1]["id"]
    assert outbox(sim, Event="change_external_tag", ChangeType="create", Id=gid)[0]["TagType"] == "tag_group"
    sim.control("tags/admin_update", {"id": t_a, "name": "甲改"})
    ev = outbox(sim, Event="change_external_tag", ChangeType="update", Id=t_a)
    assert ev and ev[0]["TagType"] == "tag"
    sim.control("tags/admin_shuffle", {"group_id": gid, "order": [t_a, t_b]})
    [sh] = outbox(sim, Event="change_external_tag", ChangeType="shuffle", Id=gid)
    assert "TagType" not in sh
    tags = sim.call("externalcontact/get_corp_tag_list", {"group_id": [gid]})["tag_group"][0]["tag"]
    assert [t["id"] for t in tags] == [t_a, t_b]  # the new order: first shown first
    sim.control("tags/admin_shuffle", {"order": [gid]})
    assert outbox(sim, Event="change_external_tag", ChangeType="shuffle", Id="")
    assert sim.call("externalcontact/get_corp_tag_list", {})["tag_group"][0]["group_id"] == gid
    sim.control("tags/admin_delete", {"group_id": [gid]})
    [d] = outbox(sim, Event="change_external_tag", ChangeType="delete", Id=gid)
    assert d["TagType"] == "tag_group"
    bad = sim.control("tags/admin_update", {"id": "etNoSuchTag", "name": "x"}, expect_ok=False)
    assert bad["ok"] is False
