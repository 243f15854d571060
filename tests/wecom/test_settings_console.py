"""The WeCom settings, API log and callback pages of the console. Django's test client against the
real database; the connection test talks to the emulator process over HTTP."""

from __future__ import annotations

import re

import pytest
from django.test import override_settings

from siyu.wecom import config
from siyu.wecom.models import ApiCall, CallbackInbox, CallbackRejection, WeComSettings

# the WeCom settings cache is emptied around every test
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_config")]

AES_KEY = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456"  # 43 letters/digits
CONTACT_SECRET = "contact-secret-value-0123456789-ABCDEFGHIJ"


# --- settings › WeCom -------------------------------------------------------------------------
def save(client, **fields):
    data = {
        "corp_id": "",
        "api_base": "",
        "agent_id": "",
        "contact_secret": "",
        "app_secret": "",
        "callback_token": "",
        "callback_aes_key": "",
    }
    data.update(fields)
    return client.post("/settings/wecom/", data)


def test_saving_settings_stores_them_and_invalidates_the_config_cache(admin_client):
    assert config.get().corp_id == ""  # cached now
    r = save(
        admin_client,
        corp_id="ww0123456789abcdef",
        api_base="http://127.0.0.1:9/cgi-bin/",
        agent_id="1000002",
        contact_secret=CONTACT_SECRET,
        callback_token="tok3nValue",
        callback_aes_key=AES_KEY,
    )
    assert r.status_code == 302 and r["Location"] == "/settings/wecom/"
    row = WeComSettings.objects.get()
    assert row.corp_id == "ww0123456789abcdef"
    assert row.api_base == "http://127.0.0.1:9"  # trailing /cgi-bin/ removed: the client adds it
    assert row.contact_secret == CONTACT_SECRET and row.callback_aes_key == AES_KEY
    cfg = config.get()  # no waiting for the 5 s cache: save() invalidated it
    assert cfg.corp_id == "ww0123456789abcdef" and cfg.callback_ready and cfg.secret("app") == CONTACT_SECRET
    page = admin_client.get("/settings/wecom/")
    body = page.content.decode()
    assert "企业微信设置已保存" in body
    # secrets are never sent back in full: only masked with their last 4 characters
    for secret in (CONTACT_SECRET, AES_KEY):
        assert secret not in body
    assert "••••••••GHIJ" in body and "••••••••3456" in body
    assert "tok3nValue" not in body and "••••••••" in body


def test_blank_secrets_keep_the_stored_value_and_clear_removes_it(admin_client):
    save(admin_client, corp_id="ww1", contact_secret=CONTACT_SECRET, callback_token="abc123")
    save(admin_client, corp_id="ww2")  # secrets left empty
    row = WeComSettings.objects.get()
    assert row.corp_id == "ww2" and row.contact_secret == CONTACT_SECRET and row.callback_token == "abc123"
    admin_client.post("/settings/wecom/", {"corp_id": "ww2", "clear_callback_token": "on"})
    row.refresh_from_db()
    assert row.callback_token == "" and row.contact_secret == CONTACT_SECRET
    save(admin_client, corp_id="")  # an empty plain field removes the override
    row.refresh_from_db()
    assert row.corp_id == ""


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("callback_aes_key", AES_KEY[:42], "EncodingAESKey 必须是 43 位英文字母或数字。"),
        ("callback_aes_key", AES_KEY[:42] + "+", "EncodingAESKey 必须是 43 位英文字母或数字。"),
        ("callback_aes_key", AES_KEY + "x", "EncodingAESKey 必须是 43 位英文字母或数字。"),
        ("callback_token", "a" * 33, "Token 只能由英文字母或数字组成，且不超过 32 位。"),
        ("callback_token", "tok-en", "Token 只能由英文字母或数字组成，且不超过 32 位。"),
        ("api_base", "ftp://example.com", "请输入以 http:// 或 https:// 开头的地址。"),
        ("api_base", "not a url", "请输入以 http:// 或 https:// 开头的地址。"),
        ("agent_id", "10000x", "AgentID 只能是数字。"),
        ("corp_id", "ww 123", "企业ID只能包含字母和数字。"),
        ("contact_secret", "has space", "Secret 中不能包含空白字符。"),
    ],
)
def test_settings_validation(admin_client, field, value, message):
    r = save(admin_client, **{field: value})
    assert r.status_code == 200
    body = r.content.decode()
    assert message in body and "请修正下面标出的错误。" in body
    assert not WeComSettings.objects.exists()


