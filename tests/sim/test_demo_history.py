"""The demo world's history (control actions ``demo/history`` and ``demo/attribute``): a channel plan
whose customers were added over six months, attributed to the product's codes once they exist."""

from __future__ import annotations

from tests.sim.helpers import own_sim

sim = own_sim(customers=600, seed=5, demo=True)

HALF_YEAR = 182 * 86400


def test_history_names_channels_their_staff_and_six_months_of_adds(sim):
    h = sim.control("demo/history")
    channels = {c["state"]: c for c in h["channels"]}
    stores = [c for c in h["channels"] if c["kind"] == "store"]
    assert len(stores) == 6 and all(c["name"].startswith("门店海报·") and c["department_id"] for c in stores)
    assert {"ch_pkgcard_01", "ch_live_0618", "ch_live_1111"} <= set(channels)
    assert sum(c["adds"] for c in h["channels"]) == len(h["follows"]) > 50
    assert all(c["users"] and c["first_add"] for c in h["channels"] if c["adds"])
    now = h["now"]
    times = [f[3] for f in h["follows"]]
    assert min(times) >= now - HALF_YEAR - 120 and max(times) <= now
    assert len({(now - t) // (30 * 86400) for t in times}) >= 5  # spread over the months
    assert all(f[2] in channels for f in h["follows"])
    # a store's poster code is staffed by that store's guides: adds land on its own employees
    users = {u["userid"]: u for u in sim.get("user/list", department_id=1, fetch_child=1)["userlist"]}
    for c in stores:
        for f in h["follows"]:
            if f[2] == c["state"]:
                assert c["department_id"] in users[f[0]]["department"]
    assert h["losses"] and all(x[3] >= h["since"] for x in h["losses"])
    assert len(h["leavers"]) == 2 and not any(x["resigned"] for x in h["leavers"])
    sim.control("employee/resign", {"userid": h["leavers"][0]["userid"]})
    again = sim.control("demo/history")["leavers"]
    assert [x["userid"] for x in again] == [x["userid"] for x in h["leavers"]]
    assert [x["resigned"] for x in again] == [True, False]


def test_attribute_rekeys_a_channel_once(sim):
    before = sim.control("demo/history")
    pkg = next(c for c in before["channels"] if c["state"] == "ch_pkgcard_01")
    r = sim.control("demo/attribute", {"states": {"ch_pkgcard_01": "ch:901"}})
    assert r["moved"] == pkg["adds"] > 0
    assert sim.control("demo/attribute", {"states": {"ch_pkgcard_01": "ch:901"}})["moved"] == 0
    after = sim.control("demo/history")
    moved = [f for f in after["follows"] if f[2] == "ch:901"]
    assert len(moved) == pkg["adds"] and not [f for f in after["follows"] if f[2] == "ch_pkgcard_01"]
    assert next(c for c in after["channels"] if c["state"] == "ch_pkgcard_01")["current_state"] == "ch:901"
    # what WeCom reports for such a customer: the code's state
    userid, ext = moved[0][0], moved[0][1]
    follows = sim.get("externalcontact/get", external_userid=ext)["follow_user"]
    follow = next(f for f in follows if f["userid"] == userid)
    assert follow["state"] == "ch:901"


def test_attribute_refuses_unknown_channels_and_bad_states(sim):
    assert sim.control("demo/attribute", {"states": {"ch_nope": "ch:1"}}, expect_ok=False)["ok"] is False
    assert sim.control("demo/attribute", {"states": {"ch_live_0618": ""}}, expect_ok=False)["ok"] is False
    assert sim.control("demo/attribute", {"states": {"ch_live_0618": "x" * 65}}, expect_ok=False)["ok"] is False
    assert any(f[2] == "ch_live_0618" for f in sim.control("demo/history")["follows"])
