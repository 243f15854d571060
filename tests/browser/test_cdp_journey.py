"""The customer-data journey in headless Chromium, against the emulator: import an orders file from
the console, build a segment with nested AND/OR (a tag, and: loyal or bought a ring) and watch the
count follow each condition, save it, send a mass message to it (the employees confirm in the
emulator), and open a member's 360° profile and see their imported order."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from siyu.accounts.selectors import DataScope
from siyu.broadcasts.models import Batch, Broadcast, Recipient
from siyu.commerce.models import Order
from siyu.core.worker import Worker
from siyu.customers.models import Customer
from siyu.insights.models import Metrics
from siyu.profiles import services as profile_services
from siyu.profiles.models import Profile, ProfileKey
from siyu.segments import services as segment_services
from siyu.segments.models import Segment, Snapshot
from siyu.sync.services import run_full_sync
from tests.broadcasts.helpers import busiest_tag
from tests.browser.conftest import pick
from tests.conftest import point_product_at

pytestmark = pytest.mark.browser
EVERYTHING = DataScope(everything=True)


def give_metrics() -> None:
    """Lifecycle stages and RFM classes (part C computes them from orders; written here)."""
    now = timezone.now()
    persons = Profile.objects.filter(merged_into__isnull=True).order_by("id").values_list("id", flat=True)
    for i, pid in enumerate(persons):
        Metrics.objects.update_or_create(
            profile_id=pid,
            defaults={
                "stage": "loyal" if i % 3 == 0 else "new",
                "rfm_class": "important_value" if i % 4 == 0 else "normal_value",
                "computed_at": now,
            },
        )


def expect_count(page, definition) -> int:
    n = segment_services.count(definition, EVERYTHING)
    expect(page.locator("[data-testid=segment-count-persons]")).to_have_text(str(n))
    return n


def orders_file(external_userids: list[str]) -> bytes:
    """An orders CSV (part A's columns): one ring each, paid a few days ago."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["order_no", "source", "external_userid", "paid_at", "amount", "status", "item_sku", "item_name",
                "item_category", "item_brand", "item_quantity", "item_price"])  # fmt: skip
    paid = (timezone.localtime() - timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S")
    for i, ext in enumerate(external_userids):
        w.writerow([f"SO{9000 + i}", "pos", ext, paid, "1299.00", "paid", "RING-1", "戒指", "戒指", "甲", 1, "1299.00"])
    return out.getvalue().encode("utf-8")


def test_import_build_a_segment_send_to_it_and_open_a_member(
    sim, transactional_db, page, make_login, sign_in, screenshot, tmp_path
):
    point_product_at(sim)
    assert run_full_sync().status == "done"
    assert profile_services.link_backfill() > 0  # every WeCom customer is a person
    give_metrics()
    tag = busiest_tag(min_customers=10)
    make_login("admin")
    sign_in(page, "admin")

    # import an orders file from the console: a ring for every other customer carrying the tag
    buyers = list(
        Customer.objects.filter(relations__follow_tags__tag=tag)
        .distinct()
        .order_by("id")
        .values_list("external_userid", flat=True)
    )[::2]
    orders_csv = tmp_path / "orders.csv"
    orders_csv.write_bytes(orders_file(buyers))
    page.click(".nav-sublink:has-text('数据导入')")
    page.select_option("select[name=kind]", "orders")
    page.set_input_files("[data-testid=import-file]", str(orders_csv))
    page.click("[data-testid=import-submit]")
    page.wait_for_url("**/commerce/imports/*/")
    Worker(interval=0.05).run(max_idle_s=1.0)  # the import job runs in the background
    page.reload()
    expect(page.locator("[data-testid=import-summary]")).to_be_visible()
    assert Order.objects.count() == len(buyers)

    # the builder: no condition yet = everyone
    page.click(".nav-sublink:has-text('客户分群')")
    page.click("[data-testid=new-segment]")
    everyone = expect_count(page, {"op": "and", "items": []})
    expect(page.locator("[data-testid=segment-count]")).to_contain_text("位有企业微信好友")

    # 1. a tag
    root_head = page.locator("[data-testid=seg-root] > .seg-group-head")
    root_head.locator("[data-testid=seg-add-condition]").click()
    first = page.locator("[data-testid=seg-cond]").nth(0)
    pick(page, "pick_tags", tag.name, tag.name, value=tag.id, scope=first)
    d_tag = {"op": "and", "items": [{"field": "tag", "op": "any", "value": [tag.id]}]}
    with_tag = expect_count(page, d_tag)
    assert 0 < with_tag < everyone

    # 2. AND (loyal OR important value)
    root_head.locator("[data-testid=seg-add-group]").click()
    group = page.locator("[data-testid=seg-group]")
    g1 = group.locator("[data-testid=seg-cond]").nth(0)
    g1.locator("select[data-role=field]").select_option("stage")
    g1.locator("label.seg-choice", has_text="忠诚客").locator("input").check()
    loyal = {"op": "or", "items": [{"field": "stage", "op": "in", "value": ["loyal"]}]}
    only_loyal = expect_count(page, {"op": "and", "items": [*d_tag["items"], loyal]})
    assert only_loyal < with_tag
    group.locator(":scope > .seg-group-head [data-testid=seg-add-condition]").click()
    g2 = group.locator("[data-testid=seg-cond]").nth(1)
    g2.locator("select[data-role=field]").select_option("bought")
    g2.locator("select[data-role=op]").select_option("category")
    g2.locator("[data-role=value] input[type=text]").fill("戒指")
    g2.locator("[data-testid=seg-days]").fill("30")
    final = {
        "op": "and",
        "items": [
            {"field": "tag", "op": "any", "value": [tag.id]},
            {
                "op": "or",
                "items": [
                    {"field": "stage", "op": "in", "value": ["loyal"]},
                    {"field": "bought", "op": "category", "value": ["戒指"], "days": 30},
                ],
            },
        ],
    }
    persons = expect_count(page, final)
    assert only_loyal < persons <= with_tag
    assert json.loads(page.locator("input[name=definition]").input_value()) == final
    screenshot(page, "cdp-segment-builder")

    # save it
    page.fill("#id_name", "标签客户·忠诚或买过戒指")
    page.click("[data-testid=save-segment]")
    page.wait_for_url("**/segments/*/")
    segment = Segment.objects.get(name="标签客户·忠诚或买过戒指")
    assert segment.definition == final and segment.count == persons
    expect(page.locator("[data-testid=segment-description]")).to_contain_text(tag.name)
    expect(page.locator("[data-testid=segment-description]")).to_contain_text("忠诚客")
    expect(page.locator("[data-testid=segment-persons]")).to_have_text(str(persons))
    rows = page.locator("[data-testid=member-table] tr[data-profile]")
    expect(rows).to_have_count(min(persons, 50))

    # send a mass message to it
    page.click("[data-testid=send-to-segment]")
    page.wait_for_url("**/broadcasts/new/**")
    expect(page.locator("[data-testid=picker-segment] .picker-chip")).to_contain_text("标签客户·忠诚或买过戒指")
    page.fill("#id_name", "忠诚客回馈")
    page.fill("#id_text", "{员工姓名}：会员专享回馈")
    page.click("[data-testid=estimate-button]")
    expect(page.locator("[data-testid=segment-audience-name]")).to_have_text("标签客户·忠诚或买过戒指")
    expect(page.locator("[data-testid=estimate] [data-testid=segment-persons]")).to_have_text(str(persons))
    estimated = int(page.locator("[data-testid=estimate-recipients]").inner_text())
    assert estimated > 0
    page.click("[data-testid=send]")
    page.wait_for_url("**/broadcasts/*/")
    b = Broadcast.objects.get(name="忠诚客回馈")
    Worker(interval=0.05).run(max_idle_s=1.0)  # the timer, then the execution task
    b.refresh_from_db()
    assert b.status == Broadcast.SENT, b.error
    snap = Snapshot.objects.get(id=b.audience["snapshot_id"])
    members = set(
        ProfileKey.objects.filter(
            profile_id__in=segment_services.person_ids(final, EVERYTHING), customer__isnull=False
        ).values_list("customer_id", flat=True)
    )
    assert set(Recipient.objects.filter(broadcast=b).values_list("customer_id", flat=True)) == members
    assert Recipient.objects.filter(broadcast=b).exclude(state=Recipient.SKIPPED).count() == estimated
    for bt in Batch.objects.filter(broadcast=b, status=Batch.SENT):
        sim.control("mass/confirm", {"msgid": bt.msgid, "userid": bt.userid})
    page.reload()
    expect(page.locator("[data-testid=segment-persons]")).to_have_text(str(snap.profiles))
    expect(page.locator("[data-testid=segment-customers]")).to_have_text(str(snap.customers))
    page.click("[data-testid=sync]")
    page.wait_for_load_state()
    assert Recipient.objects.filter(broadcast=b, state=Recipient.RECEIVED).count() > 0
    screenshot(page, "cdp-segment-broadcast")

    # open a member who bought a ring from the segment: their profile lists the imported order
    page.goto(f"/segments/{segment.id}/")
    buyer = Order.objects.order_by("id").values_list("profile_id", "order_no").first()
    pid = next(p for p in segment_services.person_ids(final, EVERYTHING) if p == buyer[0])
    row = page.locator(f"[data-testid=member-table] tr[data-profile='{pid}']")
    row.locator("[data-testid=member-link]").click()
    page.wait_for_url(f"**/profiles/{pid}/")
    expect(page.locator("[data-testid=profile-name]")).to_have_text(Profile.objects.get(id=pid).name or "未命名客户")
    expect(page.locator("[data-testid=profile-orders]")).to_contain_text(buyer[1])
    expect(page.locator("[data-testid=order-item]").first).to_contain_text("戒指")
    screenshot(page, "cdp-member-profile")
