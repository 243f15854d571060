"""Clients and identity (part 4): OAuth and web-login codes, user tickets, JS-SDK tickets and
signatures, and the emulated client's JS APIs (R1–R13), over HTTP as a browser and a server would."""

from __future__ import annotations

import hashlib
import http.server
import threading
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from tests.sim.helpers import customer_of, employee, own_sim, uid
from tests.simproc import SIM_APP_SECRET, SIM_CORP_ID

sim = own_sim(customers=20, seed=31)
AGENT = 1000002
PAGE = "http://127.0.0.1:8123/sidebar/?x=1"
REDIRECT = "http://127.0.0.1:8123/sidebar/oauth/"


@pytest.fixture(scope="module", autouse=True)
def client_config(sim):
    sim.control("client/config", {"trusted_domains": ["127.0.0.1"], "toolbar_url": PAGE})


def app_get(sim, path: str, **params) -> dict:
    token = sim.http.get(
        sim.base_url + "/cgi-bin/gettoken", params={"corpid": SIM_CORP_ID, "corpsecret": SIM_APP_SECRET}
    ).json()["access_token"]
    return sim.http.get(f"{sim.base_url}/cgi-bin/{path}", params={"access_token": token, **params}).json()


def app_post(sim, path: str, body: dict) -> dict:
    token = sim.http.get(
        sim.base_url + "/cgi-bin/gettoken", params={"corpid": SIM_CORP_ID, "corpsecret": SIM_APP_SECRET}
    ).json()["access_token"]
    return sim.http.post(f"{sim.base_url}/cgi-bin/{path}", params={"access_token": token}, json=body).json()


def authorize_url(
    sim, scope: str = "snsapi_base", state: str = "abc123", agentid: int | None = AGENT, redirect=REDIRECT
):
    q = {"appid": SIM_CORP_ID, "redirect_uri": redirect, "response_type": "code", "scope": scope, "state": state}
    if agentid is not None:
        q["agentid"] = agentid
    return f"{sim.base_url}/connect/oauth2/authorize?{urlencode(q)}#wechat_redirect"


def in_client(sim, userid: str) -> requests.Session:
    """A browser signed in to the emulated client as ``userid``."""
    s = requests.Session()
    r = s.post(sim.base_url + "/client/", data={"userid": userid}, allow_redirects=False)
    assert r.status_code == 302, r.text
    return s


def code_from(response) -> dict:
    assert response.status_code == 302, response.text[:500]
    loc = response.headers["Location"]
    assert loc.startswith(REDIRECT), loc
    return {k: v[0] for k, v in parse_qs(urlsplit(loc).query).items()}


# --- OAuth and web login (R1–R7) ----------------------------------------------------------------------------
def test_oauth_in_the_client_is_silent_and_the_code_single_use(sim):
    u = employee(sim)
    browser = in_client(sim, u)
    q = code_from(browser.get(authorize_url(sim), allow_redirects=False))
    assert q["state"] == "abc123" and len(q["code"].encode()) <= 512
    assert app_get(sim, "auth/getuserinfo", code=q["code"]) == {"errcode": 0, "errmsg": "ok", "userid": u}
    again = app_get(sim, "auth/getuserinfo", code=q["code"])
    assert again["errcode"] == 40029  # R1: single use


def test_code_needs_the_apps_token_and_expires_after_5_minutes(sim):
    u = employee(sim)
    browser = in_client(sim, u)
    code = code_from(browser.get(authorize_url(sim), allow_redirects=False))["code"]
    assert sim.get("auth/getuserinfo", code=code)["errcode"] == 50001  # the customer-contact secret: R2
    assert app_get(sim, "user/getuserinfo", code=code) == {  # R6: the legacy spelling
        "errcode": 0,
        "errmsg": "ok",
        "UserId": u,
        "DeviceId": "sim-client-device-0001",
    }
    late = code_from(browser.get(authorize_url(sim), allow_redirects=False))["code"]
    sim.advance(301)
    assert app_get(sim, "auth/getuserinfo", code=late)["errcode"] == 40029


