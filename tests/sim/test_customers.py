"""Customers: externalcontact/list, get, batch/get_by_user, remark (rules R4–R7) over real HTTP."""

from __future__ import annotations

from tests.sim.helpers import customer_of, employee, outbox, upload_image


def test_list_and_get_shapes(sim):
    e = employee(sim)
    x = customer_of(sim, e)
    r = sim.get("externalcontact/list", userid=e)
    assert r["errcode"] == 0 and r["external_userid"] == [x]
    g = sim.get("externalcontact/get", external_userid=x)
    assert g["errcode"] == 0
    ec = g["external_contact"]
    assert ec["external_userid"] == x and ec["type"] == 1 and ec["name"]
    assert "unionid" in ec and "corp_name" not in ec and "position" not in ec
    assert "next_cursor" not in g
    [f] = g["follow_user"]
    assert f["userid"] == e and f["add_way"] == 2 and f["oper_userid"] == e
    assert f["tags"] == [] and "state" not in f and "remark_mobiles" not in f and "remark_corp_name" not in f
    assert isinstance(f["createtime"], int)


def test_add_by_customer_sets_oper_userid(sim):
    e = employee(sim)
    x = customer_of(sim, e, add_way=3, by="customer")
    [f] = sim.get("externalcontact/get", external_userid=x)["follow_user"]
    assert f["oper_userid"] == x and f["add_way"] == 3


def test_list_errors(sim, sim_rules):
    e = employee(sim)
    # a member with no customers: 84061 (community-observed); configurable to an empty list
    assert sim.get("externalcontact/list", userid=e)["errcode"] == 84061
    sim_rules(empty_customer_list_84061=False)
    r = sim.get("externalcontact/list", userid=e)
    assert r["errcode"] == 0 and r["external_userid"] == []
    assert sim.get("externalcontact/list", userid="no_such_user_x")["errcode"] == 60111
    off = employee(sim, contact_enabled=False)
    assert sim.get("externalcontact/list", userid=off)["errcode"] == 84074


def test_get_errors(sim):
    assert sim.get("externalcontact/get")["errcode"] == 41035
    assert sim.get("externalcontact/get", external_userid="wmNoSuchCustomer000000000000000")["errcode"] == 40096
    stranger = sim.control("customer/new")["external_userid"][0]
    assert sim.get("externalcontact/get", external_userid=stranger)["errcode"] == 84061


def test_get_tags_corp_and_personal(sim):
    e = employee(sim)
    x = customer_of(sim, e)
    grp = sim.call("externalcontact/add_corp_tag", {"group_name": "p1客户标签组", "tag": [{"name": "高意向"}]})[
        "tag_group"
    ]
    tid = grp["tag"][0]["id"]
    assert sim.call("externalcontact/mark_tag", {"userid": e, "external_userid": x, "add_tag": [tid]})["errcode"] == 0
    sim.control(
        "customer/edit",
        {"userid": e, "external_userid": x, "personal_tags": [{"group_name": "", "tag_name": "老朋友"}]},
    )
    [f] = sim.get("externalcontact/get", external_userid=x)["follow_user"]
    corp = [t for t in f["tags"] if t["type"] == 1]
    personal = [t for t in f["tags"] if t["type"] == 2]
    assert corp == [{"group_name": "p1客户标签组", "tag_name": "高意向", "tag_id": tid, "type": 1}]
    assert personal == [{"group_name": "", "tag_name": "老朋友", "type": 2}]  # personal tags: no tag_id
    # batch/get_by_user: corp tag ids only
    rows = sim.call("externalcontact/batch/get_by_user", {"userid_list": [e]})["external_contact_list"]
    assert rows[0]["follow_info"]["tag_id"] == [tid]


def test_get_follow_user_paging(sim, sim_rules):
    sim_rules(follow_user_page_size=2)
    emps = [employee(sim) for _ in range(3)]
    x = customer_of(sim, emps[0])
    for e in emps[1:]:
        sim.control("add_friend", {"userid": e, "external_userid": x, "add_way": 1, "by": "customer"})
    p1 = sim.get("externalcontact/get", external_userid=x)
    assert [f["userid"] for f in p1["follow_user"]] == emps[:2] and p1["next_cursor"]
    p2 = sim.get("externalcontact/get", external_userid=x, cursor=p1["next_cursor"])
    assert [f["userid"] for f in p2["follow_user"]] == emps[2:] and "next_cursor" not in p2
    assert sim.get("externalcontact/get", external_userid=x, cursor="not-a-cursor")["errcode"] == 40058


