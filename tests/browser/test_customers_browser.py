"""The customer console in headless Chromium: filter by tags and employee, open a customer, add a
tag (read back from the emulator), and a shopping guide's scope (own customers only, 403 elsewhere)."""

from __future__ import annotations

import re

import pytest
from django.db.models import Count
from playwright.sync_api import expect

from siyu.accounts.services import create_api_token
from siyu.customers.models import Customer, FollowRelation, FollowTag, Tag
from siyu.org.models import Employee
from siyu.sync.services import run_full_sync
from tests.browser.conftest import pick
from tests.conftest import point_product_at

pytestmark = pytest.mark.browser


@pytest.fixture
def synced(sim, transactional_db):
    point_product_at(sim)
    assert run_full_sync().status == "done"
    return sim


def busiest_employee() -> Employee:
    return Employee.objects.annotate(n=Count("relations")).filter(n__gt=0).order_by("-n").first()


def shown_ids(page) -> set[int]:
    return {int(x) for x in page.locator("[data-customer]").evaluate_all("rows => rows.map(r => r.dataset.customer)")}


def test_filter_open_and_tag_a_customer(synced, page, make_login, sign_in, screenshot):
    sim = synced
    make_login("admin")
    sign_in(page, "admin")
    page.click(".nav-sublink:has-text('客户列表')")
    expect(page).to_have_url(re.compile(r"/customers/$"))
    expect(page.locator(".page-head h1")).to_have_text("客户列表")
    expect(page.locator("[data-testid=customer-count]")).to_contain_text(f"{Customer.objects.count():,}")

    emp = busiest_employee()
    tag = FollowTag.objects.filter(relation__employee=emp).values("tag").annotate(n=Count("id")).order_by("-n").first()
    tag = Tag.objects.get(id=tag["tag"])
    expected = set(
        Customer.objects.filter(relations__employee=emp, follow_tags__tag=tag).values_list("id", flat=True).distinct()
    )
    # tags: pick one as a chip (htmx reloads the results on change), then the employee by name
    pick(page, "tags", tag.name, tag.name, value=tag.id)
    expect(page).to_have_url(re.compile(rf"tags={tag.id}"))
    pick(page, "employee", emp.userid, emp.name or emp.userid, value=emp.id)
    expect(page).to_have_url(re.compile(rf"employee={emp.id}"))
    expect(page.locator("[data-testid=customer-count]")).to_contain_text(f"{len(expected)}")
    assert shown_ids(page) == expected
    screenshot(page, "customers-filtered")

    # open one, add a tag there; the emulator has it
    target = Customer.objects.filter(id__in=expected).order_by("-first_added_at", "-id").first()
    page.click(f"[data-customer='{target.id}'] [data-testid=customer-link]")
    expect(page).to_have_url(re.compile(rf"/customers/{target.id}/$"))
    rel = FollowRelation.objects.get(customer=target, employee=emp)
    have = set(FollowTag.objects.filter(relation=rel).values_list("tag_id", flat=True))
    new_tag = Tag.objects.filter(deleted=False).exclude(id__in=have).order_by("id").first()
    pick(page, "add_tags", new_tag.name, new_tag.name, value=new_tag.id, scope=page.locator("[data-testid=detail-add]"))
    page.click("[data-testid=detail-tag-submit]")
    expect(page.locator(".alert-success")).to_be_visible()
    expect(page.locator(f"[data-relation='{emp.userid}'] [data-testid=relation-tags]")).to_contain_text(new_tag.name)
    r = sim.get("externalcontact/get", external_userid=target.external_userid)
    tags = {t["tag_id"] for f in r["follow_user"] if f["userid"] == emp.userid for t in f["tags"]}
    assert new_tag.tag_id in tags
    expect(page.locator("[data-testid=customer-timeline] [data-kind=tagged]").first).to_contain_text(new_tag.name)
    screenshot(page, "customer-detail")


def test_a_guide_sees_only_their_customers_and_gets_403_elsewhere(synced, page, make_login, sign_in):
    emp = busiest_employee()
    own = set(FollowRelation.objects.filter(employee=emp).values_list("customer_id", flat=True))
    guide = make_login("guide", role="guide", wecom_userid=emp.userid)
    sign_in(page, "guide")
    page.goto("/customers/")
    expect(page.locator("[data-testid=customer-count]")).to_contain_text(f"{len(own)}")
    shown = shown_ids(page)
    assert shown and shown <= own
    foreign = Customer.objects.exclude(id__in=own).first()
    response = page.goto(f"/customers/{foreign.id}/")
    assert response.status == 403
    response = page.goto(f"/customers/{next(iter(own))}/")
    assert response.status == 200

    # the REST API with the browser's session: the same scope
    api = page.request
    r = api.get(f"/api/v1/customers/{foreign.id}")
    assert r.status == 403, r.status
    r = api.get(f"/api/v1/customers/{next(iter(own))}")
    assert r.status == 200 and r.json()["id"] in own
    listed = api.get("/api/v1/customers", params={"limit": 200}).json()
    assert listed["count"] == len(own) and {c["id"] for c in listed["items"]} <= own
    # and with an integration token acting as the guide
    _, token = create_api_token(guide, "browser-test")
    r = api.get(f"/api/v1/customers/{foreign.id}", headers={"Authorization": f"Bearer {token}"})
    assert r.status == 403, r.status