def test_outside_the_client_the_page_asks_to_open_it_in_wecom(sim):
    u = employee(sim)
    browser = requests.Session()
    page = browser.get(authorize_url(sim))
    assert page.status_code == 200 and "请在企业微信客户端打开链接" in page.text
    r = browser.post(authorize_url(sim), data={"userid": u}, allow_redirects=False)
    assert r.status_code == 302
    q = code_from(browser.get(sim.base_url + r.headers["Location"], allow_redirects=False))
    assert app_get(sim, "auth/getuserinfo", code=q["code"])["userid"] == u


@pytest.mark.parametrize(
    "kwargs, problem",
    [
        ({"redirect": "http://evil.example.com/cb"}, "可信域名"),
        ({"state": "a" * 129}, "state"),
        ({"state": "有中文"}, "state"),
        ({"scope": "snsapi_login"}, "scope"),
    ],
)
def test_bad_authorize_requests_get_an_error_page_and_no_code(sim, kwargs, problem):
    browser = in_client(sim, employee(sim))
    r = browser.get(authorize_url(sim, **kwargs), allow_redirects=False)
    assert r.status_code == 400 and problem in r.text and "Location" not in r.headers


def test_privateinfo_asks_consent_and_gives_a_user_ticket(sim):
    u = employee(sim, mobile="13800000001", email="a@example.com")
    browser = in_client(sim, u)
    url = authorize_url(sim, scope="snsapi_privateinfo")
    consent = browser.get(url, allow_redirects=False)
    assert consent.status_code == 200 and "授权登录" in consent.text
    refused = browser.post(url, data={"consent": "no"}, allow_redirects=False)
    assert "code" not in code_from(refused)  # R7: refusal → no code
    q = code_from(browser.post(url, data={"consent": "yes"}, allow_redirects=False))
    info = app_get(sim, "auth/getuserinfo", code=q["code"])
    assert info["userid"] == u and info["user_ticket"]
    detail = app_post(sim, "auth/getuserdetail", {"user_ticket": info["user_ticket"]})
    assert detail["mobile"] == "13800000001" and detail["email"] == "a@example.com" and detail["gender"] in "012"
    assert app_post(sim, "auth/getuserdetail", {})["errcode"] == 84090
    # R4: without agentid, snsapi_privateinfo is snsapi_base: silent and no ticket
    q = code_from(browser.get(authorize_url(sim, scope="snsapi_privateinfo", agentid=None), allow_redirects=False))
    assert "user_ticket" not in app_get(sim, "auth/getuserinfo", code=q["code"])


@pytest.mark.parametrize("path", ["/wwlogin/sso/login", "/wwopen/sso/qrConnect"])
def test_web_login_scan_confirm_and_cancel(sim, path):
    u = employee(sim)
    q = {"login_type": "CorpApp", "appid": SIM_CORP_ID, "agentid": AGENT, "redirect_uri": REDIRECT, "state": "s1"}
    url = f"{sim.base_url}{path}?{urlencode(q)}"
    browser = requests.Session()
    assert "扫码登录" in browser.get(url).text
    got = code_from(browser.post(url, data={"userid": u}, allow_redirects=False))
    assert got["state"] == "s1"
    assert app_get(sim, "auth/getuserinfo", code=got["code"]) == {"errcode": 0, "errmsg": "ok", "userid": u}
    assert "code" not in code_from(browser.post(url, data={"cancel": "1"}, allow_redirects=False))
    bad = browser.get(url.replace(f"agentid={AGENT}", "agentid=1"))
    assert bad.status_code == 400


# --- JS-SDK tickets and signatures (R8, R9) ---------------------------------------------------------------
def sign(ticket: str, nonce: str, ts: int, url: str) -> str:
    return hashlib.sha1(f"jsapi_ticket={ticket}&noncestr={nonce}&timestamp={ts}&url={url}".encode()).hexdigest()


