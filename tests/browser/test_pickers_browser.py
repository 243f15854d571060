"""Pickers in headless Chromium, with names, never ids: a channel code for two employees found
by typing part of their name and a store chosen from the department tree, with a mini-program
welcome previewed in the phone frame; a group QR code over
two groups picked by name (its list then shows their names); a 新建群发 to a tag picked as a
chip."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from siyu.broadcasts.models import Broadcast
from siyu.channels.models import ChannelCode, GroupCode
from siyu.customers.models import Tag
from siyu.groups.models import GroupChat
from siyu.sync.services import run_full_sync
from tests.browser.conftest import pick
from tests.conftest import point_product_at
from tests.sim.helpers import png_bytes, uid

pytestmark = pytest.mark.browser


def test_channel_code_for_two_employees_by_name_and_a_store_from_the_tree(
    sim, transactional_db, page, make_login, sign_in, screenshot, tmp_path
):
    point_product_at(sim)
    store = sim.control("department/create", {"name": f"徐汇门店{uid('d')[-4:]}", "parentid": 1})["department"]
    a = sim.control("employee/create", {"userid": uid("xa"), "name": "许小娟", "department": [store["id"]]})["user"]
    b = sim.control("employee/create", {"userid": uid("xb"), "name": "许小文", "department": [store["id"]]})["user"]
    assert run_full_sync().status == "done"
    make_login("admin")
    sign_in(page, "admin")

    page.goto("/channels/new/")
    page.fill("#id_name", "门店海报")
    page.select_option("#id_kind", "store")
    # the store: open the department tree and click the store
    dept = page.locator("[data-testid=picker-department_id]")
    dept.locator("[data-picker-tree-toggle]").click()
    dept.locator(".picker-tree-name", has_text=store["name"]).click()
    expect(dept.locator(".picker-chip", has_text=store["name"])).to_have_count(1)
    # two employees by part of their name ("许小"), picked with the mouse and the keyboard
    users = pick(page, "users", "许小", "许小娟")
    search = users.locator("[data-picker-search]")
    search.fill("许小文")
    expect(users.locator(".picker-option")).to_have_count(1)
    expect(users.locator(".picker-option.active")).to_contain_text("许小文")
    search.press("Enter")
    expect(users.locator(".picker-chip")).to_have_count(2)
    expect(users.locator(".picker-chip", has_text="许小文")).to_contain_text(b["userid"])  # the account: secondary
    # the tree beside the search filters it to a department's subtree
    search.fill("")
    users.locator("[data-picker-tree-toggle]").click()
    users.locator(".picker-tree-name", has_text=store["name"]).click()
    expect(users.locator("[data-picker-filter]")).to_contain_text(store["name"])
    expect(users.locator(".picker-option")).to_have_count(2)
    expect(users.locator(".picker-option.chosen")).to_have_count(2)  # both already chosen, marked so
    # a mini-program welcome, previewed in the phone frame with the variables filled as typed
    page.fill("#id_welcome_text", "你好 {nickname}，欢迎来到门店")
    frame = page.locator("[data-testid=phone-preview]")
    expect(frame.locator("[data-testid=bubble-text]")).to_contain_text("你好 王小明，欢迎来到门店")
    page.click("[data-testid=att-add-miniprogram]")
    page.fill("[name=att-0-title]", "门店会员中心")
    page.fill("[name=att-0-appid]", "wx8bd80126147dfa01")
    page.fill("[name=att-0-page]", "pages/member/index")
    cover = tmp_path / "cover.png"
    cover.write_bytes(png_bytes())
    page.set_input_files("[name=att-0-upload]", str(cover))
    expect(frame.locator("[data-testid=bubble-miniprogram]")).to_contain_text("门店会员中心")
    screenshot(page, "picker-channel-code")
    page.click("[data-testid=code-save]")
    expect(page.locator("[data-testid=code-name]")).to_have_text("门店海报")
    expect(page.locator("[data-testid=code-users]")).to_contain_text("许小娟")  # names; accounts as grey text
    code = ChannelCode.objects.get(name="门店海报")
    assert code.users == [a["userid"], b["userid"]]
    assert code.department_id == store["id"] and code.kind == ChannelCode.STORE
    assert [a["msgtype"] for a in code.welcome["attachments"]] == ["miniprogram"]

    # editing shows the chosen as names
    page.goto(f"/channels/{code.id}/edit/")
    expect(page.locator("[data-testid=picker-users] .picker-chip")).to_have_text(
        [re.compile("许小娟"), re.compile("许小文")]
    )
    expect(page.locator("[data-testid=picker-department_id] .picker-chip")).to_contain_text(store["name"])


def test_group_code_from_two_groups_picked_by_name(sim, transactional_db, page, make_login, sign_in, screenshot):
    point_product_at(sim)
    assert run_full_sync().status == "done"
    groups = list(GroupChat.objects.filter(status=GroupChat.ACTIVE).exclude(name="").order_by("id")[:2])
    assert len(groups) == 2
    make_login("admin")
    sign_in(page, "admin")
    page.goto("/channels/groups/")
    page.fill("#id_name", "会员福利群")
    for g in groups:
        pick(page, "chat_ids", g.name, g.name)
    screenshot(page, "picker-group-code")
    page.click("[data-testid=group-code-save]")
    expect(page.locator("[data-testid=group-code-row]")).to_have_count(1)
    code = GroupCode.objects.get(name="会员福利群")
    assert code.chat_ids == [g.chat_id for g in groups]
    cell = page.locator("[data-testid=group-code-groups]")
    for g in groups:
        expect(cell).to_contain_text(g.name)
    assert groups[0].chat_id not in cell.inner_text()  # names, not chat ids


def test_broadcast_to_a_tag_picked_as_a_chip(sim, transactional_db, page, make_login, sign_in, screenshot):
    point_product_at(sim)
    assert run_full_sync().status == "done"
    tag = Tag.objects.filter(deleted=False).select_related("group").order_by("id").first()
    make_login("admin")
    sign_in(page, "admin")
    page.goto("/broadcasts/new/")
    page.fill("#id_name", "新品通知")
    page.fill("#id_text", "新品到店")
    tags = page.locator("[data-testid=picker-tags]")
    tags.locator("[data-picker-search]").click()  # an empty search lists the library, grouped
    expect(tags.locator(".picker-group", has_text=tag.group.name)).to_have_count(1)
    pick(page, "tags", tag.name, tag.name, value=tag.id)
    expect(tags.locator(".picker-chip")).to_contain_text(tag.group.name)  # the chip names its tag group
    screenshot(page, "picker-broadcast-compose")
    page.click("[data-testid=save-draft]")
    page.wait_for_url("**/broadcasts/*/")
    b = Broadcast.objects.get(name="新品通知")
    assert b.audience["tags"] in ([str(tag.id)], [tag.id])
