"""The guides' library and task rules in the console, in headless Chromium: a script with its
variables is added (an unknown variable refused with the field's error), a link material added and
searched, and a birthday rule set up (the form shows only that kind's fields) with its preview."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from siyu.customers.models import Customer, FollowRelation
from siyu.guidetasks.models import Rule
from siyu.materials.models import Material, Script
from siyu.profiles import services as profile_services
from siyu.profiles.models import Profile, ProfileKey
from tests.helpers import org_tree

pytestmark = pytest.mark.browser


def test_library_and_a_task_rule(page, make_login, sign_in, screenshot):
    people = org_tree()
    c = Customer.objects.create(external_userid="wmBday", name="周小姐")
    FollowRelation.objects.create(customer=c, employee=people["store"], added_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    profile_services.link_backfill()
    from siyu.guidetasks import services as task_services

    # the preview is for the next 06:00 run; its "in 3 days" is three days after that morning
    in_three_days = timezone.localtime(task_services.next_morning()).date() + dt.timedelta(days=3)
    Profile.objects.filter(id=ProfileKey.objects.get(customer=c).profile_id).update(
        birthday=in_three_days.replace(year=1992)
        if not (in_three_days.month == 2 and in_three_days.day == 29)
        else None
    )
    make_login("admin")
    sign_in(page, "admin")

    page.goto("/library/scripts/")
    page.fill("[data-testid=script-form] [name=title]", "生日祝福")
    page.fill("[data-testid=script-form] [name=content]", "{nickname}生日快乐，我是{guide}")
    page.click("[data-testid=script-submit]")
    expect(page.locator("[data-field=content] .field-error")).to_contain_text("{guide}")
    page.fill("[data-testid=script-form] [name=content]", "{nickname}生日快乐，{store}的{employee}为您准备了礼物")
    page.click("[data-testid=script-submit]")
    expect(page.locator("[data-testid=script-row]")).to_contain_text("生日祝福")
    assert Script.objects.get().content.startswith("{nickname}")

    page.goto("/library/")
    page.select_option("[data-testid=material-form] [name=kind]", "link")
    page.fill("[data-testid=material-form] [name=title]", "生日礼券")
    page.fill("[data-testid=material-form] [name=url]", "https://shop.example.com/gift")
    page.click("[data-testid=material-submit]")
    expect(page.locator("[data-testid=link-preview]")).to_contain_text("生日礼券")
    assert Material.objects.get().url == "https://shop.example.com/gift"

    page.goto("/guide-tasks/")
    form = page.locator("[data-testid=rule-form]")
    form.locator("[name=kind]").select_option("birthday")
    expect(form.locator("[data-field=days_before]")).to_be_visible()
    for hidden in ("hours", "fraction", "dormant_days", "segment", "deadline"):
        expect(form.locator(f"[data-field={hidden}]")).to_be_hidden()
    form.locator("[name=name]").fill("生日前 3 天关怀")
    form.locator("[name=days_before]").fill("3")
    form.locator("[name=script]").select_option(label="生日祝福")
    page.click("[data-testid=rule-submit]")
    page.wait_for_url("**/guide-tasks/*/")
    rule = Rule.objects.get()
    assert (rule.kind, rule.params, rule.script_id) == ("birthday", {"days_before": 3}, Script.objects.get().id)
    if in_three_days.month != 2 or in_three_days.day != 29:
        expect(page.locator("[data-testid=rule-preview]")).to_contain_text("Store")
    screenshot(page, "guide-task-rule")