def test_official_signature_vector():
    ticket = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg"
    assert sign(ticket, "Wm3WZYTPz0wzccnW", 1414587457, "http://mp.weixin.qq.com?params=value") == (
        "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
    )


def test_tickets_same_while_valid_app_ticket_needs_the_app(sim):
    a, b = app_get(sim, "get_jsapi_ticket"), app_get(sim, "get_jsapi_ticket")
    assert a["ticket"] == b["ticket"] and 0 < a["expires_in"] <= 7200
    agent = app_get(sim, "ticket/get", type="agent_config")
    assert agent["ticket"] != a["ticket"]
    assert sim.get("ticket/get", type="agent_config")["errcode"] == 48002
    assert app_get(sim, "ticket/get", type="other")["errcode"] == 40005


def test_ticket_fetches_are_limited_per_hour(sim, sim_rules):
    sim_rules(jsapi_ticket_app_per_hour=1)  # this module has fetched the app ticket already
    assert app_get(sim, "ticket/get", type="agent_config")["errcode"] == 45009


def registration(sim, browser, kind: str, ticket_kind: str, *, url=PAGE, corpid=SIM_CORP_ID, bad=False, chat=None):
    path = "ticket/get" if ticket_kind == "agent" else "get_jsapi_ticket"
    ticket = app_get(sim, path, **({"type": "agent_config"} if ticket_kind == "agent" else {}))["ticket"]
    ts, nonce = 1700000000, "n0nce" + uid()
    params = {"timestamp": ts, "nonceStr": nonce, "signature": sign(ticket, nonce, ts, url) + ("0" if bad else "")}
    if kind == "config":
        params.update(appId=corpid, beta=True)
    else:
        params.update(corpid=corpid, agentid=AGENT)
    return browser.post(
        sim.base_url + "/client/api/register", json={"kind": kind, "params": params, "url": url + "#frag", **chat}
    ).json()


@pytest.fixture
def chat(sim):
    u = employee(sim)
    ext = customer_of(sim, u)
    return u, ext, in_client(sim, u), {"chat_type": "single", "chat_key": ext}


def test_registration_is_checked_like_the_client(sim, chat):
    _, _, browser, where = chat
    assert registration(sim, browser, "config", "corp", chat=where)["errMsg"] == "config:ok"
    assert registration(sim, browser, "agentConfig", "agent", chat=where)["errMsg"] == "agentConfig:ok"
    assert registration(sim, browser, "config", "corp", bad=True, chat=where)["errMsg"].endswith("e=40093")
    assert registration(sim, browser, "agentConfig", "corp", chat=where)["errMsg"].endswith("e=42012")
    assert registration(sim, browser, "config", "corp", corpid="wwother", chat=where)["errMsg"].endswith("e=40013")
    other = "http://evil.example.com/page"
    assert registration(sim, browser, "config", "corp", url=other, chat=where)["errMsg"].endswith("e=80001")


def invoke(sim, browser, where, name, args=None, url=PAGE):
    body = {"name": name, "args": args or {}, "url": url, **where}
    return sim.http.post(sim.base_url + "/client/api/invoke", json=body, cookies=browser.cookies).json()


