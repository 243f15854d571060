"""The console shell: sign-in, roles, the overview, the WeCom settings / API log / callback pages,
languages, static assets. Django's test client against the real database; the connection test
talks to the emulator process over HTTP."""

from __future__ import annotations

import ast
import gettext
import re
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client, override_settings
from django.utils import timezone

import siyu
from siyu.accounts import selectors as account_selectors
from siyu.accounts import services as accounts
from siyu.accounts.models import Profile
from siyu.core import dashboard, menu
from siyu.core.models import WorkerHeartbeat
from siyu.wecom import config
from siyu.wecom.models import ApiCall, CallbackInbox, CallbackRejection, WeComSettings

pytestmark = pytest.mark.django_db

PASSWORD = "s3cret-pass-word"
AES_KEY = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456"  # 43 letters/digits
CONTACT_SECRET = "contact-secret-value-0123456789-ABCDEFGHIJ"
SETTINGS_PAGES = ["/settings/wecom/", "/settings/wecom/calls/", "/settings/wecom/callbacks/"]
CJK = re.compile(r"[\u3400-\u9fff\u3000-\u303f\uff00-\uffef]")


def make_user(username: str, role: str | None, **binding) -> object:
    if role is None:
        return get_user_model().objects.create_user(username, password=PASSWORD)
    user, _ = accounts.ensure_user(username, PASSWORD, role=role, **binding)
    return user


def client_for(user, language: str | None = None) -> Client:
    c = Client()
    c.force_login(user)
    if language:
        c.cookies["django_language"] = language
    return c


@pytest.fixture
def admin():
    return make_user("admin", Profile.ADMIN)


@pytest.fixture
def admin_client(admin):
    return client_for(admin)


@pytest.fixture(autouse=True)
def fresh_config():
    config.invalidate()
    yield
    config.invalidate()


def text_without_switcher(html: str) -> str:
    """Visible text of a page, minus the language switcher (it names 简体中文 in every language)."""
    html = re.sub(r'<form class="lang-switch".*?</form>', "", html, flags=re.DOTALL)
    html = re.sub(r"<script.*?</script>", "", html, flags=re.DOTALL)
    return re.sub(r"<[^>]+>", " ", html)


# --- sign-in, sign-out, roles ---------------------------------------------------------------
def test_anonymous_users_are_sent_to_the_login_page():
    c = Client()
    for url in ["/", "/overview/health/", *SETTINGS_PAGES]:
        r = c.get(url)
        assert r.status_code == 302
        assert r["Location"].startswith("/accounts/login/?next=")
    r = c.post("/settings/wecom/test/")
    assert r.status_code == 302 and r["Location"].startswith("/accounts/login/")


def test_an_expired_session_sends_htmx_panels_to_the_login_page_as_a_whole():
    r = Client().get("/overview/health/", HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="http://testserver/?x=1")
    assert r.status_code == 200 and r.content == b""
    assert r["HX-Redirect"] == "/accounts/login/?next=%2F%3Fx%3D1"


def test_role_required_mixin_for_class_based_views(rf):
    from django.contrib.auth.models import AnonymousUser
    from django.core.exceptions import PermissionDenied
    from django.http import HttpResponse
    from django.views import View

    from siyu.accounts.permissions import RoleRequiredMixin

    class Page(RoleRequiredMixin, View):
        roles = (Profile.ADMIN, Profile.OPERATOR)

        def get(self, request):
            return HttpResponse("ok")

    request = rf.get("/x/")
    request.user = AnonymousUser()
    assert Page.as_view()(request)["Location"] == "/accounts/login/?next=/x/"
    request.user = make_user("op", Profile.OPERATOR)
    assert Page.as_view()(request).content == b"ok"
    request.user = make_user("guide", Profile.GUIDE, wecom_userid="u1")
    with pytest.raises(PermissionDenied):
        Page.as_view()(request)


def test_login_page_speaks_chinese_even_to_an_english_browser():
    r = Client().get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert r.status_code == 200
    body = r.content.decode()
    assert "登录控制台" in body and 'lang="zh-CN"' in body