def test_settings_accept_the_longest_token_and_a_43_character_key(admin_client):
    r = save(admin_client, callback_token="A1" * 16, callback_aes_key=AES_KEY)
    assert r.status_code == 302
    assert WeComSettings.objects.get().callback_token == "A1" * 16


@override_settings(
    WECOM={
        "CORP_ID": "wwfromenv",
        "API_BASE": "https://qyapi.weixin.qq.com",
        "CONTACT_SECRET": "env-contact-secret-0123456789abcdefghijk",
        "APP_SECRET": "",
        "AGENT_ID": "",
        "CALLBACK_TOKEN": "",
        "CALLBACK_AES_KEY": "",
        "TIMEOUT_S": 5.0,
        "RATE_LIMIT_RETRIES": 0,
        "RATE_LIMIT_BACKOFF_S": 0.1,
    }
)
def test_settings_page_shows_where_each_value_comes_from(admin_client, monkeypatch):
    monkeypatch.delenv("WECOM_API_BASE", raising=False)
    WeComSettings.objects.create(agent_id="1000005")
    body = admin_client.get("/settings/wecom/").content.decode()

    def source_of(name):
        row = re.search(rf'data-field="{name}".*?<span class="source source-(\w+)">(.*?)</span>', body, re.DOTALL)
        return row.group(1), row.group(2)

    assert source_of("corp_id") == ("env", "环境变量")
    assert "WECOM_CORP_ID" in body and "wwfromenv" in body
    assert source_of("agent_id") == ("console", "控制台")
    assert source_of("api_base") == ("default", "默认值")
    assert source_of("contact_secret") == ("env", "环境变量")
    assert source_of("app_secret") == ("fallback", "沿用客户联系 Secret")
    assert source_of("callback_token") == ("unset", "未设置")
    assert "env-contact-secret-0123456789abcdefghijk" not in body and "••••••••hijk" in body
    assert "http://testserver/wecom/callback/" in body


def test_test_connection_against_the_emulator(admin_client, wecom_sim):
    r = admin_client.post("/settings/wecom/test/", HTTP_HX_REQUEST="true")
    assert r.status_code == 200
    body = r.content.decode()
    assert 'data-kind="contact" data-ok="1"' in body and "连接成功" in body
    assert "<html" not in body  # an htmx fragment, not a page
    assert 'id="connection-status" class="connection-status" hx-swap-oob="true"' in body
    assert ApiCall.objects.filter(path="gettoken", errcode=0).exists()

    WeComSettings.objects.update(contact_secret="wrong-secret-0000000000000000000000000000", app_secret="")
    config.invalidate()
    body = admin_client.post("/settings/wecom/test/", HTTP_HX_REQUEST="true").content.decode()
    assert 'data-ok="0"' in body and "<code>40001</code>" in body and "应用密钥（Secret）不正确" in body
    assert "测试连接" in body  # what to do, in words (siyu.wecom.errcodes)
    assert ApiCall.objects.filter(path="gettoken", errcode=40001).exists()
    # without htmx the whole page comes back with the result in it
    page = admin_client.post("/settings/wecom/test/").content.decode()
    assert "<html" in page and "应用密钥（Secret）不正确" in page
    assert page.count('id="connection-status"') == 1 and "hx-swap-oob" not in page


def test_test_connection_when_nothing_is_configured(admin_client):
    body = admin_client.post("/settings/wecom/test/", HTTP_HX_REQUEST="true").content.decode()
    assert "尚未配置企业ID和 Secret。" in body


def test_test_connection_to_an_unreachable_server_answers_quickly(admin_client):
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    WeComSettings.objects.create(corp_id="ww1", api_base=f"http://127.0.0.1:{port}", contact_secret=CONTACT_SECRET)
    started = time.monotonic()
    body = admin_client.post("/settings/wecom/test/", HTTP_HX_REQUEST="true").content.decode()
    assert time.monotonic() - started < 5  # no back-off retries while the administrator waits
    assert "企业微信无响应（网络错误或非正常应答）" in body and "WeCom unreachable: connection refused" in body
    assert CONTACT_SECRET not in body and "corpsecret" not in body and str(port) not in body