def test_chat_toolbar_apis(sim, chat):
    u, ext, browser, where = chat
    assert invoke(sim, browser, where, "getContext")["err_msg"] == "getContext:fail no permission"
    registration(sim, browser, "config", "corp", chat=where)
    assert invoke(sim, browser, where, "getContext") == {
        "entry": "single_chat_tools",
        "err_msg": "getContext:ok",
        "errMsg": "getContext:ok",
    }
    # R10: without the app's identity the toolbar APIs refuse
    assert invoke(sim, browser, where, "getCurExternalContact")["err_msg"] == "getCurExternalContact:fail no permission"
    registration(sim, browser, "agentConfig", "agent", chat=where)
    assert invoke(sim, browser, where, "getCurExternalContact")["userId"] == ext  # R11
    assert invoke(sim, browser, where, "getCurExternalChat")["err_msg"].endswith(
        "fail without context of external contact"
    )
    sent = invoke(sim, browser, where, "sendChatMessage", {"msgtype": "text", "text": {"content": "您好 张三"}})
    assert sent["err_msg"] == "sendChatMessage:ok"
    bad = invoke(
        sim, browser, where, "sendChatMessage", {"msgtype": "news", "news": {"link": "http://x/", "imgUrl": "ftp://x"}}
    )
    assert bad["err_msg"] == "sendChatMessage:fail invalid imgUrl"
    msgs = sim.control("client/messages", {"userid": u})["messages"]
    assert [(m["chat_key"], m["msgtype"], m["payload"]) for m in msgs] == [(ext, "text", {"content": "您好 张三"})]
    long_text = {"text": {"content": "x" * 2001}, "attachments": []}
    assert invoke(sim, browser, where, "shareToExternalMoments", long_text)["err_msg"].endswith("invalid text size")
    links = [{"msgtype": "link", "link": {"title": "t", "url": "https://a.example.com/"}}] * 10
    too_many = invoke(sim, browser, where, "shareToExternalContact", {"text": {"content": "hi"}, "attachments": links})
    assert too_many["err_msg"] == "shareToExternalContact:fail invalid attachments size"
    shared = invoke(
        sim, browser, where, "shareToExternalContact", {"text": {"content": "hi"}, "attachments": links[:2]}
    )
    assert shared["err_msg"] == "shareToExternalContact:ok"


def test_group_chat_context(sim):
    u = employee(sim)
    ext = customer_of(sim, u)
    chat_id = sim.control("group/create", {"owner": u, "name": "测试群", "members": [ext]})["chat_id"]
    browser = in_client(sim, u)
    where = {"chat_type": "group", "chat_key": chat_id}
    registration(sim, browser, "agentConfig", "agent", chat=where)
    assert invoke(sim, browser, where, "getContext")["entry"] == "group_chat_tools"
    assert invoke(sim, browser, where, "getCurExternalChat")["chatId"] == chat_id
    assert invoke(sim, browser, where, "getCurExternalContact")["err_msg"].endswith(
        "without context of external contact"
    )
    # another employee's customer or group is not a chat of this member
    stranger = in_client(sim, employee(sim))
    assert stranger.get(f"{sim.base_url}/client/chat/group/{chat_id}/").status_code == 404


class _Redirector(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):
        self.hits.append(self.path)
        self.send_response(302)
        self.send_header("Location", "https://brand.example.com/landing")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_customer_clicks_a_sent_link(sim, chat):
    u, ext, browser, where = chat
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        link = f"http://127.0.0.1:{server.server_port}/l/abc"
        registration(sim, browser, "agentConfig", "agent", chat=where)
        news = {"link": link, "title": "新品", "desc": "秋冬", "imgUrl": "https://img.example.com/a.png"}
        assert invoke(sim, browser, where, "sendChatMessage", {"msgtype": "news", "news": news})["err_msg"].endswith(
            ":ok"
        )
        visit = sim.control("click_link", {"external_userid": ext})
        assert visit["status"] == 302 and visit["location"] == "https://brand.example.com/landing"
        assert _Redirector.hits == ["/l/abc"]
        other = customer_of(sim, u)
        assert sim.control("click_link", {"external_userid": other}, expect_ok=False)["ok"] is False
    finally:
        server.shutdown()


def test_client_pages_show_chats_and_the_toolbar(sim, chat):
    _, ext, browser, _ = chat
    chats = browser.get(sim.base_url + "/client/chats/")
    assert f"/client/chat/single/{ext}/" in chats.text
    page = browser.get(f"{sim.base_url}/client/chat/single/{ext}/")
    assert page.status_code == 200 and f'src="{PAGE.replace("&", "&amp;")}"' in page.text
    js = requests.get(sim.base_url + "/open/js/jweixin-1.2.0.js")
    assert js.ok and "agentConfig" in js.text and js.headers["Content-Type"].startswith("application/javascript")
