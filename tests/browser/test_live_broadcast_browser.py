"""A mass message's results update by themselves (issue 16 item 3): composed to a tag in the
console, sent, confirmed by the emulator's employees; the task page shows the employees' progress
and the received count without any click or reload, and stops refreshing once final."""

from __future__ import annotations

import re

import pytest
from django.test import override_settings
from playwright.sync_api import expect

from siyu.broadcasts.models import Batch, Broadcast, Recipient
from siyu.core.worker import Worker
from siyu.sync.services import run_full_sync
from tests.broadcasts.helpers import busiest_tag
from tests.browser.conftest import pick
from tests.conftest import point_product_at

pytestmark = pytest.mark.browser


@override_settings(SIYU_BROADCAST_POLL_S=1, SIYU_BROADCAST_SYNC_FIRST_S=0, SIYU_BROADCAST_SYNC_FAST_S=2)
def test_results_update_without_a_click(sim, transactional_db, page, make_login, sign_in, screenshot):
    point_product_at(sim)
    assert run_full_sync().status == "done"
    tag = busiest_tag(min_customers=3)
    make_login("admin")
    sign_in(page, "admin")

    page.click(".nav-sublink:has-text('新建群发')")
    page.fill("#id_name", "会员日提醒")
    page.fill("#id_text", "{员工姓名}：本周六会员日，全场九折")
    pick(page, "tags", tag.name, tag.name, value=tag.id)
    page.click("[data-testid=send]")
    page.wait_for_url("**/broadcasts/*/")
    b = Broadcast.objects.get(name="会员日提醒")
    # an immediate send is not "定时" with zeros: it is being created
    expect(page.locator("[data-testid=broadcast-status]")).not_to_have_text("定时")

    Worker(interval=0.05).run(max_idle_s=1.0)  # start timer → execute → first result sync
    b.refresh_from_db()
    assert b.status == Broadcast.SENT, b.error
    live = page.locator("[data-testid=live-status]")
    expect(live.locator("[data-testid=progress-label]")).to_have_text("等待员工发送", timeout=10_000)
    expect(live).to_have_attribute("data-live", "1")
    # the heading's badge follows the polled fragment, and the page says when the next read is due
    expect(page.locator("[data-testid=broadcast-status]")).to_have_text("等待员工发送")
    expect(page.locator("[data-testid=next-sync]")).to_have_text(re.compile(r"^下次同步：\d\d:\d\d$"))
    expect(page.locator("[data-testid=broadcast-actions] [data-testid=sync]")).to_have_count(1)
    batches = list(Batch.objects.filter(broadcast=b, status=Batch.SENT))
    assert batches
    expect(page.locator("[data-testid=employee-table] tr[data-confirmed='0']")).to_have_count(len(batches))

    # the employees confirm in 群发助手 (the emulator's control API); the worker's timer reads it
    for bt in batches:
        sim.control("mass/confirm", {"msgid": bt.msgid, "userid": bt.userid})
    Worker(interval=0.05).run(max_idle_s=3.0)
    received = Recipient.objects.filter(broadcast=b, state=Recipient.RECEIVED).count()
    assert received > 0
    # no click, no reload: the polled fragment shows it
    expect(page.locator("[data-testid=received]")).to_have_text(str(received), timeout=10_000)
    expect(live.locator("[data-testid=progress-label]")).to_have_text("已完成")
    expect(page.locator("[data-testid=employee-table] tr[data-confirmed='1']")).to_have_count(len(batches))
    expect(page.locator("[data-testid=funnel] canvas")).to_have_count(1)
    # final: the page stopped polling (the server answered 286)
    expect(page.locator("[data-testid=live-status]")).to_have_attribute("data-live", "0")
    # the heading's badge and the actions too, without a reload: final, nothing left to sync or remind
    expect(page.locator("[data-testid=broadcast-status]")).to_have_text("已完成")
    expect(page.locator("[data-testid=broadcast-actions] [data-testid=sync]")).to_have_count(0)
    expect(page.locator("[data-testid=broadcast-actions]")).not_to_contain_text("提醒未发送的员工")
    expect(page.locator("[data-testid=next-sync]")).to_have_count(0)
    screenshot(page, "broadcast-live-results")

    # the list shows the same, in words
    page.goto("/broadcasts/")
    row = page.locator(f"tr[data-broadcast='{b.id}']")
    expect(row.locator("[data-testid=progress-label]")).to_have_text("已完成")
    expect(row.locator("[data-testid=progress]")).to_contain_text(f"{received}/")