def test_deleted_by_customer_is_one_way(sim, sim_rules):
    e = employee(sim)
    x = customer_of(sim, e)
    sim.control("delete", {"userid": e, "external_userid": x, "by": "customer"})
    # the employee still holds the customer ("deleted me"): still listed
    assert x in sim.get("externalcontact/list", userid=e)["external_userid"]
    assert sim.get("externalcontact/get", external_userid=x)["follow_user"][0]["userid"] == e
    sim_rules(deleted_by_customer_still_listed=False)
    assert sim.get("externalcontact/get", external_userid=x)["errcode"] == 84061
    assert [ev["ChangeType"] for ev in outbox(sim, UserID=e, ExternalUserID=x, Event="change_external_contact")] == [
        "add_external_contact",
        "del_follow_user",
    ]


def test_deleted_by_employee_disappears(sim):
    e = employee(sim)
    x = customer_of(sim, e)
    y = customer_of(sim, e)
    sim.control("delete", {"userid": e, "external_userid": x, "by": "employee"})
    assert sim.get("externalcontact/list", userid=e)["external_userid"] == [y]
    assert sim.get("externalcontact/get", external_userid=x)["errcode"] == 84061
    ev = outbox(sim, UserID=e, ExternalUserID=x, ChangeType="del_external_contact")
    assert len(ev) == 1 and "Source" not in ev[0]
    # mark_tag / remark on a relation that no longer exists → 84061
    assert sim.call("externalcontact/remark", {"userid": e, "external_userid": x, "remark": "r"})["errcode"] == 84061


def test_batch_get_by_user_paging_and_limits(sim):
    e1, e2 = employee(sim), employee(sim)
    xs = [customer_of(sim, e1) for _ in range(5)]
    sim.control("add_friend", {"userid": e2, "external_userid": xs[0], "add_way": 1})
    seen = []
    cursor = ""
    pages = 0
    while True:
        r = sim.call("externalcontact/batch/get_by_user", {"userid_list": [e1, e2], "cursor": cursor, "limit": 2})
        assert r["errcode"] == 0 and len(r["external_contact_list"]) <= 2
        pages += 1
        seen += [
            (row["follow_info"]["userid"], row["external_contact"]["external_userid"])
            for row in r["external_contact_list"]
        ]
        cursor = r["next_cursor"]
        if not cursor:
            break
    # one row per (customer, follower): xs[0] appears for both employees
    assert seen == [(e1, x) for x in xs] + [(e2, xs[0])]
    assert pages == 3
    # limit above 100 is clamped, not refused; default 50
    r = sim.call("externalcontact/batch/get_by_user", {"userid_list": [e1, e2], "limit": 5000})
    assert r["errcode"] == 0 and len(r["external_contact_list"]) == 6 and r["next_cursor"] == ""
    r = sim.call("externalcontact/batch/get_by_user", {"userid_list": [e1]})
    assert len(r["external_contact_list"]) == 5
    # userid_list required, at most 100
    assert sim.call("externalcontact/batch/get_by_user", {})["errcode"] == 40058
    assert sim.call("externalcontact/batch/get_by_user", {"userid_list": [e1] * 101})["errcode"] == 40058
    assert sim.call("externalcontact/batch/get_by_user", {"userid_list": ["nobody_here"]})["errcode"] == 60111
    # the legacy single userid string (what wechatpy 2.0 sends)
    assert len(sim.call("externalcontact/batch/get_by_user", {"userid": e1})["external_contact_list"]) == 5


def test_batch_follow_info_shape(sim):
    e = employee(sim)
    x = customer_of(sim, e)
    [row] = sim.call("externalcontact/batch/get_by_user", {"userid_list": [e]})["external_contact_list"]
    fi = row["follow_info"]
    assert fi["userid"] == e and fi["tag_id"] == [] and fi["add_way"] == 2 and "tags" not in fi
    assert row["external_contact"]["external_userid"] == x