# --- settings › API log ----------------------------------------------------------------------
def test_api_log_filters_pagination_meanings_and_escaping(admin_client):
    calls = [
        ApiCall(corp_id="ww1", secret_kind="contact", method="POST", path="externalcontact/get", errcode=0, errmsg="ok")
        for _ in range(60)
    ]
    calls.append(
        ApiCall(
            corp_id="ww1",
            secret_kind="contact",
            method="POST",
            path="externalcontact/batch/get_by_user",
            errcode=45009,
            errmsg="api freq out of limit <script>alert(1)</script>",
        )
    )
    calls.append(
        ApiCall(
            corp_id="ww1", secret_kind="app", method="POST", path="message/send", errcode=None, errmsg="ConnectionError"
        )
    )
    ApiCall.objects.bulk_create(calls)

    body = admin_client.get("/settings/wecom/calls/").content.decode()
    assert "第 1–50 条，共 62 条" in body and "1 / 2 页" in body
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "接口调用次数超过企业微信限制" in body
    assert 'href="https://open.work.weixin.qq.com/devtool/query?e=45009"' in body
    # the reference table of common codes
    assert re.search(r"<code>84061</code></td><td>该客户已不是员工的好友</td><td>客户已删除员工", body)

    page2 = admin_client.get("/settings/wecom/calls/?page=2").content.decode()
    assert "第 51–62 条，共 62 条" in page2

    errors = admin_client.get("/settings/wecom/calls/?errors=1").content.decode()
    assert "共 2 条" in errors and "externalcontact/get<" not in errors
    assert "企业微信无响应（网络错误或非正常应答）" in errors

    by_path = admin_client.get("/settings/wecom/calls/?path=message/").content.decode()
    assert "共 1 条" in by_path and "message/send" in by_path

    by_code = admin_client.get("/settings/wecom/calls/?errcode=45009&errors=1").content.decode()
    assert "共 1 条" in by_code
    # pagination links keep the filters
    filtered = admin_client.get("/settings/wecom/calls/?path=externalcontact/").content.decode()
    assert "?path=externalcontact%2F&amp;page=2" in filtered

    assert "没有符合条件" in admin_client.get("/settings/wecom/calls/?path=nothing/").content.decode()
    assert admin_client.get("/settings/wecom/calls/?page=999&errcode=abc").status_code == 200


# --- settings › callbacks --------------------------------------------------------------------
def test_callbacks_page_filters_shows_payloads_escaped_and_retries(admin_client):
    ok = CallbackInbox.objects.create(
        dedupe_key="k1",
        event="change_external_contact",
        change_type="add_external_contact",
        payload="<xml><UserID><![CDATA[<b>zhang</b>]]></UserID></xml>",
        status="done",
    )
    failed = CallbackInbox.objects.create(
        dedupe_key="k2",
        event="change_external_chat",
        change_type="update",
        payload="<xml/>",
        status="failed",
        attempts=8,
        error="KeyError: '<img src=x onerror=alert(1)>'",
    )
    CallbackRejection.objects.create(
        reason="signature", status_code=403, remote_addr="10.1.2.3", detail="signature <i>does not</i> match"
    )

    body = admin_client.get("/settings/wecom/callbacks/").content.decode()
    assert "add_external_contact" in body and "change_external_chat" in body
    assert "<img src=x" not in body and "&lt;img src=x onerror=alert(1)&gt;" in body
    assert "重新处理" in body

    only_failed = admin_client.get("/settings/wecom/callbacks/?status=failed").content.decode()
    assert "change_external_chat" in only_failed and "add_external_contact</code>" not in only_failed
    by_type = admin_client.get(
        "/settings/wecom/callbacks/?event=change_external_contact&change_type=add_external_contact"
    ).content.decode()
    assert f'<td class="num">{ok.id}</td>' in by_type and f'<td class="num">{failed.id}</td>' not in by_type

    payload = admin_client.get(f"/settings/wecom/callbacks/{ok.id}/").content.decode()
    assert "&lt;b&gt;zhang&lt;/b&gt;" in payload and "<b>zhang</b>" not in payload
    assert admin_client.get("/settings/wecom/callbacks/999999/").status_code == 404

    rejections = admin_client.get("/settings/wecom/callbacks/?tab=rejections").content.decode()
    assert "签名错误" in rejections and "10.1.2.3" in rejections and "&lt;i&gt;does not&lt;/i&gt;" in rejections

    r = admin_client.post(
        f"/settings/wecom/callbacks/{failed.id}/retry/", {"next": "/settings/wecom/callbacks/?status=failed"}
    )
    assert r.status_code == 302 and r["Location"] == "/settings/wecom/callbacks/?status=failed"
    failed.refresh_from_db()
    assert (failed.status, failed.attempts, failed.run_after, failed.error) == ("pending", 0, 0, "")
    r = admin_client.post(f"/settings/wecom/callbacks/{ok.id}/retry/", {"next": "https://evil.example/"})
    assert r["Location"] == "/settings/wecom/callbacks/"
    ok.refresh_from_db()
    assert ok.status == "done"
    assert "不是失败状态" in admin_client.get("/settings/wecom/callbacks/").content.decode()
