"""Tag management, groups, employees and the sync page in a real browser, against the emulator."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from siyu.customers.models import Tag, TagGroup
from siyu.groups.models import GroupChat
from siyu.sync.services import run_full_sync
from tests.sync.test_sync_callbacks import World

pytestmark = pytest.mark.browser


def test_tags_created_in_the_console_reach_wecom_and_admin_changes_come_back(
    page, live_callbacks, make_login, sign_in, screenshot
):
    sim = live_callbacks
    run_full_sync(workers=2)
    world = World(sim)
    make_login("admin")
    sign_in(page, "admin")

    page.click(".nav-link:has-text('客户标签')")
    expect(page).to_have_url(re.compile(r"/tags/$"))
    expect(page.locator(".page-head h1")).to_have_text("客户标签")
    groups_before = page.locator("[data-testid=tag-group]").count()
    assert groups_before == TagGroup.objects.filter(deleted=False).count()

    # create a group with a hostile tag name: it reaches WeCom and renders as text
    name = f"浏览器组{uuid.uuid4().hex[:4]}"
    evil = "<img src=x onerror=alert(1)>"
    page.fill("[data-testid=group-name]", name)
    page.fill("[data-testid=group-tags]", f"金卡, {evil}")
    page.click("[data-testid=group-create-submit]")
    expect(page.locator(".alert-success")).to_contain_text(name)
    card = page.locator("[data-testid=tag-group]").first
    expect(card.locator("[data-testid=group-title]")).to_have_text(name)
    expect(card.locator("[data-testid=tag-name]")).to_have_text(["金卡", evil])
    wecom = next(g for g in sim.call("externalcontact/get_corp_tag_list", {})["tag_group"] if g["group_name"] == name)
    assert [t["name"] for t in wecom["tag"]] == ["金卡", evil]
    screenshot(page, "tags-zh-hans")

    # a refusal is shown: a name over 30 characters
    card.locator("[data-testid=tags-add] input[name=tags]").fill("长" * 31)
    card.locator("[data-testid=tags-add] button").click()
    expect(page.locator(".alert-error")).to_contain_text("40072")

    # an admin adds a tag to the group in WeCom's admin console: the callback brings it here
    world.process()  # the console's own changes echoed back by WeCom: nothing changes
    sim.control("tags/admin_create", {"group_id": wecom["group_id"], "tags": ["银卡"]})
    world.process()
    page.reload()
    card = page.locator(f"[data-group='{wecom['group_id']}']")
    expect(card.locator("[data-testid=tag-name]")).to_contain_text(["金卡", evil, "银卡"])

    # delete the group from the console (confirm dialog accepted)
    page.once("dialog", lambda d: d.accept())
    card.locator("[data-testid=group-delete]").click()
    expect(page.locator(".alert-success")).to_be_visible()
    expect(page.locator(f"[data-group='{wecom['group_id']}']")).to_have_count(0)
    assert TagGroup.objects.get(group_id=wecom["group_id"]).deleted
    assert not Tag.objects.filter(group__group_id=wecom["group_id"], deleted=False).exists()

    # groups, a group's detail, employees and the sync page
    page.click(".nav-link:has-text('客户群')")
    expect(page.locator("[data-testid=group-row]").first).to_be_visible()
    page.locator("[data-testid=group-link]").first.click()
    expect(page.locator("[data-testid=member-row]").first).to_be_visible()
    page.click(".nav-link:has-text('员工')")
    expect(page.locator("[data-testid=employee-row]").first).to_be_visible()
    page.goto("/settings/sync/")
    expect(page.locator("[data-testid=sync-run-status]")).to_have_text("完成")
    page.click("[data-testid=sync-now]")
    expect(page.locator("[data-testid=sync-queued]")).to_be_visible()
    screenshot(page, "sync-zh-hans")
    assert GroupChat.objects.exists()


def test_a_guide_sees_read_only_tags_and_only_their_groups(page, live_callbacks, make_login, sign_in):
    run_full_sync(workers=2)
    owner = GroupChat.objects.filter(owner__isnull=False).values_list("owner__userid", flat=True).first()
    make_login("guide", "guide", wecom_userid=owner)
    sign_in(page, "guide")
    page.goto("/tags/")
    expect(page.locator("[data-testid=tag-group]").first).to_be_visible()
    expect(page.locator("[data-testid=group-create]")).to_have_count(0)
    expect(page.locator("[data-testid=tag-delete]")).to_have_count(0)
    page.goto("/groups/")
    n = GroupChat.objects.filter(owner__userid=owner).count()
    expect(page.locator("[data-testid=group-row]")).to_have_count(min(n, 50))
    other = GroupChat.objects.exclude(owner__userid=owner).first()
    response = page.goto(f"/groups/{other.id}/")
    assert response.status == 403
