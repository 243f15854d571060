"""Guide tasks from rules on a small fixture, at chosen moments (the clock is the ``now`` the
morning run is given): each rule selects what it says, the task goes to the customer's guide, and
there is exactly one task per (rule, customer, period) however often the run repeats."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from siyu.commerce import services as commerce_services
from siyu.customers.models import Customer, FollowRelation
from siyu.guidetasks import services
from siyu.guidetasks.models import Rule, Task
from siyu.insights import services as insight_services
from siyu.profiles import services as profile_services
from siyu.profiles.models import Profile, ProfileKey
from tests.helpers import org_tree

pytestmark = pytest.mark.django_db
TZ = timezone.get_current_timezone()


def at(y, m, d, h=6, mi=0) -> dt.datetime:
    return dt.datetime(y, m, d, h, mi, tzinfo=TZ)


@pytest.fixture
def world():
    """Five customers of two guides (store, east); 李 is followed by both (east more recently)."""
    people = org_tree()
    out = {"people": people}
    added = at(2026, 1, 5, 10)
    for key, name, guides in (
        ("zhang", "张", ["store"]),
        ("li", "李", ["store", "east"]),
        ("wang", "王", ["east"]),
        ("zhao", "赵", ["store"]),
        ("qian", "钱", ["east"]),
    ):
        c = Customer.objects.create(external_userid=f"wm{key}", name=name)
        for i, g in enumerate(guides):
            FollowRelation.objects.create(customer=c, employee=people[g], added_at=added + dt.timedelta(days=i))
        out[key] = c
    profile_services.link_backfill()
    return out


def person(c: Customer) -> int:
    return ProfileKey.objects.get(customer=c).profile_id


def orders(c: Customer, days: list[dt.datetime], amount: str = "300") -> None:
    rows = [
        {"order_no": f"{c.external_userid}-{i}", "external_userid": c.external_userid, "paid_at": d.isoformat(),
         "amount": amount, "items": [{"sku": "A", "name": "项链", "quantity": 1, "price": amount}]}
        for i, d in enumerate(days)
    ]  # fmt: skip
    assert commerce_services.ingest_orders(rows, source="pos").failed == 0


def rule(kind: str, **params) -> Rule:
    return services.save_rule(services.RuleInput(kind=kind, name=f"规则 {kind}", params=params))


def tasks_of(r: Rule) -> list[tuple[str, str, str]]:
    names = dict(Customer.objects.values_list("id", "name"))
    return sorted((names[t.customer_id], t.employee_userid, t.period) for t in Task.objects.filter(rule=r))


def test_repurchase_due_at_a_fraction_of_the_customers_own_cycle(world):
    # 张 buys every 90 days: due at 83 % of 90 ≈ 75 days after the last order
    orders(world["zhang"], [at(2026, 1, 10, 12), at(2026, 4, 10, 12), at(2026, 7, 9, 12)])
    orders(world["wang"], [at(2026, 7, 1, 12)])  # one order: no cycle yet
    insight_services.full_recompute(now=at(2026, 9, 1))
    r = rule("repurchase", fraction=0.83)
    assert services.generate(at(2026, 9, 20), [r.id]) == {r.id: 0}  # 73 days: not yet
    assert services.generate(at(2026, 9, 23), [r.id]) == {r.id: 1}
    assert tasks_of(r) == [("张", "store", "r2026-07-09")]
    assert services.generate(at(2026, 9, 24), [r.id]) == {r.id: 0}  # the same cycle: once
    t = Task.objects.get(rule=r)
    assert t.due_at == at(2026, 9, 24) and t.department_id == 3


def test_dormant_and_birthday_and_newcomers(world):
    orders(world["zhao"], [at(2026, 3, 1, 12)])
    insight_services.full_recompute(now=at(2026, 5, 1))
    Profile.objects.filter(id=person(world["wang"])).update(birthday=dt.date(1990, 6, 3))
    dormant, bday = rule("dormant", days=90), rule("birthday", days_before=3)
    assert services.generate(at(2026, 5, 29)) == {dormant.id: 0, bday.id: 0}
    services.generate(at(2026, 5, 31))  # 91 days after 3-01; 3 days before 6-03
    assert tasks_of(dormant) == [("赵", "store", "d2026-03-01")]
    assert tasks_of(bday) == [("王", "east", "y2026")]
    services.generate(at(2026, 6, 1))
    assert Task.objects.count() == 2

    newcomers = rule("newcomer", days=[1, 3])
    services.generate(at(2026, 1, 8), [newcomers.id])  # 张 赵 王 钱 李(store) added 01-05: day 3; 李(east) 01-06
    got = tasks_of(newcomers)
    assert ("李", "store", "n3-2026-01-05") in got and ("李", "east", "n1-2026-01-07") not in got
    assert ("张", "store", "n3-2026-01-05") in got and len(got) == 5


def test_browsed_without_ordering_goes_to_the_latest_guide(world):
    def event(c, when, kind="browse_product", n=0):
        return {"event_id": f"{c.external_userid}-{kind}-{n}", "type": kind, "external_userid": c.external_userid,
                "at": when.isoformat(), "props": {"sku": "A"}}  # fmt: skip

    rows = [event(world["li"], at(2026, 2, 1, 9)), event(world["zhang"], at(2026, 2, 1, 10), "add_to_cart")]
    rows.append(event(world["qian"], at(2026, 2, 1, 11)))
    assert commerce_services.ingest_events(rows, source="mall").failed == 0
    orders(world["qian"], [at(2026, 2, 1, 20)])  # 钱 bought after browsing
    r = rule("browsed", hours=24)
    services.generate(at(2026, 2, 2, 12), [r.id])
    assert tasks_of(r) == [("张", "store", "b2026-02-01"), ("李", "east", "b2026-02-01")]


def test_a_campaign_reaches_a_segments_customers_of_a_store(world):
    from siyu.segments import services as segment_services

    seg = segment_services.save_segment("全部", {"op": "and", "items": []})
    everyone = services.save_rule(
        services.RuleInput(
            kind="campaign", name="双十二", params={}, segment_id=seg.id, deadline=timezone.now() + dt.timedelta(days=2)
        )
    )
    store_only = services.save_rule(
        services.RuleInput(
            kind="campaign", name="华东店", params={}, segment_id=seg.id, deadline=timezone.now() + dt.timedelta(days=2)
        ),
        department_id=3,
    )
    services.generate(rule_ids=[everyone.id, store_only.id])
    assert len(tasks_of(everyone)) == 5
    # a store manager's campaign (Store, 3): their own guide, also for 李 whom east followed later
    assert tasks_of(store_only) == [("张", "store", "c"), ("李", "store", "c"), ("赵", "store", "c")]
    assert {t.due_at for t in Task.objects.filter(rule=everyone)} == {everyone.deadline}


def test_preview_counts_per_guide_without_writing(world):
    Profile.objects.filter(id=person(world["wang"])).update(birthday=dt.date(1990, 6, 3))
    r = rule("birthday", days_before=3)
    p = services.preview(r, at(2026, 5, 31))
    assert p["total"] == 1 and p["per_guide"] == [{"userid": "east", "name": "East", "n": 1}]
    assert not Task.objects.exists()


def test_a_send_completes_the_task_and_outcomes_are_checked(world):
    from siyu.materials import services as material_services

    script = material_services.save_script(material_services.ScriptInput(title="生日", content="生日快乐"))
    Profile.objects.filter(id=person(world["wang"])).update(birthday=dt.date(1990, 6, 3))
    r = services.save_rule(services.RuleInput(kind="birthday", name="生日", params={}, script_id=script.id))
    services.generate(at(2026, 5, 31), [r.id])
    task = Task.objects.get()
    other = services.complete_by_send(
        userid="east",
        customer_id=world["wang"].id,
        item="script",
        item_id=script.id + 1,
        chat_type="single",
        chat_key="",
    )
    assert other == 0  # another script is not what the task suggested
    assert (
        services.complete_by_send(
            userid="east",
            customer_id=world["wang"].id,
            item="script",
            item_id=script.id,
            chat_type="single",
            chat_key="",
        )
        == 1
    )
    task.refresh_from_db()
    assert task.status == "done" and task.outcome == "sent"
    with pytest.raises(services.TaskError):
        services.mark_done(task, userid="east", outcome="contacted")
    with pytest.raises(services.TaskError):
        services.mark_done(task, userid="store", outcome="contacted")


def test_rule_parameters_are_checked():
    for kind, params in (("repurchase", {"fraction": 2}), ("dormant", {"days": 1}), ("newcomer", {"days": [0]})):
        with pytest.raises(services.RuleError):
            rule(kind, **params)
    with pytest.raises(services.RuleError):
        services.save_rule(services.RuleInput(kind="campaign", name="x", params={}))  # no audience


def test_a_follow_up_with_a_next_contact_becomes_that_mornings_task(world):
    zhang = world["zhang"]
    with pytest.raises(services.TaskError):
        services.add_followup(customer_id=zhang.id, userid="store", text="   ")
    today = timezone.localdate()
    later = services.add_followup(
        customer_id=zhang.id, userid="store", text="想要 18K 项链，预算 3000", next_at=today + dt.timedelta(days=2)
    )
    assert not Task.objects.exists()
    morning = timezone.make_aware(dt.datetime.combine(today + dt.timedelta(days=2), dt.time(6)))
    services.generate(morning)
    services.generate(morning + dt.timedelta(days=1))  # the next morning: not again
    t = Task.objects.get()
    assert (t.customer_id, t.employee_userid, t.period) == (zhang.id, "store", f"f{later.id}")
    assert t.rule.kind == "followup"
    services.add_followup(customer_id=zhang.id, userid="store", text="今天到店", next_at=today)
    assert Task.objects.count() == 2  # today's: made at once
