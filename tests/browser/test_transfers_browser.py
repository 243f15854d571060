"""Resigned transfer in headless Chromium: an employee is marked as departed in the emulator, the
operator hands their customers over in the console, and the statuses move after the emulator's
clock passes the 24 hours (one customer refuses)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from siyu.sync.services import run_full_sync
from tests.sim.helpers import customer_of, employee, own_sim, resign
from tests.transfers.test_transfers import World, advance

pytestmark = pytest.mark.browser
sim = own_sim(customers=10, seed=62)  # the clock moves by a day


@pytest.fixture
def world(live_callbacks):
    assert run_full_sync().status == "done"
    return World(live_callbacks)


def test_resigned_transfer_statuses_move(world, page, make_login, sign_in, screenshot):
    s = world.sim
    leaver, heir = employee(s, name="离职导购"), employee(s, name="接替导购")
    xs = [customer_of(s, leaver) for _ in range(6)]
    world.process()
    resign(s, leaver)  # marked as departed in the emulator
    world.process()

    make_login("ops", role="operator")
    sign_in(page, "ops")
    page.click(".nav-sublink:has-text('离职继承')")
    expect(page).to_have_url(re.compile(r"/transfers/resigned/$"))
    row = page.locator(f"[data-testid=departed-row][data-userid='{leaver}']")
    expect(row).to_contain_text("离职导购")
    row.locator("[data-testid=assign-link]").click()
    expect(page.locator("[data-testid=assign-summary]")).to_contain_text("6")
    page.check("[data-testid=strategy-single]")
    page.check(f"[data-testid=takeover-{heir}]")
    page.click("[data-testid=assign-submit]")
    expect(page).to_have_url(re.compile(r"/transfers/handovers/\d+/$"))
    rows = page.locator("[data-testid=item-row]")
    expect(rows).to_have_count(6)
    expect(page.locator("[data-testid=item-row][data-status=waiting]")).to_have_count(6)
    expect(rows.first.locator("[data-testid=clock]")).to_contain_text("剩余")
    screenshot(page, "transfers-waiting")

    s.control("transfer/refuse", {"external_userid": xs[0]})
    advance(s, 86400 + 60)
    world.process()
    page.click("[data-testid=refresh]")
    expect(page.locator("[data-testid=item-row][data-status=accepted]")).to_have_count(5)
    refused = page.locator(f"[data-testid=item-row][data-x='{xs[0]}']")
    expect(refused.locator("[data-testid=item-status-label]")).to_have_text("客户拒绝")
    expect(page.locator("[data-count=accepted]")).to_have_text("5")
    expect(page.locator("[data-count=refused]")).to_have_text("1")
    screenshot(page, "transfers-settled")