def test_login_with_the_right_password_and_with_a_wrong_one(admin):
    c = Client()
    r = c.post("/accounts/login/", {"username": "admin", "password": "nope"})
    assert r.status_code == 200
    assert "用户名或密码不正确。" in r.content.decode()
    r = c.post("/accounts/login/?next=/settings/wecom/", {"username": "admin", "password": PASSWORD, "next": "/settings/wecom/"})
    assert r.status_code == 302 and r["Location"] == "/settings/wecom/"
    assert c.get("/").status_code == 200
    # an already signed-in user is sent on from the login page
    assert c.get("/accounts/login/").status_code == 302


def test_login_refuses_a_redirect_to_another_site(admin):
    c = Client()
    r = c.post("/accounts/login/", {"username": "admin", "password": PASSWORD, "next": "https://evil.example/"})
    assert r.status_code == 302 and r["Location"] == "/"


def test_logout_is_a_post_and_ends_the_session(admin_client):
    assert admin_client.get("/").status_code == 200
    r = admin_client.post("/accounts/logout/")
    assert r.status_code == 302 and r["Location"] == "/accounts/login/"
    assert admin_client.get("/").status_code == 302


def test_createadmin_is_idempotent_and_resets_the_password():
    out = StringIO()
    call_command("createadmin", "--username", "boss", "--password", "first-pass", stdout=out)
    call_command("createadmin", "--username", "boss", "--password", "second-pass", stdout=out)
    assert "created" in out.getvalue() and "updated" in out.getvalue()
    User = get_user_model()
    assert User.objects.filter(username="boss").count() == 1
    user = User.objects.get(username="boss")
    assert user.check_password("second-pass") and not user.check_password("first-pass")
    assert account_selectors.role_of(user) == Profile.ADMIN
    assert Profile.objects.filter(user=user).count() == 1


def test_createadmin_needs_a_password():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("createadmin", "--username", "boss", "--password", "")


def test_roles_and_data_scopes():
    manager = make_user("manager", Profile.STORE_MANAGER, department_id=12)
    guide = make_user("guide", Profile.GUIDE, wecom_userid="zhangsan")
    operator = make_user("op", Profile.OPERATOR)
    nobody = make_user("nobody", None)
    assert account_selectors.data_scope(manager) == account_selectors.DataScope(department_id=12)
    assert account_selectors.data_scope(guide) == account_selectors.DataScope(wecom_userid="zhangsan")
    assert account_selectors.data_scope(operator).everything
    assert account_selectors.data_scope(nobody).nothing
    superuser = get_user_model().objects.create_superuser("root", password=PASSWORD)
    assert account_selectors.role_of(superuser) == Profile.ADMIN


def test_a_store_manager_needs_a_department_and_a_guide_a_userid():
    from django.core.exceptions import ValidationError

    user = make_user("x", None)
    with pytest.raises(ValidationError):
        accounts.assign_role(user, Profile.STORE_MANAGER)
    with pytest.raises(ValidationError):
        accounts.assign_role(user, Profile.GUIDE)
    with pytest.raises(ValidationError):
        accounts.assign_role(user, "king")
    assert not Profile.objects.filter(user=user).exists()


@pytest.mark.parametrize(
    "role,binding",
    [(Profile.OPERATOR, {}), (Profile.STORE_MANAGER, {"department_id": 3}), (Profile.GUIDE, {"wecom_userid": "lisi"})],
)
def test_settings_pages_are_admin_only(role, binding):
    c = client_for(make_user("someone", role, **binding))
    assert c.get("/").status_code == 200
    for url in [*SETTINGS_PAGES, "/overview/health/", "/settings/wecom/callbacks/1/"]:
        r = c.get(url)
        assert r.status_code == 403, url
        assert "此页面仅限以下角色访问：管理员" in r.content.decode()
    assert c.post("/settings/wecom/", {"corp_id": "wwhacker"}).status_code == 403
    assert c.post("/settings/wecom/test/").status_code == 403
    assert c.post("/settings/wecom/callbacks/1/retry/").status_code == 403
    assert not WeComSettings.objects.exists()


