"""The guides' morning summary and the escalation of overdue tasks, as WeCom app messages the
emulator's employees receive (message/send through the gateway)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from siyu.customers.models import Customer, FollowRelation
from siyu.guidetasks import services
from siyu.guidetasks.models import Summary, Task
from siyu.org.models import Employee
from siyu.sync.services import run_full_sync


@pytest.fixture
def synced(sim, transactional_db):
    from tests.conftest import point_product_at

    point_product_at(sim)
    assert run_full_sync().status == "done"
    return sim


def a_campaign(n: int, deadline: dt.datetime) -> tuple[Employee, list[Task]]:
    rel = FollowRelation.objects.filter(status="active").select_related("employee").order_by("id").first()
    customers = list(
        Customer.objects.filter(relations__employee=rel.employee, relations__status="active").order_by("id")[:n]
    )
    rule = services.save_rule(
        services.RuleInput(
            kind="campaign",
            name="双十二邀约",
            params={},
            customer_ids=[c.id for c in customers],
            deadline=timezone.now() + dt.timedelta(days=1),
        )
    )
    services.generate(rule_ids=[rule.id])
    Task.objects.filter(rule=rule).update(due_at=deadline)
    return rel.employee, list(Task.objects.filter(rule=rule, employee_userid=rel.employee.userid))


def test_each_guide_gets_one_summary_a_day(synced):
    guide, tasks = a_campaign(3, timezone.now() + dt.timedelta(hours=5))
    assert tasks
    assert services.send_summaries() >= 1
    got = synced.control("app_messages", {"touser": guide.userid})["messages"]
    cards = [m for m in got if m["msgtype"] == "textcard"]
    assert len(cards) == 1
    assert cards[0]["content"]["title"] == f"今日导购任务 {len(tasks)} 项"
    assert cards[0]["content"]["url"].endswith("/sidebar/tasks/")
    assert services.send_summaries() == 0  # not twice the same day
    assert Summary.objects.get(employee_userid=guide.userid).sent_at is not None


def test_overdue_tasks_go_to_the_store_manager_once(synced):
    from siyu.org import selectors as org_selectors

    guide, tasks = a_campaign(2, timezone.now() - dt.timedelta(hours=1))
    manager = org_selectors.manager_of(guide)
    assert manager, "the seeded corp gives every guide a leader"
    assert services.escalate_overdue() == len(tasks)
    texts = [m["content"]["content"] for m in synced.control("app_messages", {"touser": manager})["messages"]]
    assert any(t.startswith("【导购任务逾期】") and guide.name in t for t in texts)
    assert services.escalate_overdue() == 0
