"""The mass-message composer in headless Chromium, without an emulator (issue 16): the channel is
picked by its name, and a variable mass messages do not fill is refused with the allowed ones."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from siyu.broadcasts.models import Broadcast
from siyu.channels.models import ChannelCode
from tests.browser.conftest import pick

pytestmark = pytest.mark.browser


def test_channel_picked_by_name_and_unknown_variables_refused(transactional_db, page, make_login, sign_in):
    code = ChannelCode.objects.create(name="门店海报·静安店", config_id="cfg-jingan")
    make_login("admin")
    sign_in(page, "admin")
    page.goto("/broadcasts/new/")
    page.fill("#id_name", "静安店会员日")
    page.fill("#id_text", "{nickname}，本周六会员日")
    pick(page, "state", "静安", "门店海报·静安店", value=code.state)
    page.click("[data-testid=save-draft]")
    # refused: WeCom would deliver {nickname} as typed; the error names the variable that works
    expect(page.locator("#compose-form")).to_contain_text("不支持的变量：{nickname}")
    expect(page.locator("#compose-form")).to_contain_text("{员工姓名}")
    assert not Broadcast.objects.exists()
    # the channel stays chosen, by name
    expect(page.locator("[data-testid=picker-state] .picker-chip")).to_contain_text("门店海报·静安店")
    page.fill("#id_text", "{员工姓名}：本周六会员日")
    page.click("[data-testid=save-draft]")
    page.wait_for_url("**/broadcasts/*/")
    assert Broadcast.objects.get().audience["state"] == code.state
