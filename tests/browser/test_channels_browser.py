"""渠道活码 in headless Chromium: create a multi-employee code with a schedule and a welcome with
an image, download its PNG, scan it in the emulator, see the customer arrive tagged with the
welcome recorded, and the code's chart update."""

from __future__ import annotations

import json
import re
import time

import pytest
from playwright.sync_api import expect

from siyu.channels import services
from siyu.channels.models import ChannelAdd, ChannelCode, WelcomeSend
from siyu.customers.models import FollowTag, Tag
from siyu.sync.services import run_full_sync
from siyu.wecom import inbox
from siyu.wecom.models import CallbackInbox
from tests.browser.conftest import pick
from tests.sim.helpers import employee, png_bytes

pytestmark = pytest.mark.browser


def test_create_download_scan_and_see_it(live_callbacks, page, make_login, sign_in, screenshot, tmp_path):
    sim = live_callbacks
    a, b = employee(sim), employee(sim)
    assert run_full_sync().status == "done"
    tag = Tag.objects.filter(deleted=False).order_by("id").first()
    make_login("admin")
    sign_in(page, "admin")
    page.click(".nav-sublink:has-text('渠道活码')")
    expect(page).to_have_url(re.compile(r"/channels/$"))
    page.click("[data-testid=code-create]")
    page.fill("#id_name", "门店海报<b>春季</b>")
    for userid in (a, b):
        pick(page, "users", userid, f"测试员工{userid}", value=userid)
    for day in range(7):
        page.check(f"#id_slot_days_{day}")
    page.fill("#id_slot_start", "00:00")
    page.fill("#id_slot_end", "23:59")
    page.fill("#id_daily_cap", "50")
    pick(page, "tag_ids", tag.name, tag.name, value=tag.tag_id)
    page.fill("#id_remark_template", "{channel}")
    page.fill("#id_welcome_text", "你好 {nickname}，我是{employee}")
    img = tmp_path / "welcome.png"
    img.write_bytes(png_bytes())
    page.click("[data-testid=att-add-image]")
    page.set_input_files("[name=att-0-upload]", str(img))
    page.click("[data-testid=code-save]")
    expect(page.locator("[data-testid=code-name]")).to_have_text("门店海报<b>春季</b>")  # escaped, shown as text
    code = ChannelCode.objects.get()
    assert code.users == [a, b] and len(code.schedule) == 1 and code.schedule[0]["days"] == list(range(7))
    assert code.welcome["attachments"][0]["msgtype"] == "image"
    expect(page.locator("[data-testid=active-users]")).to_contain_text(a)

    with page.expect_download() as dl:
        page.click("[data-testid=png-l]")
    png = tmp_path / "qr.png"
    dl.value.save_as(str(png))
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    assert Image.open(png).size == (860, 860)

    before = CallbackInbox.objects.count()
    scan = sim.control("scan", {"config_id": code.config_id, "name": "扫码小王"})
    deadline = time.time() + 20
    while CallbackInbox.objects.count() < before + 2:  # skip-verify: add_half + add_external
        assert time.time() < deadline
        time.sleep(0.05)
    while inbox.process_pending(limit=50, worker_id="test"):
        pass
    services.wait_decorations()
    ext = scan["external_userid"]
    assert ChannelAdd.objects.filter(code=code, external_userid=ext).count() == 1
    sent = WelcomeSend.objects.get(external_userid=ext)
    assert sent.status == WelcomeSend.SENT and "扫码小王" in sent.payload["text"]["content"]
    log = sim.control("welcome_log", {"external_userid": ext})["welcome_codes"]
    assert log[0]["used_at"] is not None and log[0]["sent_payload"]["attachments"][0]["msgtype"] == "image"

    # The session's emulator clock may have been advanced by earlier tests (its day can be past
    # ours): look at the 30 days that end on the add's day.
    day = ChannelAdd.objects.get(code=code, external_userid=ext).day
    page.goto(f"{page.url.split('?')[0]}?end={day.isoformat()}")
    expect(page.locator("[data-testid=total-new]")).to_have_text("1")
    expect(page.locator("[data-testid=welcome-sent]")).to_have_text("1")
    chart = json.loads(page.locator("#code-chart-data").text_content())
    assert chart["series"][0]["data"][-1] == 1
    assert page.locator("[data-testid=code-chart] canvas").count() == 1
    screenshot(page, "channels-detail")

    # the customer arrived tagged, with the channel's remark
    assert FollowTag.objects.filter(relation__customer__external_userid=ext, tag=tag).exists()
    page.goto("/customers/")
    page.click("[data-customer] a:has-text('扫码小王')")
    expect(page.locator("[data-testid=relation-tags]").first).to_contain_text(tag.name)

    page.goto(f"/channels/analytics/?start={day.isoformat()}&end={day.isoformat()}")
    chart = json.loads(page.locator("#analytics-chart-data").text_content())
    assert sum(chart["series"][0]["data"]) == 1


