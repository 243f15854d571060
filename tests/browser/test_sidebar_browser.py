"""The chat sidebar in headless Chromium, inside the emulated WeCom client (issue 18): an employee
signs in to the client, opens a customer's chat, and the product's sidebar loads beside it through
WeCom OAuth and a signed JS-SDK; it shows the customer's orders and RFM class; the employee adds a
tag (written to WeCom), edits the remark, and sends a message into the chat with sendChatMessage
(recorded by the emulator as sent by that employee in that chat). A group chat shows the group's
customers."""

from __future__ import annotations

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from siyu.commerce import services as commerce_services
from siyu.commerce.models import Event
from siyu.customers.models import FollowRelation, Tag
from siyu.guidetasks import services as task_services
from siyu.guidetasks.models import Task
from siyu.insights.models import Metrics
from siyu.links import services as link_services
from siyu.materials import services
from siyu.materials.models import Material, Script
from siyu.profiles import services as profile_services
from siyu.profiles.models import ProfileKey
from siyu.sync.services import run_full_sync
from tests.conftest import point_product_at

pytestmark = pytest.mark.browser


def sidebar_url(live_server) -> str:
    # the client page is on 127.0.0.1: the sidebar on the same site (its cookies are first-party
    # in the panel, as in WeCom's web view)
    return live_server.url.replace("localhost", "127.0.0.1") + "/sidebar/"


@pytest.fixture
def synced(sim, transactional_db, live_server):
    point_product_at(sim)
    assert run_full_sync().status == "done"
    profile_services.link_backfill()
    sim.control(
        "client/config", {"trusted_domains": ["127.0.0.1", "localhost"], "toolbar_url": sidebar_url(live_server)}
    )
    yield sim
    sim.control("client/config", {"toolbar_url": ""})