def test_a_user_without_a_role_gets_403_everywhere():
    c = client_for(make_user("norole", None))
    r = c.get("/")
    assert r.status_code == 403
    assert "此账号尚未分配角色" in r.content.decode()


def test_the_sidebar_shows_settings_to_admins_only(admin_client):
    body = admin_client.get("/").content.decode()
    for href in ['href="/"', 'href="/settings/wecom/"', 'href="/settings/wecom/calls/"', 'href="/settings/wecom/callbacks/"']:
        assert href in body
    operator = client_for(make_user("op", Profile.OPERATOR)).get("/").content.decode()
    assert 'href="/"' in operator
    assert "/settings/wecom/" not in operator


def test_menu_registry_links_only_pages_that_exist_and_marks_the_active_one():
    with pytest.raises(ValueError):
        menu.register("nowhere", "x", "overview")
    menu.SECTIONS["probe"] = menu.Section("probe", "探针", "chart", 95)
    menu.register("probe", "不存在的页面", "probe:does-not-exist-yet")
    try:
        sections = menu.build("/settings/wecom/calls/", Profile.ADMIN)
        keys = [s["key"] for s in sections]
        assert "probe" not in keys  # its only entry does not resolve
        assert "customers" in keys
        assert keys[0] == "overview" and keys[-1] == "settings"
        settings_section = sections[-1]
        active = [i["url"] for i in settings_section["items"] if i["active"]]
        assert active == ["/settings/wecom/calls/"]  # the longest prefix, not /settings/wecom/ too
        assert settings_section["active"] and not sections[0]["active"]
        assert sections[0]["single"] and sections[0]["url"] == "/"
    finally:
        menu._ENTRIES.pop("probe:does-not-exist-yet")
        menu.SECTIONS.pop("probe")


# --- overview -------------------------------------------------------------------------------
def test_overview_shows_empty_states_health_panels_and_chart_data(admin_client):
    now = timezone.now()
    WorkerHeartbeat.objects.create(worker_id="w-live", hostname="h", pid=1, started_at=now, last_seen=now, processed=42)
    WorkerHeartbeat.objects.create(worker_id="w-dead", hostname="h", pid=2, started_at=now, last_seen=now - timedelta(minutes=5))
    CallbackInbox.objects.create(dedupe_key="a", event="change_external_contact", change_type="add_external_contact", payload="<xml/>")
    CallbackInbox.objects.create(dedupe_key="b", event="change_external_contact", payload="<xml/>", status="failed")
    ApiCall.objects.create(corp_id="ww1", secret_kind="contact", method="GET", path="gettoken", errcode=0, errmsg="ok")
    ApiCall.objects.create(corp_id="ww1", secret_kind="contact", method="POST", path="externalcontact/get", errcode=84061, errmsg="not external contact")
    assert "未配置" in admin_client.get("/overview/health/").content.decode()
    WeComSettings.objects.create(corp_id="ww1", contact_secret=CONTACT_SECRET)
    config.invalidate()
    r = admin_client.get("/")
    assert r.status_code == 200
    body = r.content.decode()
    for key in ("employees", "customers", "groups", "tags"):
        assert f'data-counter="{key}"' in body
    if dashboard._resolve(dashboard._COUNTERS["customers"]) is None:
        assert "客户尚未同步" in body
    assert "w-live" in body and "w-dead" in body and "1 个在线" in body
    assert 'data-value="pending">1<' in body and 'data-value="failed">1<' in body
    assert "84061 不存在外部联系人的关系" in body  # the last call failed: errcode with its meaning
    assert "最近一次调用失败" in body
    assert 'id="calls-chart-data"' in body and "echarts.min.js" in body
    health = admin_client.get("/overview/health/")
    assert health.status_code == 200 and 'hx-trigger="every 15s"' in health.content.decode()