def test_mini_program_welcome_previewed_saved_and_sent(live_callbacks, page, make_login, sign_in, screenshot, tmp_path):
    """A channel code with a mini-program welcome: the phone frame shows the card and the filled
    variables as the operator types; once saved, a scan makes the product send it through WeCom
    with the cover uploaded by the product (no media id typed anywhere)."""
    sim = live_callbacks
    a = employee(sim)
    assert run_full_sync().status == "done"
    make_login("admin")
    sign_in(page, "admin")
    page.goto("/channels/new/")
    page.fill("#id_name", "小程序欢迎")
    pick(page, "users", a, f"测试员工{a}", value=a)
    page.fill("#id_welcome_text", "你好 {nickname}，我是{employee}")
    frame = page.locator("[data-testid=phone-preview]")
    expect(frame.locator("[data-testid=bubble-text]")).to_contain_text("你好 王小明，我是李娜")
    expect(frame.locator("[data-limit-text]")).to_have_text(str(len("你好 {nickname}，我是{employee}".encode())))
    page.click("[data-testid=att-add-miniprogram]")
    page.fill("[name=att-0-title]", "会员中心")
    page.fill("[name=att-0-appid]", "wx8bd80126147dfa01")
    page.fill("[name=att-0-page]", "pages/member/index")
    cover = tmp_path / "cover.png"
    cover.write_bytes(png_bytes())
    page.set_input_files("[name=att-0-upload]", str(cover))
    card = frame.locator("[data-testid=bubble-miniprogram]")
    expect(card).to_contain_text("会员中心")
    expect(card.locator(".card-cover img")).to_have_count(1)
    expect(frame.locator("[data-limit-count]")).to_have_text("1")
    # a video row then removed: the count follows
    page.click("[data-testid=att-add-video]")
    expect(frame.locator("[data-limit-count]")).to_have_text("2")
    page.locator("[data-att-row]").nth(1).locator(".att-delete").click()
    expect(frame.locator("[data-limit-count]")).to_have_text("1")
    screenshot(page, "channels-miniprogram-preview")
    page.click("[data-testid=code-save]")
    expect(page.locator("[data-testid=code-name]")).to_have_text("小程序欢迎")
    expect(page.locator("[data-testid=welcome-preview] [data-testid=bubble-miniprogram]")).to_contain_text("会员中心")
    code = ChannelCode.objects.get(name="小程序欢迎")
    mp = code.welcome["attachments"][0]
    assert mp["msgtype"] == "miniprogram" and mp["miniprogram"]["appid"] == "wx8bd80126147dfa01"
    assert code.config_id  # the contact way exists in WeCom

    before = CallbackInbox.objects.count()
    scan = sim.control("scan", {"config_id": code.config_id, "name": "小程序客户"})
    deadline = time.time() + 20
    while CallbackInbox.objects.count() < before + 2:
        assert time.time() < deadline
        time.sleep(0.05)
    while inbox.process_pending(limit=50, worker_id="test"):
        pass
    ext = scan["external_userid"]
    sent = WelcomeSend.objects.get(external_userid=ext)
    assert sent.status == WelcomeSend.SENT, sent.error
    log = sim.control("welcome_log", {"external_userid": ext})["welcome_codes"]
    payload = log[0]["sent_payload"]
    assert "小程序客户" in payload["text"]["content"]
    got = payload["attachments"][0]
    assert got["msgtype"] == "miniprogram" and got["miniprogram"]["title"] == "会员中心"
    assert got["miniprogram"]["pic_media_id"]  # uploaded by the product