def test_remark_limits(sim):
    e = employee(sim)
    x = customer_of(sim, e)
    base = {"userid": e, "external_userid": x}

    def remark(**kw):
        return sim.call("externalcontact/remark", {**base, **kw})["errcode"]

    assert remark(remark="备" * 21) == 40058
    assert remark(description="描" * 151) == 40058
    assert remark(remark_company="公" * 21) == 40058
    assert remark(remark_mobiles=[f"1380000000{i}" for i in range(6)]) == 40058
    assert remark() == 40058  # all empty
    assert remark(remark_pic_mediaid="no-such-media") == 40007
    assert sim.call("externalcontact/remark", {"userid": e, "remark": "x"})["errcode"] == 41035
    assert sim.call("externalcontact/remark", {"external_userid": x, "remark": "x"})["errcode"] == 40003
    other = employee(sim)
    assert (
        sim.call("externalcontact/remark", {"userid": other, "external_userid": x, "remark": "x"})["errcode"] == 84061
    )
    # at the limits: accepted
    assert (
        remark(
            remark="备" * 20,
            description="描" * 150,
            remark_company="公" * 20,
            remark_mobiles=[f"1380000000{i}" for i in range(5)],
            remark_pic_mediaid=upload_image(sim),
        )
        == 0
    )
    [f] = sim.get("externalcontact/get", external_userid=x)["follow_user"]
    assert f["remark"] == "备" * 20 and f["description"] == "描" * 150 and f["remark_corp_name"] == "公" * 20
    assert f["remark_mobiles"] == [f"1380000000{i}" for i in range(5)]
    # absent fields stay; remark_mobiles [""] clears
    assert remark(remark_mobiles=[""]) == 0
    [f] = sim.get("externalcontact/get", external_userid=x)["follow_user"]
    assert f["remark"] == "备" * 20 and "remark_mobiles" not in f


def test_remark_company_only_for_wechat_customers(sim):
    wecom = sim.control("world/sample", {"n": 1})["wecom_customers"][0]
    e = employee(sim)
    sim.control("add_friend", {"userid": e, "external_userid": wecom, "add_way": 3})
    assert (
        sim.call(
            "externalcontact/remark",
            {"userid": e, "external_userid": wecom, "remark_company": "某公司", "remark": "王总"},
        )["errcode"]
        == 0
    )
    g = sim.get("externalcontact/get", external_userid=wecom)
    assert g["external_contact"]["type"] == 2 and "corp_name" in g["external_contact"]
    f = next(f for f in g["follow_user"] if f["userid"] == e)
    assert f["remark"] == "王总" and "remark_corp_name" not in f  # ignored for WeCom users


def test_remark_fires_no_callback_unless_configured(sim, sim_rules):
    e = employee(sim)
    x = customer_of(sim, e)
    assert sim.call("externalcontact/remark", {"userid": e, "external_userid": x, "remark": "一"})["errcode"] == 0
    assert outbox(sim, UserID=e, ExternalUserID=x, ChangeType="edit_external_contact") == []
    sim_rules(customer_api_edits_callback=True)
    assert sim.call("externalcontact/remark", {"userid": e, "external_userid": x, "remark": "二"})["errcode"] == 0
    assert len(outbox(sim, UserID=e, ExternalUserID=x, ChangeType="edit_external_contact")) == 1


def test_customer_edit_in_client_fires_edit_event(sim):
    e = employee(sim)
    x = customer_of(sim, e)
    sim.control("customer/edit", {"userid": e, "external_userid": x, "remark": "客户端备注", "description": "d"})
    [f] = sim.get("externalcontact/get", external_userid=x)["follow_user"]
    assert f["remark"] == "客户端备注" and f["description"] == "d"
    ev = outbox(sim, UserID=e, ExternalUserID=x, ChangeType="edit_external_contact")
    assert len(ev) == 1 and ev[0]["Event"] == "change_external_contact"


def test_readd_after_customer_deleted_keeps_remark(sim):
    e = employee(sim)
    x = customer_of(sim, e)
    sim.call("externalcontact/remark", {"userid": e, "external_userid": x, "remark": "老客户"})
    sim.control("delete", {"userid": e, "external_userid": x, "by": "customer"})
    r = sim.control("add_friend", {"userid": e, "external_userid": x, "add_way": 1, "by": "customer"})
    assert r["added"] is True
    [f] = sim.get("externalcontact/get", external_userid=x)["follow_user"]
    assert f["remark"] == "老客户" and f["oper_userid"] == x
    # adding an existing friend again is a no-op
    assert sim.control("add_friend", {"userid": e, "external_userid": x, "add_way": 1})["added"] is False
