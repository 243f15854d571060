"""The console shell: the sidebar and menu registry, the overview and its counters, languages and
the English catalogue, static assets. Django's test client against the real database."""

from __future__ import annotations

import ast
import gettext
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

import siyu
from siyu.accounts import selectors as account_selectors
from siyu.accounts.models import Profile
from siyu.core import dashboard, menu
from siyu.core.models import WorkerHeartbeat
from siyu.wecom import config
from siyu.wecom.models import ApiCall, CallbackInbox, CallbackRejection, WeComSettings
from tests.helpers import CJK, SETTINGS_PAGES, client_for, make_user, text_without_switcher

# the WeCom settings cache is emptied around every test
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_config")]

CONTACT_SECRET = "contact-secret-value-0123456789-ABCDEFGHIJ"


def test_the_sidebar_shows_settings_to_admins_only(admin_client):
    body = admin_client.get("/").content.decode()
    for href in [
        'href="/"',
        'href="/settings/wecom/"',
        'href="/settings/wecom/calls/"',
        'href="/settings/wecom/callbacks/"',
    ]:
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
    WorkerHeartbeat.objects.create(
        worker_id="w-dead", hostname="h", pid=2, started_at=now, last_seen=now - timedelta(minutes=5)
    )
    CallbackInbox.objects.create(
        dedupe_key="a", event="change_external_contact", change_type="add_external_contact", payload="<xml/>"
    )
    CallbackInbox.objects.create(dedupe_key="b", event="change_external_contact", payload="<xml/>", status="failed")
    ApiCall.objects.create(corp_id="ww1", secret_kind="contact", method="GET", path="gettoken", errcode=0, errmsg="ok")
    ApiCall.objects.create(
        corp_id="ww1",
        secret_kind="contact",
        method="POST",
        path="externalcontact/get",
        errcode=84061,
        errmsg="not external contact",
    )
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
    # the last call failed: its meaning in words, the errcode as secondary text
    assert "该客户已不是员工的好友" in body and "错误码 84061" in body
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
    ApiCall.objects.create(
        corp_id="ww1", secret_kind="contact", method="GET", path="gettoken", errcode=40001, errmsg="invalid credential"
    )
    row = CallbackInbox.objects.create(
        dedupe_key="k", event="change_external_contact", payload="<xml/>", status="failed", error="boom"
    )
    CallbackRejection.objects.create(reason="replay", status_code=403, detail="old")
    c = client_for(admin, language="en")
    pages = [
        "/",
        "/overview/health/",
        *SETTINGS_PAGES,
        "/settings/wecom/callbacks/?tab=rejections",
        f"/settings/wecom/callbacks/{row.id}/",
    ]
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
    """msgctxt / msgid / msgid_plural / msgstr[...] of each entry of a .po file (enough for our own
    catalogue)."""
    entries = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            m = re.match(r'^(msgctxt|msgid|msgid_plural|msgstr(?:\[\d\])?) (".*")$', line)
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
            assert mo.ngettext(e["msgid"], e["msgid_plural"], 1) == e["msgstr[0]"], (
                "stale .mo: run siyu compilemessages"
            )
            assert mo.ngettext(e["msgid"], e["msgid_plural"], 2) == e["msgstr[1]"], (
                "stale .mo: run siyu compilemessages"
            )
        else:
            assert e["msgstr"], f"untranslated: {e['msgid']}"
            got = mo.pgettext(e["msgctxt"], e["msgid"]) if "msgctxt" in e else mo.gettext(e["msgid"])
            assert got == e["msgstr"], f"stale .mo for {e['msgid']!r}: run siyu compilemessages"


# --- static assets ---------------------------------------------------------------------------
def test_vendored_assets_are_served_by_whitenoise_and_no_cdn_is_used(admin_client):
    for path in (
        "/static/vendor/htmx/htmx.min.js",
        "/static/vendor/echarts/echarts.min.js",
        "/static/siyu/console.css",
        "/static/siyu/console.js",
    ):
        r = Client().get(path)
        assert r.status_code == 200, path
        content = b"".join(r.streaming_content) if r.streaming else r.content
        assert len(content) > 1000
    static = Path(siyu.__file__).parent / "core" / "static" / "vendor"
    assert (static / "htmx" / "LICENSE").exists() and (static / "echarts" / "LICENSE").exists()
    body = admin_client.get("/").content.decode()
    assert not re.search(r'<(script|link)[^>]+(src|href)="(https?:)?//', body)
