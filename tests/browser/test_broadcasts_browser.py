"""Broadcast composer in headless Chromium: compose with an image to a tag filter, see the
estimate, send, confirm in the emulator, see the funnel and the per-recipient results."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from siyu.broadcasts.models import Batch, Broadcast, Recipient
from siyu.core.worker import Worker
from siyu.sync.services import run_full_sync
from tests.broadcasts.helpers import busiest_tag, png_bytes
from tests.browser.conftest import pick
from tests.conftest import point_product_at

pytestmark = pytest.mark.browser


def test_compose_estimate_send_confirm_and_see_results(
    sim, transactional_db, page, make_login, sign_in, screenshot, tmp_path
):
    point_product_at(sim)
    assert run_full_sync().status == "done"
    tag = busiest_tag(min_customers=5)
    make_login("admin")
    sign_in(page, "admin")

    page.click(".nav-sublink:has-text('新建群发')")
    page.fill("#id_name", "双十一预热")
    page.fill("#id_text", "{员工姓名}提醒您：双十一会员价 <b>不是HTML</b>")
    img = tmp_path / "poster.png"
    img.write_bytes(png_bytes())
    page.set_input_files("[data-testid=image-input]", str(img))
    pick(page, "tags", tag.name, tag.name, value=tag.id)
    page.click("[data-testid=estimate-button]")
    est = page.locator("[data-testid=estimate-recipients]")
    expect(est).to_be_visible()
    estimated = int(est.inner_text())
    assert estimated > 0
    screenshot(page, "broadcast-compose")

    page.click("[data-testid=send]")
    page.wait_for_url("**/broadcasts/*/")
    b = Broadcast.objects.get(name="双十一预热")
    assert b.attachments[0]["type"] == "image"
    Worker(interval=0.05).run(max_idle_s=1.0)  # the timer, then the execution task
    b.refresh_from_db()
    assert b.status == Broadcast.SENT, b.error
    assert Recipient.objects.filter(broadcast=b).exclude(state=Recipient.SKIPPED).count() == estimated

    # every employee confirms in the emulator (群发助手 → 发送)
    for bt in Batch.objects.filter(broadcast=b, status=Batch.SENT):
        sim.control("mass/confirm", {"msgid": bt.msgid, "userid": bt.userid})
    page.reload()
    page.click("[data-testid=sync]")
    page.wait_for_load_state()
    received = Recipient.objects.filter(broadcast=b, state=Recipient.RECEIVED).count()
    assert received > 0
    expect(page.locator("[data-testid=received]")).to_have_text(str(received))
    expect(page.locator("[data-testid=funnel] canvas")).to_have_count(1)
    rows = page.locator("[data-testid=recipient-table] tr[data-state=received]")
    expect(rows.first).to_be_visible()
    assert rows.count() == min(received, 200)
    assert "<b>" not in page.locator("[data-testid=broadcast-name]").inner_html()
    screenshot(page, "broadcast-detail")
