"""设置 › 用户与角色 in headless Chromium: an admin creates a store manager for one store (picked by
name), and that user, signed in in a fresh browser, sees only that store's customers."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from siyu.accounts.selectors import DataScope
from siyu.customers import selectors as customer_selectors
from siyu.customers.models import Customer, FollowRelation
from siyu.org import selectors as org_selectors
from siyu.org.models import Department
from siyu.sync.services import run_full_sync
from tests.conftest import point_product_at

pytestmark = pytest.mark.browser
PASSWORD = "Store-manager-2024!"


@pytest.fixture
def synced(sim, transactional_db):
    point_product_at(sim)
    assert run_full_sync().status == "done"
    return sim


def a_store() -> tuple[Department, int]:
    """A department below the root whose subtree follows some, but not all, customers."""
    total = customer_selectors.customer_count(DataScope(everything=True))
    for dept in Department.objects.filter(depth__gt=0).order_by("-depth", "id"):
        n = customer_selectors.customer_count(DataScope(department_id=dept.id)) or 0
        if 0 < n < total:
            return dept, n
    raise AssertionError("no store with customers in the emulator's world")


def test_admin_creates_a_store_manager_who_sees_only_that_store(
    synced, browser, live_server, page, make_login, sign_in, screenshot
):
    store, expected = a_store()
    make_login("admin")
    sign_in(page, "admin")
    page.click(".nav-sublink:has-text('用户与角色')")
    expect(page).to_have_url(re.compile(r"/settings/users/$"))
    page.fill("#id_username", "store-mgr")
    page.fill("#id_password", PASSWORD)
    page.select_option("#id_role", label="店长")
    page.select_option("#id_department", label="\u3000" * store.depth + store.name)
    page.click("[data-testid=create-user-submit]")
    expect(page.locator(".alert-success")).to_contain_text("store-mgr")
    expect(page.locator("[data-user='store-mgr'] [data-testid=user-scope]")).to_have_text(store.name)
    screenshot(page, "users-and-roles")
    page.goto("/")
    expect(page.locator("[data-testid=trend-chart] canvas")).to_have_count(1)  # the overview's trend
    screenshot(page, "overview-operator-first")

    # a new browser context: the store manager's own session
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=live_server.url)
    try:
        mgr = context.new_page()
        sign_in(mgr, "store-mgr", PASSWORD)
        mgr.goto("/customers/")
        expect(mgr.locator("[data-testid=customer-count]")).to_contain_text(f"{expected:,}")
        shown = {
            int(x) for x in mgr.locator("[data-customer]").evaluate_all("rows => rows.map(r => r.dataset.customer)")
        }
        staff = org_selectors.employee_ids_in_subtree(store.id)
        own = set(
            FollowRelation.objects.filter(employee_id__in=staff, status=FollowRelation.ACTIVE).values_list(
                "customer_id", flat=True
            )
        )
        assert shown and shown <= own
        foreign = Customer.objects.exclude(id__in=own).first()
        assert mgr.goto(f"/customers/{foreign.id}/").status == 403
        assert mgr.goto("/settings/users/").status == 403
    finally:
        context.close()
