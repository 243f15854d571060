"""The seeded world (siyu.wecom_sim.world): shape, determinism and realism, checked over HTTP."""

from __future__ import annotations

import re
import time

import pytest

from tests.simproc import SimProcess

WM = re.compile(r"^wm[A-Za-z0-9_-]{30}$")
WO = re.compile(r"^wo[A-Za-z0-9_-]{30}$")
ET = re.compile(r"^et[A-Za-z0-9_-]{30}$")
WR = re.compile(r"^wr[A-Za-z0-9_-]{30}$")
USERID = re.compile(r"^[a-z]+\d*$")
MOBILE = re.compile(r"^1[3-9]\d{9}$")

HOSTILE = (
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "Robert'); DROP TABLE--",
)


def has_api(sim: SimProcess, path: str, body: dict | None = None, method: str = "POST") -> bool:
    r = sim.call(path, body or {}, method=method)
    return r.get("errcode") != 404


@pytest.fixture(scope="module")
def demo():
    proc = SimProcess(customers=5000, seed=11, demo=True).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def demo_sample(demo):
    return demo.control("world/sample", {"n": 20})


# --- the demo brand's org ---------------------------------------------------------------------------
def test_demo_departments(demo):
    depts = demo.get("department/list")["department"]
    by_id = {d["id"]: d for d in depts}
    assert len(depts) == 11
    assert by_id[1]["parentid"] == 0
    names = {d["name"] for d in depts}
    assert {"运营中心", "客服中心", "华东大区", "华南大区"} <= names
    regions = [d for d in depts if d["name"] in ("华东大区", "华南大区")]
    assert all(r["parentid"] == 1 for r in regions)
    stores = [d for d in depts if d["parentid"] in {r["id"] for r in regions}]
    assert len(stores) == 6
    assert all(s["name"].endswith("店") for s in stores)
    for r in regions:
        assert sum(1 for s in stores if s["parentid"] == r["id"]) == 3
    # every department but the region-less HQ functions has a leader
    assert all(d["department_leader"] for d in depts)
    # department/list with id: the subtree only
    sub = demo.get("department/list", id=regions[0]["id"])["department"]
    assert {d["id"] for d in sub} == {regions[0]["id"]} | {s["id"] for s in stores if s["parentid"] == regions[0]["id"]}
    assert demo.get("department/list", id=9999)["errcode"] == 60123
    assert demo.get("department/get", id=stores[0]["id"])["department"]["name"] == stores[0]["name"]


def test_demo_employees(demo):
    users = demo.get("user/list", department_id=1, fetch_child=1)["userlist"]
    assert len(users) == 30
    assert all(USERID.match(u["userid"]) for u in users)
    assert all(u["gender"] in ("1", "2") for u in users)
    assert all(MOBILE.match(u["mobile"]) for u in users)
    assert all(u["avatar"].startswith("http://wework.qpic.cn/") for u in users)
    assert all(len(u["is_leader_in_dept"]) == len(u["department"]) for u in users)
    positions = [u["position"] for u in users]
    assert positions.count("店长") == 6
    assert positions.count("导购") >= 12
    assert positions.count("大区经理") == 2
    managers = [u for u in users if u["position"] == "店长"]
    depts = {d["id"]: d for d in demo.get("department/list")["department"]}
    for m in managers:
        assert m["is_leader_in_dept"] == [1]
        assert m["userid"] in depts[m["department"][0]]["department_leader"]
    # someone works in two departments
    assert any(len(u["department"]) == 2 for u in users)
    follow = demo.get("externalcontact/get_follow_user_list")["follow_user"]
    assert 28 <= len(follow) <= 29  # all but one or two HQ staff have the customer-contact function
    ids = demo.call("user/list_id", {"limit": 10})
    rows = ids["dept_user"]
    cursor = ids["next_cursor"]
    while cursor:
        page = demo.call("user/list_id", {"limit": 10, "cursor": cursor})
        rows += page["dept_user"]
        cursor = page["next_cursor"]
    assert len(rows) == sum(len(u["department"]) for u in users)
    assert demo.call("user/list_id", {"cursor": "not-a-cursor"})["errcode"] != 0


