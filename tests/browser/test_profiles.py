"""The 360° profile in headless Chromium: from a customer's page to their person, then a custom
field edited on the profile page (a bad number refused with the field's error, a good one saved and
shown)."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from siyu.customers.models import Customer, FollowRelation
from siyu.profiles import services
from siyu.profiles.models import CustomField, Profile, ProfileHistory
from tests.helpers import org_tree

pytestmark = pytest.mark.browser


def test_open_the_360_page_from_a_customer_and_edit_a_custom_field(page, make_login, sign_in, screenshot):
    people = org_tree()
    customer = Customer.objects.create(external_userid="wmBrowser", name="林小姐<b>")
    FollowRelation.objects.create(customer=customer, employee=people["store"], added_at=timezone.now(), remark="老客")
    services.link_backfill()
    CustomField.objects.create(key="ring_size", label="戒圈", type="number", order=1)
    CustomField.objects.create(key="style", label="风格", type="choice", options=["简约", "复古"], order=2)
    make_login("admin")
    sign_in(page, "admin")

    page.goto(f"/customers/{customer.id}/")
    page.click("[data-testid=customer-360-link]")
    expect(page).to_have_url(re.compile(r"/profiles/\d+/$"))
    expect(page.locator("[data-testid=profile-name]")).to_have_text("林小姐<b>")
    expect(page.locator("[data-testid=profile-wecom]")).to_contain_text("老客")

    page.click("[data-testid=profile-edit] summary")
    page.fill("input[name=custom_ring_size]", "十二")
    page.select_option("select[name=custom_style]", "复古")
    page.click("[data-testid=profile-save]")
    expect(page.locator("[data-field=custom_ring_size] .field-error")).to_contain_text("请输入数字")
    page.fill("input[name=custom_ring_size]", "12")
    page.click("[data-testid=profile-save]")
    expect(page.locator("[data-testid=custom-values] [data-field=ring_size]")).to_have_text("12")
    expect(page.locator("[data-testid=custom-values] [data-field=style]")).to_have_text("复古")
    expect(page.locator("[data-testid=profile-history]")).to_contain_text("戒圈")
    screenshot(page, "profile-360")

    person = Profile.objects.get(name="林小姐<b>")
    assert person.custom == {"ring_size": 12, "style": "复古"}
    assert ProfileHistory.objects.filter(profile=person, kind="field_changed", operator="admin").count() == 1