def test_overview_for_an_operator_has_counters_but_no_system_panels():
    body = client_for(make_user("op", Profile.OPERATOR)).get("/").content.decode()
    assert 'data-counter="customers"' in body
    assert 'data-panel="wecom"' not in body and "echarts.min.js" not in body


def test_dashboard_counters_come_from_providers_and_survive_a_broken_one(admin_client):
    saved = {k: (c.fn, c.url_name, c.provider) for k, c in dashboard._COUNTERS.items()}
    scopes = []
    try:
        dashboard.provide("customers", lambda scope: scopes.append(scope) or 12345, url_name="overview")
        dashboard.provide("tags", lambda scope: 1 / 0)
        dashboard._COUNTERS["groups"].fn = None
        dashboard._COUNTERS["groups"].provider = "siyu.no_such_app.selectors:group_count"
        dashboard._COUNTERS["employees"].fn = None
        dashboard._COUNTERS["employees"].provider = "siyu.wecom.selectors:no_such_function"
        body = admin_client.get("/").content.decode()
        assert '<a href="/">12,345</a>' in body
        assert "读取失败，详见服务日志" in body
        assert "客户群尚未同步" in body and "组织架构尚未同步" in body
        assert scopes == [account_selectors.DataScope(everything=True)]
        # a guide's counters are asked for the guide's scope
        client_for(make_user("g", Profile.GUIDE, wecom_userid="wangwu")).get("/")
        assert scopes[-1] == account_selectors.DataScope(wecom_userid="wangwu")
    finally:
        for k, (fn, url_name, provider) in saved.items():
            c = dashboard._COUNTERS[k]
            c.fn, c.url_name, c.provider = fn, url_name, provider


# --- settings › WeCom -------------------------------------------------------------------------
def save(client, **fields):
    data = {"corp_id": "", "api_base": "", "agent_id": "", "contact_secret": "", "app_secret": "", "callback_token": "", "callback_aes_key": ""}
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
    assert 'data-kind="contact" data-ok="1"' in body and "gettoken 成功" in body
    assert "<html" not in body  # an htmx fragment, not a page
    assert 'id="connection-status" class="connection-status" hx-swap-oob="true"' in body
    assert ApiCall.objects.filter(path="gettoken", errcode=0).exists()

    WeComSettings.objects.update(contact_secret="wrong-secret-0000000000000000000000000000", app_secret="")
    config.invalidate()
    body = admin_client.post("/settings/wecom/test/", HTTP_HX_REQUEST="true").content.decode()
    assert 'data-ok="0"' in body and "<code>40001</code>" in body and "不合法的secret参数" in body
    assert ApiCall.objects.filter(path="gettoken", errcode=40001).exists()
    # without htmx the whole page comes back with the result in it
    page = admin_client.post("/settings/wecom/test/").content.decode()
    assert "<html" in page and "不合法的secret参数" in page
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
    assert "无响应（网络错误或非 JSON 应答）" in body and "WeCom unreachable: connection refused" in body
    assert CONTACT_SECRET not in body and "corpsecret" not in body and str(port) not in body