def test_demo_tags(demo, demo_sample):
    groups = {g["group_name"]: [t["name"] for t in g["tag"]] for g in demo_sample["tags"]}
    if has_api(demo, "externalcontact/get_corp_tag_list"):
        api_groups = demo.call("externalcontact/get_corp_tag_list", {})["tag_group"]
        groups = {g["group_name"]: [t["name"] for t in g["tag"]] for g in api_groups}
        assert all(ET.match(g["group_id"]) for g in api_groups)
        assert all(ET.match(t["id"]) for g in api_groups for t in g["tag"])
    assert groups["客户等级"] == ["普通会员", "银卡会员", "金卡会员", "钻石会员"]
    assert {"门店海报", "包裹卡", "直播间", "视频号", "朋友推荐", "线上商城"} <= set(groups["来源渠道"])
    assert len(groups["兴趣偏好"]) >= 4
    assert "生命周期" in groups


def test_demo_customers_over_batch_get_by_user(demo, demo_sample):
    if not has_api(demo, "externalcontact/batch/get_by_user", {"userid_list": ["x"]}):
        pytest.skip("externalcontact/batch/get_by_user not implemented yet")
    stats = demo_sample["stats"]
    assert stats["customers"] == 5000
    follow = demo.get("externalcontact/get_follow_user_list")["follow_user"]
    level_ids = {t["id"] for g in demo_sample["tags"] if g["group_name"] == "客户等级" for t in g["tag"]}
    seen: dict[str, int] = {}
    rows = 0
    add_ways, states, remarks, names = set(), set(), 0, []
    per_user: dict[str, int] = {}
    for i in range(0, len(follow), 100):
        cursor = ""
        while True:
            r = demo.call(
                "externalcontact/batch/get_by_user",
                {"userid_list": follow[i : i + 100], "cursor": cursor, "limit": 100},
            )
            assert r["errcode"] == 0, r
            for row in r["external_contact_list"]:
                ext = row["external_contact"]
                info = row["follow_info"]
                rows += 1
                seen[ext["external_userid"]] = ext["type"]
                names.append(ext["name"])
                add_ways.add(info["add_way"])
                if info.get("state"):
                    states.add(info["state"])
                remarks += bool(info.get("remark"))
                assert len(set(info["tag_id"]) & level_ids) <= 1
                assert len(info["tag_id"]) <= 4
                per_user[info.get("userid", "")] = per_user.get(info.get("userid", ""), 0) + 1
            cursor = r["next_cursor"]
            if not cursor:
                break
    # A customer who deleted the employee stays in the employee's list (del_follow_user is one-way)
    # unless the rule says otherwise; relations the employee deleted are gone.
    if demo.control("config", {})["rules"].get("deleted_by_customer_still_listed", False):
        assert rows == stats["follows_active"] + stats["follows_deleted_by_customer"]
        assert len(seen) == stats["customers_listed"]
    else:
        assert rows == stats["follows_active"]
        assert len(seen) == stats["customers_active"]
    assert stats["customers_active"] > 4600
    assert all(WM.match(e) if t == 1 else WO.match(e) for e, t in seen.items())
    assert 0.01 < sum(1 for t in seen.values() if t == 2) / len(seen) < 0.06
    assert {0, 1, 2, 3, 4, 201} <= add_ways
    assert any(s.startswith("ch_store_") for s in states)  # the demo: one poster code per store
    assert 0.35 < remarks / rows < 0.65
    # realistic nicknames: Chinese, emoji, English
    assert any(re.search(r"[\U0001F300-\U0001FAFF✨⭐☀]", n) for n in names)
    assert any(re.fullmatch(r"[A-Za-z][A-Za-z ._]*", n) for n in names)
    assert sum(1 for n in names if re.fullmatch(r"[\u4e00-\u9fff]{2,4}", n)) > len(names) * 0.2


