"""The console in a real browser: sign in, switch language, the WeCom settings page, htmx."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from siyu.wecom.models import CallbackInbox, WeComSettings

pytestmark = pytest.mark.browser

CONTACT_SECRET = "browser-contact-secret-0123456789abcdefgh"


def test_sign_in_switch_language_and_save_the_wecom_settings(page, make_login, sign_in, screenshot):
    make_login("admin")
    # a wrong password first
    page.goto("/accounts/login/")
    expect(page.locator("h2")).to_have_text("登录控制台")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "wrong")
    page.click("[data-testid=login-submit]")
    expect(page.locator(".alert-error")).to_contain_text("用户名或密码不正确。")

    sign_in(page, "admin")
    expect(page.locator(".page-head h1")).to_have_text("概览")
    expect(page.locator(".user-chip")).to_contain_text("admin")
    expect(page.locator(".role-badge")).to_have_text("管理员")
    expect(page.locator("[data-panel=wecom] .pill")).to_have_text("未配置")
    expect(page.locator(".chart canvas")).to_have_count(1)  # ECharts from /static/vendor drew the chart
    screenshot(page, "overview-zh-hans")

    # the sidebar leads to the settings page
    page.click(".nav-sublink:has-text('企业微信')")
    expect(page).to_have_url(re.compile(r"/settings/wecom/$"))
    expect(page.locator(".page-head h1")).to_have_text("企业微信设置")
    expect(page.locator("[data-testid=callback-url]")).to_have_text(
        page.url.split("/settings/")[0] + "/wecom/callback/"
    )

    # an invalid EncodingAESKey is refused
    page.fill("#id_corp_id", "ww5iyu0000demo0001")
    page.fill("#id_callback_aes_key", "tooShort")
    page.click("[data-testid=save-settings]")
    expect(page.locator("[data-field=callback_aes_key] .field-error")).to_have_text(
        "EncodingAESKey 必须是 43 位英文字母或数字。"
    )
    assert not WeComSettings.objects.exists()

    # valid values, with a generated Token and EncodingAESKey
    page.fill("#id_corp_id", "ww5iyu0000demo0001")
    page.fill("#id_api_base", "http://127.0.0.1:9")
    page.fill("#id_agent_id", "1000002")
    page.fill("#id_contact_secret", CONTACT_SECRET)
    page.click("[data-random-for=id_callback_token]")
    page.click("[data-random-for=id_callback_aes_key]")
    token = page.input_value("#id_callback_token")
    aes_key = page.input_value("#id_callback_aes_key")
    assert re.fullmatch(r"[A-Za-z0-9]{32}", token) and re.fullmatch(r"[A-Za-z0-9]{43}", aes_key)
    page.click("[data-testid=save-settings]")
    expect(page.locator(".alert-success")).to_contain_text("企业微信设置已保存")
    row = WeComSettings.objects.get()
    assert (row.corp_id, row.agent_id, row.contact_secret) == ("ww5iyu0000demo0001", "1000002", CONTACT_SECRET)
    assert (row.callback_token, row.callback_aes_key) == (token, aes_key)
    expect(page.locator("[data-field=contact_secret] .source")).to_have_text("控制台")
    expect(page.locator("[data-effective=contact_secret]")).to_have_text("••••••••" + CONTACT_SECRET[-4:])
    html = page.content()
    assert CONTACT_SECRET not in html and aes_key not in html and token not in html
    assert page.input_value("#id_contact_secret") == ""  # never re-rendered
    screenshot(page, "settings-zh-hans")

    # English, on the same page
    page.click("[data-testid=lang-en]")
    expect(page.locator(".page-head h1")).to_have_text("WeCom settings")
    expect(page).to_have_url(re.compile(r"/settings/wecom/$"))
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("[data-field=contact_secret] .source")).to_have_text("Console")
    expect(page.locator(".nav-link.active, .nav-sublink.active")).to_have_text("WeCom")
    screenshot(page, "settings-en")

    # saving again in English with the secrets left empty keeps them
    page.fill("#id_agent_id", "1000003")
    page.click("[data-testid=save-settings]")
    expect(page.locator(".alert-success")).to_contain_text("WeCom settings saved")
    row.refresh_from_db()
    assert row.agent_id == "1000003" and row.contact_secret == CONTACT_SECRET and row.callback_aes_key == aes_key

    page.click(".nav-link:has-text('Overview')")
    expect(page.locator(".page-head h1")).to_have_text("Overview")
    expect(page.locator("[data-counter=customers] .stat-label")).to_have_text("Active customers")
    screenshot(page, "overview-en")

    # back to Chinese, then sign out
    page.click("[data-testid=lang-zh-hans]")
    expect(page.locator(".page-head h1")).to_have_text("概览")
    page.click("[data-testid=logout]")
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
    page.goto("/settings/wecom/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/settings/wecom/$"))


def test_test_connection_button_swaps_in_the_result_without_a_reload(page, make_login, sign_in, sim, screenshot):
    from tests.conftest import point_product_at

    make_login("admin")
    point_product_at(sim)
    sign_in(page, "admin")
    page.goto("/settings/wecom/")
    page.evaluate("window.__notReloaded = true")
    page.click("[data-testid=test-connection]")
    result = page.locator("#test-result [data-kind=contact]")
    expect(result).to_have_attribute("data-ok", "1")
    expect(result).to_contain_text("连接成功")
    assert page.evaluate("window.__notReloaded") is True  # htmx swapped a fragment in
    # the status panel was refreshed out of band with the call just made
    expect(page.locator("#connection-status .pill")).to_have_text("正常")
    expect(page.locator("#connection-status")).to_contain_text("gettoken")
    expect(page.locator("#connection-status")).to_have_count(1)
    screenshot(page, "settings-test-connection-zh-hans")


def test_callback_payload_opens_in_place_and_is_escaped(page, make_login, sign_in):
    make_login("admin")
    row = CallbackInbox.objects.create(
        dedupe_key="b1",
        event="change_external_contact",
        change_type="edit_external_contact",
        payload="<xml><Remark><![CDATA[<img src=x onerror=window.__pwned=1>]]></Remark></xml>",
        status="failed",
        error="boom",
    )
    sign_in(page, "admin")
    page.goto("/settings/wecom/callbacks/")
    page.click(f"button[hx-get$='/callbacks/{row.id}/']")
    pre = page.locator(f"#payload-{row.id} pre").first
    expect(pre).to_contain_text("<img src=x onerror=window.__pwned=1>")
    assert page.evaluate("window.__pwned") is None
    page.click("button:has-text('重新处理')")
    expect(page.locator(".alert-success")).to_contain_text(f"#{row.id}")
    row.refresh_from_db()
    assert row.status == "pending"


def test_an_operator_sees_no_settings_and_is_refused_them(page, make_login, sign_in):
    make_login("op", role="operator")
    sign_in(page, "op")
    expect(page.locator(".role-badge")).to_have_text("运营")
    expect(page.locator(".nav-group-title:has-text('设置')")).to_have_count(0)
    expect(page.locator("[data-panel=wecom]")).to_have_count(0)
    page.goto("/settings/wecom/")
    expect(page.locator(".page-head h1")).to_have_text("无权访问")
