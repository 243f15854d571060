"""``siyu serve`` (uvicorn, ``siyu.asgi``) over real HTTP: the callback endpoint on the event loop
and the console through the WSGI thread pool, on their own database file."""

from __future__ import annotations

import base64
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from siyu.wecom_sim.wire import build_xml, envelope
from tests.simproc import free_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "serveTestToken"
AES_KEY = "c2VydmVUZXN0Q2FsbGJhY2tBZXNLZXkwMTIzNDU2Nzg"  # 43 chars → 32-byte key
CORP = "wwservetest0001"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    work = tmp_path_factory.mktemp("serve")
    env = {
        **os.environ,
        "SIYU_VAR_DIR": str(work),
        "DATABASE_URL": f"sqlite:///{work / 'siyu.sqlite3'}",
        "WECOM_CORP_ID": CORP,
        "WECOM_CALLBACK_TOKEN": TOKEN,
        "WECOM_CALLBACK_AES_KEY": AES_KEY,
        "SIYU_LOG_LEVEL": "WARNING",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    subprocess.run([sys.executable, "-m", "siyu.cli", "migrate", "-v", "0"], env=env, cwd=ROOT, check=True)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "siyu.cli", "serve", "--port", str(port), "--workers", "1"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            requests.get(base + "/accounts/login/", timeout=5)
            break
        except requests.ConnectionError:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                raise AssertionError(proc.stderr.read().decode(errors="replace")[-2000:]) from None
            time.sleep(0.2)
    yield base, work / "siyu.sqlite3"
    proc.terminate()
    proc.wait(timeout=20)


def _event(external_userid: str, create_time: int) -> tuple[dict, bytes]:
    """An event as WeCom pushes it, created (and signed) at ``create_time``."""
    xml = build_xml(
        {
            "ToUserName": CORP,
            "FromUserName": "sys",
            "CreateTime": create_time,
            "MsgType": "event",
            "Event": "change_external_contact",
            "ChangeType": "edit_external_contact",
            "UserID": "zhangsan",
            "ExternalUserID": external_userid,
        }
    )
    return envelope(xml, TOKEN, base64.b64decode(AES_KEY + "="), CORP, timestamp=create_time)


def _rows(db: Path, sql: str, *params) -> list:
    with sqlite3.connect(db) as c:
        return c.execute(sql, params).fetchall()


def test_callback_is_stored_before_the_answer_and_a_retry_is_not_stored_twice(served):
    base, db = served
    query, body = _event("wmServe001", int(time.time()))
    for _ in range(2):  # WeCom's retry of the same event
        r = requests.post(base + "/wecom/callback/", params=query, data=body, timeout=10)
        assert (r.status_code, r.content) == (200, b"")
        # answered only once durable: the row is there the moment the answer is
        assert _rows(db, "select count(*) from wecom_callbackinbox where payload like '%wmServe001%'") == [(1,)]
    ((event, change, status),) = _rows(
        db, "select event, change_type, status from wecom_callbackinbox where payload like '%wmServe001%'"
    )
    assert (event, change, status) == ("change_external_contact", "edit_external_contact", "pending")


def test_refusals_are_answered_and_recorded(served):
    base, db = served
    query, body = _event("wmServe002", int(time.time()))
    bad = {**query, "msg_signature": "0" * 40}
    assert requests.post(base + "/wecom/callback/", params=bad, data=body, timeout=10).status_code == 403
    assert requests.post(base + "/wecom/callback/", params=query, data=b"<xml><nope/>", timeout=10).status_code == 400
    huge = b"<xml><Encrypt>" + b"A" * (300 * 1024) + b"</Encrypt></xml>"
    assert requests.post(base + "/wecom/callback/", params=query, data=huge, timeout=10).status_code == 400
    stale_query, stale_body = _event("wmServe003", int(time.time()) - 10 * 86400)
    assert requests.post(base + "/wecom/callback/", params=stale_query, data=stale_body, timeout=10).status_code == 403
    reasons = sorted(r for (r,) in _rows(db, "select reason from wecom_callbackrejection"))
    assert reasons == ["malformed", "malformed", "replay", "signature"]
    assert _rows(
        db, "select count(*) from wecom_callbackinbox where payload like '%wmServe002%' or payload like '%wmServe003%'"
    ) == [(0,)]


def test_url_verification_answers_the_plaintext(served):
    base, _ = served
    from wechatpy.crypto import _get_signature
    from wechatpy.work.crypto import PrpCrypto

    echostr = PrpCrypto(base64.b64decode(AES_KEY + "=")).encrypt("echo-1234567", CORP)
    if isinstance(echostr, bytes):
        echostr = echostr.decode()
    ts, nonce = str(int(time.time())), "n0nce"
    sig = _get_signature(TOKEN, ts, nonce, echostr)
    r = requests.get(
        base + "/wecom/callback/",
        params={"msg_signature": sig, "timestamp": ts, "nonce": nonce, "echostr": echostr},
        timeout=10,
    )
    assert (r.status_code, r.content) == (200, b"echo-1234567")


def test_console_pages_and_static_files_are_served(served):
    base, _ = served
    r = requests.get(base + "/customers/", allow_redirects=False, timeout=10)
    assert r.status_code == 302 and "/accounts/login/" in r.headers["Location"]
    login = requests.get(base + "/accounts/login/", timeout=10)
    assert login.status_code == 200 and "csrfmiddlewaretoken" in login.text
    import re

    asset = re.search(r'(?:src|href)="(/static/[^"]+)"', login.text)
    assert asset, "the login page links a static asset"
    assert requests.get(base + asset.group(1), timeout=10).status_code == 200