def test_demo_groups(demo, demo_sample):
    assert demo_sample["stats"]["groups"] == 60
    store_staff = {e["userid"] for e in demo.control("world/sample", {"n": 100})["store_employees"]}
    if not has_api(demo, "externalcontact/groupchat/list", {"limit": 10}):
        groups = demo_sample["groups"]
        assert all(WR.match(g["chat_id"]) and g["owner"] in store_staff for g in groups)
        assert all(20 <= g["members"] <= 300 for g in groups)
        pytest.skip("externalcontact/groupchat/list not implemented yet (checked through world/sample)")
    chats, cursor = [], ""
    while True:
        r = demo.call("externalcontact/groupchat/list", {"limit": 1000, "cursor": cursor})
        chats += r["group_chat_list"]
        cursor = r.get("next_cursor", "")
        if not cursor:
            break
    assert len(chats) == 60
    assert all(WR.match(c["chat_id"]) and c["status"] == 0 for c in chats)
    named = 0
    scenes = set()
    for c in chats[:12]:
        g = demo.call("externalcontact/groupchat/get", {"chat_id": c["chat_id"], "need_name": 1})["group_chat"]
        assert g["owner"] in store_staff
        named += "群" in g["name"]
        assert 20 <= len(g["member_list"]) <= 300
        types = {m["type"] for m in g["member_list"]}
        assert types == {1, 2}
        scenes |= {m["join_scene"] for m in g["member_list"]}
        assert any(m["userid"] == g["owner"] for m in g["member_list"])
    assert named >= 10
    assert scenes <= {1, 2, 3} and len(scenes) >= 2


def test_hostile_nicknames_present(demo, demo_sample):
    hostile = demo_sample["hostile"]
    names = [h["name"] for h in hostile]
    for n in HOSTILE:
        assert n in names
    assert any(len(n) > 60 for n in names)  # combining-character monster
    assert any("\u202e" in n for n in names)  # RTL override
    if has_api(demo, "externalcontact/get", method="GET"):
        for h in hostile[:5]:
            r = demo.get("externalcontact/get", external_userid=h["external_userid"])
            if r["errcode"] == 0:
                assert r["external_contact"]["name"] == h["name"]


def test_sample_shapes(demo_sample):
    s = demo_sample
    assert len(s["stores"]) == 6
    assert all(e["store"] for e in s["store_employees"])
    assert all(c["followers"] for c in s["customers"])
    assert all(len(c["followers"]) >= 2 for c in s["multi_followed"])
    assert s["multi_followed"]
    assert all(lost["status"] in (1, 2) and lost["status_time"] for lost in s["lost"])
    assert all(WO.match(e) for e in s["wecom_customers"])
    assert s["world"]["demo"] is True and s["world"]["seed"] == 11


def test_customer_new_are_nobodys_customers(demo):
    r = demo.control("customer/new", {"n": 3})
    assert len(r["external_userid"]) == 3
    assert all(WM.match(e) for e in r["external_userid"])
    assert all(c["unionid"].startswith("o") and len(c["unionid"]) == 28 for c in r["customers"])
    sample = demo.control("world/sample", {"n": 3})
    assert set(sample["unfollowed"]) == set(r["external_userid"])
    if has_api(demo, "externalcontact/get", method="GET"):
        assert demo.get("externalcontact/get", external_userid=r["external_userid"][0])["errcode"] == 84061


# --- determinism and the generic world --------------------------------------------------------------
def _ids(sample: dict) -> dict:
    return {
        "employees": [(e["userid"], e["name"], e["department"]) for e in sample["employees"]],
        "customers": [(c["external_userid"], c["name"], c["followers"]) for c in sample["customers"]],
        "multi": [c["external_userid"] for c in sample["multi_followed"]],
        "lost": [(x["userid"], x["external_userid"], x["status"]) for x in sample["lost"]],
        "groups": [(g["chat_id"], g["name"], g["owner"], g["members"]) for g in sample["groups"]],
        "tags": [(g["group_id"], [t["id"] for t in g["tag"]]) for g in sample["tags"]],
        "hostile": [h["external_userid"] for h in sample["hostile"]],
        "stores": sample["stores"],
    }


