"""The phone-frame preview in headless Chromium, without an emulator: the mass-message composer's
preview follows the message kind (its limits and allowed attachment types) and fills the
variables; the default-welcome editor adds, reorders and removes attachment rows."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.broadcasts.helpers import png_bytes

pytestmark = pytest.mark.browser


def test_composer_preview_follows_the_kind_and_limits(
    transactional_db, page, make_login, sign_in, screenshot, tmp_path
):
    make_login("admin")
    sign_in(page, "admin")
    page.goto("/broadcasts/new/")
    frame = page.locator("[data-testid=phone-preview]")
    page.fill("#id_text", "{员工姓名}提醒您：会员日 <b>不是HTML</b>")
    expect(frame.locator("[data-testid=bubble-text] .bubble")).to_have_text("李娜提醒您：会员日 <b>不是HTML</b>")
    img = tmp_path / "poster.png"
    img.write_bytes(png_bytes())
    page.set_input_files("[data-testid=image-input]", str(img))
    expect(frame.locator("[data-testid=bubble-image] img")).to_have_count(1)
    page.fill("#id_link_title", "会员日")
    page.fill("#id_link_url", "https://shop.example.com/day")
    expect(frame.locator("[data-testid=bubble-link]")).to_contain_text("会员日")
    expect(frame.locator("[data-limit-count]")).to_have_text("2")
    expect(frame.locator("[data-limit-error]")).to_be_hidden()
    # Moments: 2000 characters, and images cannot be mixed with a link
    page.select_option("#id_kind", "moment")
    expect(frame.locator("[data-limit-text]")).to_have_text(str(len("{员工姓名}提醒您：会员日 <b>不是HTML</b>")))
    expect(frame.locator("[data-phone-limits]")).to_contain_text("2000")
    expect(frame.locator("[data-limit-error]")).to_be_visible()
    page.fill("#id_mp_title", "会员中心")
    page.fill("#id_mp_appid", "wx8bd80126147dfa01")
    expect(frame.locator("[data-limit-error]")).to_contain_text("小程序")
    screenshot(page, "broadcast-moment-preview")
    page.select_option("#id_kind", "customer")
    expect(frame.locator("[data-limit-error]")).to_be_hidden()
    expect(frame.locator("[data-testid=bubble-miniprogram]")).to_contain_text("会员中心")


def test_default_welcome_editor_rows(transactional_db, page, make_login, sign_in, screenshot):
    make_login("admin")
    sign_in(page, "admin")
    page.goto("/channels/welcomes/")
    frame = page.locator("[data-testid=phone-preview]")
    page.fill("#id_text", "你好 {nickname}")
    for kind in ("link", "file", "link"):
        page.click(f"[data-testid=att-add-{kind}]")
    rows = page.locator("[data-att-row]")
    expect(rows).to_have_count(3)
    page.fill("[name=att-0-title]", "第一")
    page.fill("[name=att-2-title]", "第三")
    links = frame.locator("[data-testid=bubble-link] .card-title")
    expect(links).to_have_text(["第一", "第三"])
    third = page.locator("[data-att-row]:has([name=att-2-title])")
    third.locator("[data-att-up]").click()  # the third row moves above the file, then above the first
    third.locator("[data-att-up]").click()
    expect(links).to_have_text(["第三", "第一"])
    expect(page.locator("[name=att-2-ORDER]")).to_have_value("1")
    page.locator("[data-att-row]:has([name=att-0-title])").locator(".att-delete").click()  # "第一" removed
    expect(links).to_have_text(["第三"])
    expect(frame.locator("[data-limit-count]")).to_have_text("2")
    # only the fields of the row's kind are shown
    expect(page.locator("[name=att-1-appid]")).to_be_hidden()  # the file row shows no mini-program field
    expect(page.locator("[name=att-1-upload]")).to_be_visible()
    screenshot(page, "default-welcome-editor")