def a_relation_with_history() -> FollowRelation:
    rel = (
        FollowRelation.objects.filter(status=FollowRelation.ACTIVE, employee__contact_enabled=True)
        .select_related("customer", "employee")
        .order_by("id")
        .first()
    )
    assert rel is not None
    ext = rel.customer.external_userid
    r = commerce_services.ingest_orders(
        [
            {
                "order_no": "SB-1001",
                "external_userid": ext,
                "paid_at": (timezone.localtime() - timezone.timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%S"),
                "amount": "2399.00",
                "items": [{"sku": "R1", "name": "铂金对戒", "category": "ring", "quantity": 1, "price": "2399"}],
            }
        ],
        source="pos",
    )
    assert r.created == 1, r.as_dict()
    person = ProfileKey.objects.get(customer=rel.customer).profile_id
    Metrics.objects.update_or_create(
        profile_id=person, defaults={"rfm_class": "important_value", "stage": "loyal", "computed_at": timezone.now()}
    )
    return rel


def follow_of(sim, external_userid: str, userid: str) -> dict:
    """The member's relation to the customer as WeCom has it (externalcontact/get)."""
    detail = sim.get("externalcontact/get", external_userid=external_userid)
    return next(f for f in detail["follow_user"] if f["userid"] == userid)


def library(rel: FollowRelation) -> None:
    script = services.save_script(
        services.ScriptInput(title="到店提醒", content="{nickname}，{employee}为您预留了新品")
    )
    # headquarters' task for this customer: send the script
    rule = task_services.save_rule(
        task_services.RuleInput(
            kind="campaign", name="新品邀约", params={}, script_id=script.id, customer_ids=[rel.customer_id],
            deadline=timezone.now() + timezone.timedelta(days=1),
        )
    )  # fmt: skip
    task_services.generate(rule_ids=[rule.id])
    services.save_material(
        services.MaterialInput(
            kind="link", title="秋冬新品", description="限时 8 折", url="https://shop.example.com/autumn"
        )
    )


def open_chat(page, sim, userid: str, path: str):
    page.goto(sim.base_url + "/client/")
    page.locator(f"button[name=userid][value='{userid}']").click()
    page.wait_for_url("**/client/chats/")
    page.goto(sim.base_url + path)
    return page.frame_locator("#toolbar")


def test_customer_chat_sidebar(synced, browser, screenshot):
    sim = synced
    rel = a_relation_with_history()
    library(rel)
    ext, userid = rel.customer.external_userid, rel.employee.userid
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        sidebar = open_chat(page, sim, userid, f"/client/chat/single/{ext}/")
        panel = sidebar.locator("[data-testid=sidebar-customer]")
        expect(panel).to_be_visible()
        expect(sidebar.locator("[data-testid=sidebar-order]").first).to_contain_text("铂金对戒")
        expect(sidebar.locator("[data-testid=sidebar-rfm]")).to_have_text("重要价值")
        expect(sidebar.locator("[data-testid=sidebar-stage]")).to_have_text("忠诚客")
        expect(sidebar.locator("[data-testid=sidebar-task]")).to_contain_text("建议发送：到店提醒")

        # a tag, written to WeCom
        tags = Tag.objects.filter(deleted=False, group__deleted=False)
        tag = tags.exclude(follow_tags__relation=rel).order_by("id").first()
        assert tag is not None
        sidebar.locator(f"[data-testid=sidebar-tags] input[name=tag][value='{tag.id}']").check()
        sidebar.locator("[data-testid=sidebar-save-tags]").click()
        expect(sidebar.locator("[data-testid=sidebar-saved]")).to_have_text("标签已保存")
        follow = follow_of(sim, ext, userid)
        assert tag.tag_id in {t.get("tag_id") for t in follow.get("tags", [])}

        # the remark, written to WeCom
        sidebar.locator("[data-testid=sidebar-remark] input[name=remark]").fill("VIP 林小姐")
        sidebar.locator("[data-testid=sidebar-remark] button").click()
        expect(sidebar.locator("[data-testid=sidebar-name]")).to_contain_text("VIP 林小姐")

        # a message into the chat
        sidebar.locator("[data-testid=sidebar-quick-text]").fill("林小姐您好，您的对戒已到店")
        sidebar.locator("[data-testid=sidebar-send]").click()
        expect(sidebar.locator("[data-testid=sidebar-quick-send] [data-send-result]")).to_have_text("已发送到聊天")
        sent = sim.control("client/messages", {"userid": userid, "chat_key": ext})["messages"]
        assert [(m["chat_type"], m["msgtype"], m["payload"]) for m in sent] == [
            ("single", "text", {"content": "林小姐您好，您的对戒已到店"})
        ]
        expect(page.locator("#log .bubble").last).to_have_text("林小姐您好，您的对戒已到店")

        # WeCom renews its JS-SDK tickets early: the page signed with the cached ones is refused
        # exactly as WeCom refuses it, and the sidebar signs again with fresh tickets
        synced.control("tickets/revoke")
        page.reload()
        sidebar = page.frame_locator("#toolbar")
        expect(sidebar.locator("[data-testid=sidebar-customer]")).to_be_visible()
        answers = [r["errMsg"] for r in sim.control("client/registrations")["registrations"]][-4:]
        assert "config:fail invalid signature, e=40093" in answers, answers
        assert answers[-2:] in (["config:ok", "agentConfig:ok"], ["agentConfig:ok", "config:ok"]), answers

        # a script from the library, its variables filled for this chat
        script_item = sidebar.locator("[data-testid=sidebar-script]", has_text="到店提醒")
        script_item.locator("[data-prepare]").click()
        expect(script_item.locator("[data-send-result]")).to_have_text("已发送到聊天")
        # a link material: sent as a trackable short link of ours
        link_item = sidebar.locator("[data-testid=sidebar-material]", has_text="秋冬新品")
        link_item.locator("[data-prepare]").click()
        expect(link_item.locator("[data-send-result]")).to_have_text("已发送到聊天")
        sent = sim.control("client/messages", {"userid": userid, "chat_key": ext})["messages"]
        news, text = sent[0], sent[1]
        assert text["payload"] == {"content": f"VIP 林小姐，{rel.employee.name}为您预留了新品"}
        assert news["msgtype"] == "news" and news["payload"]["title"] == "秋冬新品"
        assert "/l/" in news["payload"]["link"] and "shop.example.com" not in news["payload"]["link"]
        assert Script.objects.get().uses == 1 and Material.objects.get().uses == 1
        task = Task.objects.get(customer_id=rel.customer_id)
        assert task.status == "done" and task.outcome == "sent"  # the suggested script was sent

        # the customer opens it: redirected to the shop, the click lands on their profile
        visit = sim.control("click_link", {"external_userid": ext})
        assert visit["status"] == 302 and visit["location"] == "https://shop.example.com/autumn"
        assert link_services.publish_clicks() == 1  # the worker's timer does this every 2 s
        person = ProfileKey.objects.get(customer=rel.customer).profile_id
        assert Event.objects.filter(profile_id=person, type__code="link_clicked").count() == 1
        page.reload()
        sidebar = page.frame_locator("#toolbar")
        expect(sidebar.locator("[data-testid=sidebar-customer]")).to_contain_text("点击链接")
        expect(sidebar.locator("[data-testid=sidebar-task]")).to_have_count(0)
        screenshot(page, "sidebar-customer")
    finally:
        context.close()
    assert not errors, errors