def test_determinism_same_seed_same_world():
    a = SimProcess(customers=3000, seed=5).start()
    b = SimProcess(customers=3000, seed=5).start()
    try:
        sa = a.control("world/sample", {"n": 30})
        sb = b.control("world/sample", {"n": 30})
        assert _ids(sa) == _ids(sb)
        stats = {k: v for k, v in sa["stats"].items() if k != "seconds"}
        assert stats == {k: v for k, v in sb["stats"].items() if k != "seconds"}
        # reseeding over HTTP with the same arguments rebuilds the same world ...
        r = a.control("seed", {"customers": 3000, "seed": 5, "demo": False})
        assert r["stats"]["customers"] == 3000
        assert _ids(a.control("world/sample", {"n": 30})) == _ids(sa)
        # ... and another seed a different one
        a.control("seed", {"customers": 3000, "seed": 6, "demo": False})
        other = _ids(a.control("world/sample", {"n": 30}))
        assert other["customers"] != _ids(sa)["customers"]
        assert other["tags"] != _ids(sa)["tags"]
    finally:
        a.stop()
        b.stop()


def test_generic_world_sizing():
    proc = SimProcess(customers=40000, seed=2).start()
    try:
        s = proc.control("world/sample", {"n": 5})
        st = s["stats"]
        assert st["customers"] == 40000
        assert st["users"] == 100  # customers // 400
        assert st["groups"] == 400  # customers // 100
        users = proc.get("user/list", department_id=1, fetch_child=1)["userlist"]
        assert len(users) == 100
        depts = proc.get("department/list")["department"]
        stores = s["stores"]
        assert len(stores) >= 3
        assert {d["name"] for d in depts} >= {"运营中心", "客服中心"}
        per_store = {st_["id"]: 0 for st_ in stores}
        for u in users:
            if u["main_department"] in per_store:
                per_store[u["main_department"]] += 1
        assert min(per_store.values()) >= 10
        status = proc.control("status")["counts"]
        assert status["customers"] == 40000 and status["groups"] == 400
    finally:
        proc.stop()


def test_reseed_resets_world(demo):
    """Runs last in this module: reseeding wipes what the control API added."""
    demo.control("employee/create", {"userid": "tmpperson", "name": "临时员工", "department": [1]})
    t = time.monotonic()
    r = demo.control("seed", {"customers": 5000, "seed": 11, "demo": True})
    assert time.monotonic() - t < 30
    assert r["stats"]["users"] == 30
    assert demo.get("user/get", userid="tmpperson")["errcode"] == 60111


@pytest.mark.slow
def test_million_customers():
    t = time.monotonic()
    proc = SimProcess(customers=1_000_000, seed=1).start(timeout=900)
    started = time.monotonic() - t
    try:
        s = proc.control("world/sample", {"n": 5})
        st = s["stats"]
        assert st["customers"] == 1_000_000
        assert st["users"] == 2500
        assert st["groups"] == 10000
        counts = proc.control("status")["counts"]
        assert counts["customers"] == 1_000_000
        assert counts["follows"] == st["follows_active"]
        assert counts["users"] == 2500
        follow = proc.get("externalcontact/get_follow_user_list")["follow_user"]
        assert len(follow) >= 2400
        users = proc.get("user/list", department_id=1, fetch_child=1)["userlist"]
        assert len(users) == 2500
        assert all(c["followers"] for c in s["customers"])
        print(f"1,000,000-customer world: process up in {started:.1f} s, seeding {st.get('seconds')} s")
    finally:
        proc.stop()
