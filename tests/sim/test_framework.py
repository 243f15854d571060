"""The emulator's envelope, tokens and frequency limits, over HTTP (global rules, doc 90313 / 90454)."""

from __future__ import annotations

import threading

import requests


def raw(sim, path: str, method: str = "GET", **kw) -> dict:
    return sim.http.request(method, f"{sim.base_url}/cgi-bin/{path}", timeout=30, **kw).json()


def test_gettoken_errors(sim):
    assert raw(sim, "gettoken", params={"corpsecret": sim.secret})["errcode"] == 41002
    assert raw(sim, "gettoken", params={"corpid": sim.corp_id})["errcode"] == 41004
    assert raw(sim, "gettoken", params={"corpid": "wwNotOurs", "corpsecret": sim.secret})["errcode"] == 40013
    assert raw(sim, "gettoken", params={"corpid": sim.corp_id, "corpsecret": "wrong"})["errcode"] == 40001


def test_same_token_while_valid_and_7200s_lifetime(sim):
    a = raw(sim, "gettoken", params={"corpid": sim.corp_id, "corpsecret": sim.secret})
    b = raw(sim, "gettoken", params={"corpid": sim.corp_id, "corpsecret": sim.secret})
    assert a["errcode"] == 0 and a["access_token"] == b["access_token"]
    assert 0 < a["expires_in"] <= 7200


def test_token_errors_41001_40014_42001(sim, sim_rules):
    assert raw(sim, "department/list")["errcode"] == 41001
    assert raw(sim, "department/list", params={"access_token": "forged"})["errcode"] == 40014
    token = raw(sim, "gettoken", params={"corpid": sim.corp_id, "corpsecret": sim.secret})["access_token"]
    sim.advance(7201)
    assert raw(sim, "department/list", params={"access_token": token})["errcode"] == 42001
    fresh = raw(sim, "gettoken", params={"corpid": sim.corp_id, "corpsecret": sim.secret})
    assert fresh["access_token"] != token
    assert raw(sim, "department/list", params={"access_token": fresh["access_token"]})["errcode"] == 0


def test_error_envelope_is_http_200_with_hint(sim):
    r = sim.http.get(f"{sim.base_url}/cgi-bin/department/list", params={"access_token": "forged"})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"errcode", "errmsg"}
    assert body["errmsg"].startswith("invalid access_token, hint: [")
    assert "more info at https://open.work.weixin.qq.com/devtool/query?e=40014" in body["errmsg"]


def test_bad_json_is_47001(sim):
    r = sim.http.post(
        f"{sim.base_url}/cgi-bin/user/list_id", params={"access_token": sim.token()}, data=b"{not json", timeout=30
    ).json()
    assert r["errcode"] == 47001


def test_per_minute_frequency_limit_45009_and_block(sim):
    """访问频率限制: over the per-minute quota → 45009, and the API stays blocked (60 s)."""
    sim.control("config", {"quota_per_min": {"department/list": 3}})
    try:
        codes = [sim.get("department/list")["errcode"] for _ in range(5)]
        assert codes == [0, 0, 0, 45009, 45009]
        assert "api freq out of limit" in sim.get("department/list")["errmsg"]
        # other APIs have their own counters
        assert sim.call("user/list_id", {"limit": 10})["errcode"] == 0
    finally:
        sim.control("rules/reset")


def test_per_hour_frequency_limit_45009(sim, sim_rules):
    sim_rules(freq_per_hour=2)
    sim.control("limits/reset")
    try:
        codes = [sim.call("user/list_id", {"limit": 1})["errcode"] for _ in range(3)]
        assert codes == [0, 0, 45009]
    finally:
        sim.control("limits/reset")


def test_concurrency_limit_45033(sim, sim_rules):
    """45033: too many calls in flight at once (WeCom publishes no number; configurable)."""
    sim_rules(max_concurrent=1)
    results: list[int] = []
    token = sim.token()

    def call():
        s = requests.Session()
        for _ in range(15):
            results.append(
                s.get(f"{sim.base_url}/cgi-bin/department/list", params={"access_token": token}).json()["errcode"]
            )

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 45033 in results and 0 in results
    assert set(results) <= {0, 45033}


def test_system_busy_fault_injection(sim, sim_rules):
    sim_rules(fault_busy_rate=1.0)
    assert sim.get("department/list")["errcode"] == -1


def test_time_only_moves_forward(sim):
    r = sim.control("time/advance", {"seconds": -5}, expect_ok=False)
    assert r["ok"] is False


def test_unknown_rule_is_refused(sim):
    r = sim.control("config", {"rules": {"no_such_rule": 1}}, expect_ok=False)
    assert r["ok"] is False and "no_such_rule" in r["error"]