# --- settings › API log ----------------------------------------------------------------------
def test_api_log_filters_pagination_meanings_and_escaping(admin_client):
    calls = [
        ApiCall(corp_id="ww1", secret_kind="contact", method="POST", path="externalcontact/get", errcode=0, errmsg="ok")
        for _ in range(60)
    ]
    calls.append(
        ApiCall(
            corp_id="ww1", secret_kind="contact", method="POST", path="externalcontact/batch/get_by_user",
            errcode=45009, errmsg="api freq out of limit <script>alert(1)</script>",
        )
    )
    calls.append(ApiCall(corp_id="ww1", secret_kind="app", method="POST", path="message/send", errcode=None, errmsg="ConnectionError"))
    ApiCall.objects.bulk_create(calls)

    body = admin_client.get("/settings/wecom/calls/").content.decode()
    assert "第 1–50 条，共 62 条" in body and "1 / 2 页" in body
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "接口调用超过限制" in body
    assert 'href="https://open.work.weixin.qq.com/devtool/query?e=45009"' in body
    # the reference table of common codes
    assert re.search(r"<code>84061</code></td><td>不存在外部联系人的关系", body)

    page2 = admin_client.get("/settings/wecom/calls/?page=2").content.decode()
    assert "第 51–62 条，共 62 条" in page2

    errors = admin_client.get("/settings/wecom/calls/?errors=1").content.decode()
    assert "共 2 条" in errors and "externalcontact/get<" not in errors
    assert "无响应（网络错误或非 JSON 应答）" in errors

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
        dedupe_key="k1", event="change_external_contact", change_type="add_external_contact",
        payload="<xml><UserID><![CDATA[<b>zhang</b>]]></UserID></xml>", status="done",
    )
    failed = CallbackInbox.objects.create(
        dedupe_key="k2", event="change_external_chat", change_type="update", payload="<xml/>",
        status="failed", attempts=8, error="KeyError: '<img src=x onerror=alert(1)>'",
    )
    CallbackRejection.objects.create(reason="signature", status_code=403, remote_addr="10.1.2.3", detail="signature <i>does not</i> match")

    body = admin_client.get("/settings/wecom/callbacks/").content.decode()
    assert "add_external_contact" in body and "change_external_chat" in body
    assert "<img src=x" not in body and "&lt;img src=x onerror=alert(1)&gt;" in body
    assert "重新处理" in body

    only_failed = admin_client.get("/settings/wecom/callbacks/?status=failed").content.decode()
    assert "change_external_chat" in only_failed and "add_external_contact</code>" not in only_failed
    by_type = admin_client.get("/settings/wecom/callbacks/?event=change_external_contact&change_type=add_external_contact").content.decode()
    assert f"<td class=\"num\">{ok.id}</td>" in by_type and f"<td class=\"num\">{failed.id}</td>" not in by_type

    payload = admin_client.get(f"/settings/wecom/callbacks/{ok.id}/").content.decode()
    assert "&lt;b&gt;zhang&lt;/b&gt;" in payload and "<b>zhang</b>" not in payload
    assert admin_client.get("/settings/wecom/callbacks/999999/").status_code == 404

    rejections = admin_client.get("/settings/wecom/callbacks/?tab=rejections").content.decode()
    assert "签名错误" in rejections and "10.1.2.3" in rejections and "&lt;i&gt;does not&lt;/i&gt;" in rejections

    r = admin_client.post(f"/settings/wecom/callbacks/{failed.id}/retry/", {"next": "/settings/wecom/callbacks/?status=failed"})
    assert r.status_code == 302 and r["Location"] == "/settings/wecom/callbacks/?status=failed"
    failed.refresh_from_db()
    assert (failed.status, failed.attempts, failed.run_after, failed.error) == ("pending", 0, 0, "")
    r = admin_client.post(f"/settings/wecom/callbacks/{ok.id}/retry/", {"next": "https://evil.example/"})
    assert r["Location"] == "/settings/wecom/callbacks/"
    ok.refresh_from_db()
    assert ok.status == "done"
    assert "不是失败状态" in admin_client.get("/settings/wecom/callbacks/").content.decode()


# --- languages -------------------------------------------------------------------------------
def test_language_switcher_changes_the_console_to_english_and_back(admin_client):
    r = admin_client.post("/i18n/setlang/", {"language": "en", "next": "/settings/wecom/"})
    assert r.status_code == 302 and r["Location"] == "/settings/wecom/"
    body = admin_client.get("/settings/wecom/").content.decode()
    assert "WeCom settings" in body and "Test connection" in body and 'lang="en"' in body
    admin_client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    assert "企业微信设置" in admin_client.get("/settings/wecom/").content.decode()


def test_english_pages_have_no_chinese_left(admin):
    now = timezone.now()
    WorkerHeartbeat.objects.create(worker_id="w1", hostname="h", pid=1, started_at=now, last_seen=now)
    ApiCall.objects.create(corp_id="ww1", secret_kind="contact", method="GET", path="gettoken", errcode=40001, errmsg="invalid credential")
    row = CallbackInbox.objects.create(dedupe_key="k", event="change_external_contact", payload="<xml/>", status="failed", error="boom")
    CallbackRejection.objects.create(reason="replay", status_code=403, detail="old")
    c = client_for(admin, language="en")
    pages = ["/", "/overview/health/", *SETTINGS_PAGES, "/settings/wecom/callbacks/?tab=rejections", f"/settings/wecom/callbacks/{row.id}/"]
    for url in pages:
        r = c.get(url)
        assert r.status_code == 200, url
        leftovers = CJK.findall(text_without_switcher(r.content.decode()))
        assert not leftovers, f"{url}: untranslated {''.join(leftovers)!r}"
    r = c.post("/settings/wecom/", {"callback_aes_key": "short"})
    assert not CJK.findall(text_without_switcher(r.content.decode()))
    assert "The EncodingAESKey must be exactly 43 letters or digits." in r.content.decode()
    r = c.post("/settings/wecom/test/", HTTP_HX_REQUEST="true")
    assert "The corp ID and secret are not configured." in r.content.decode()
    login = Client()
    login.cookies["django_language"] = "en"
    assert not CJK.findall(text_without_switcher(login.get("/accounts/login/").content.decode()))
    operator = client_for(make_user("op", Profile.OPERATOR), language="en")
    denied = operator.get("/settings/wecom/")
    assert denied.status_code == 403 and "This page is only for: Administrator" in denied.content.decode()


def _po_entries(text: str) -> list[dict]:
    """msgid / msgid_plural / msgstr[...] of each entry of a .po file (enough for our own catalogue)."""
    entries = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            m = re.match(r'^(msgid|msgid_plural|msgstr(?:\[\d\])?) (".*")$', line)
            if m:
                key = m.group(1)
                fields[key] = ast.literal_eval(m.group(2))
            elif line.startswith('"') and key:
                fields[key] += ast.literal_eval(line)
        if fields.get("msgid"):
            fields["fuzzy"] = "#, fuzzy" in block
            entries.append(fields)
    return entries


def test_english_catalogue_is_complete_and_compiled():
    """Every message has an English translation, and the committed .mo matches the .po."""
    locale = Path(siyu.__file__).parent / "locale" / "en" / "LC_MESSAGES"
    entries = _po_entries((locale / "django.po").read_text(encoding="utf-8"))
    assert len(entries) > 100
    with open(locale / "django.mo", "rb") as f:
        mo = gettext.GNUTranslations(f)
    for e in entries:
        assert not e["fuzzy"], e["msgid"]
        if "msgid_plural" in e:
            assert e["msgstr[0]"] and e["msgstr[1]"], f"untranslated: {e['msgid']}"
            assert mo.ngettext(e["msgid"], e["msgid_plural"], 1) == e["msgstr[0]"], "stale .mo: run siyu compilemessages"
            assert mo.ngettext(e["msgid"], e["msgid_plural"], 2) == e["msgstr[1]"], "stale .mo: run siyu compilemessages"
        else:
            assert e["msgstr"], f"untranslated: {e['msgid']}"
            assert mo.gettext(e["msgid"]) == e["msgstr"], f"stale .mo for {e['msgid']!r}: run siyu compilemessages"


# --- static assets ---------------------------------------------------------------------------
def test_vendored_assets_are_served_by_whitenoise_and_no_cdn_is_used(admin_client):
    for path in ("/static/vendor/htmx/htmx.min.js", "/static/vendor/echarts/echarts.min.js", "/static/siyu/console.css", "/static/siyu/console.js"):
        r = Client().get(path)
        assert r.status_code == 200, path
        content = b"".join(r.streaming_content) if r.streaming else r.content
        assert len(content) > 1000
    static = Path(siyu.__file__).parent / "core" / "static" / "vendor"
    assert (static / "htmx" / "LICENSE").exists() and (static / "echarts" / "LICENSE").exists()
    body = admin_client.get("/").content.decode()
    assert not re.search(r'<(script|link)[^>]+(src|href)="(https?:)?//', body)
