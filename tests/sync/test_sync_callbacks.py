"""Callback handlers keep the product's copy in step.

Each test changes the emulator's world through its control API; the emulator sends the real
encrypted callbacks to the product's live server, the inbox stores them and a worker processes
them; then the product's rows are checked.
"""

from __future__ import annotations

import time

import pytest

from siyu.core.worker import Worker
from siyu.customers import handlers as customer_handlers
from siyu.customers.models import (
    Customer,
    CustomerEvent,
    FollowRelation,
    FollowTag,
    Tag,
    TagGroup,
)
from siyu.groups.models import GroupChat, GroupMember
from siyu.org.models import Department, Employee
from siyu.sync.services import run_full_sync
from siyu.wecom.models import CallbackInbox
from tests.sim.helpers import customer_of, employee, wait_for


def last_callback_id(sim) -> int:
    last = 0
    while True:
        page = sim.control("callbacks", {"since": last, "limit": 500})["callbacks"]
        if not page:
            return last
        last = page[-1]["id"]


class World:
    """The emulator plus 'process what it sent': wait for delivery, then run a worker."""

    def __init__(self, sim):
        self.sim = sim
        self.mark = last_callback_id(sim)

    def control(self, name: str, body: dict | None = None) -> dict:
        return self.sim.control(name, body)

    def process(self) -> list[dict]:
        """Every callback sent since the last call, delivered and processed; returns them."""

        def delivered():
            cbs = self.sim.control("callbacks", {"since": self.mark, "limit": 500})["callbacks"]
            return cbs if cbs and all(c["status"] == 1 for c in cbs) else None

        cbs = wait_for(delivered)
        self.mark = cbs[-1]["id"]
        Worker(interval=0.05).run(max_idle_s=0.5)
        assert not CallbackInbox.objects.exclude(status__in=[CallbackInbox.DONE, CallbackInbox.IGNORED]).exists(), list(
            CallbackInbox.objects.exclude(status=CallbackInbox.DONE).values("event", "change_type", "status", "error")
        )
        return cbs


@pytest.fixture
def world(live_callbacks):
    """The product synced with the emulator, then receiving its callbacks."""
    run_full_sync(workers=2)
    return World(live_callbacks)


def relation(userid: str, external_userid: str) -> FollowRelation:
    return FollowRelation.objects.select_related("customer").get(
        employee__userid=userid, customer__external_userid=external_userid
    )


def kinds(external_userid: str) -> list[str]:
    return list(
        CustomerEvent.objects.filter(customer__external_userid=external_userid)
        .order_by("id")
        .values_list("kind", flat=True)
    )


def a_tag() -> Tag:
    return Tag.objects.filter(deleted=False).order_by("id").first()


def test_added_customers_edits_and_tags(world):
    emp = employee(world.sim)
    world.process()
    assert Employee.objects.get(userid=emp).contact_enabled

    x = customer_of(world.sim, emp)
    world.process()
    rel = relation(emp, x)
    assert rel.status == FollowRelation.ACTIVE and rel.add_way == 2 and rel.customer.status == Customer.ACTIVE
    assert rel.customer.name and rel.customer.first_added_at == rel.added_at
    assert kinds(x) == [CustomerEvent.ADDED]

    # a contact way with a state and skip-verify: add_half_external_contact, then add_external_contact
    way = world.sim.call(
        "externalcontact/add_contact_way",
        {"type": 1, "scene": 2, "user": [emp], "state": "poster-7", "skip_verify": True},
    )
    y = world.control("scan", {"config_id": way["config_id"]})["external_userid"]
    cbs = world.process()
    assert [c["change_type"] for c in cbs][-2:] == ["add_half_external_contact", "add_external_contact"]
    rel_y = relation(emp, y)
    assert rel_y.state == "poster-7" and rel_y.add_way == 1 and rel_y.oper_userid == y
    assert kinds(y) == [CustomerEvent.ADDED]  # two events, one relation, one timeline entry

    tag = a_tag()
    world.control(
        "customer/edit",
        {
            "userid": emp,
            "external_userid": x,
            "remark": "王总",
            "remark_mobiles": ["13800000001"],
            "add_tag": [tag.tag_id],
            "personal_tags": [{"group_name": "我的", "tag_name": "老客户"}],
        },
    )
    world.process()
    rel.refresh_from_db()
    assert rel.remark == "王总" and rel.remark_mobiles == ["13800000001"] and rel.personal_tags == ["老客户"]
    assert FollowTag.objects.filter(relation=rel, tag=tag, customer=rel.customer).exists()
    assert kinds(x)[1:] == [CustomerEvent.REMARK_CHANGED, CustomerEvent.TAGGED]
    tagged = CustomerEvent.objects.get(customer=rel.customer, kind=CustomerEvent.TAGGED)
    assert tagged.detail == {"tags": [tag.name]} and tagged.employee.userid == emp
    customer = Customer.objects.get(external_userid=x)
    assert "王总" in customer.search_text and "13800000001" in customer.search_text

    # WeCom's events carry no id: the inbox dedupes an event on its fields and CreateTime, so a
    # second edit of the same pair within the same second would read as a retry of the first.
    world.sim.advance(1)
    world.control("customer/edit", {"userid": emp, "external_userid": x, "remove_tag": [tag.tag_id]})
    world.process()
    assert not FollowTag.objects.filter(relation=rel).exists()
    assert kinds(x)[-1] == CustomerEvent.UNTAGGED

    # idempotent by state: the same event handled again changes nothing
    before = (CustomerEvent.objects.count(), FollowTag.objects.count())
    event = {
        "Event": "change_external_contact",
        "ChangeType": "edit_external_contact",
        "UserID": emp,
        "ExternalUserID": x,
        "CreateTime": str(int(time.time())),
    }
    for _ in range(2):
        customer_handlers.on_customer_changed(event)()
    assert (CustomerEvent.objects.count(), FollowTag.objects.count()) == before


def test_relations_lost_both_ways_and_rejoined(world):
    emp = employee(world.sim)
    x = customer_of(world.sim, emp)
    y = customer_of(world.sim, emp)
    world.process()

    world.control("delete", {"userid": emp, "external_userid": x, "by": "customer"})
    world.control("delete", {"userid": emp, "external_userid": y, "by": "employee"})
    world.process()
    rx, ry = relation(emp, x), relation(emp, y)
    assert rx.status == FollowRelation.LOST_BY_CUSTOMER and ry.status == FollowRelation.LOST_BY_EMPLOYEE
    for r in (rx, ry):
        assert r.customer.status == Customer.LOST and r.customer.lost_at == r.status_changed_at  # kept
    lost = CustomerEvent.objects.get(customer=rx.customer, kind=CustomerEvent.LOST)
    assert lost.detail == {"by": "customer"} and lost.employee.userid == emp
    assert CustomerEvent.objects.get(customer=ry.customer, kind=CustomerEvent.LOST).detail == {"by": "employee"}

    # WeCom still lists a customer-side deletion for the employee (one-way): a full sync keeps it lost
    run_full_sync(workers=2)
    assert relation(emp, x).status == FollowRelation.LOST_BY_CUSTOMER

    # the customer comes back: a new relation createtime → rejoined
    world.control("add_friend", {"userid": emp, "external_userid": y, "add_way": 3})
    world.process()
    ry = relation(emp, y)
    assert ry.status == FollowRelation.ACTIVE and ry.add_way == 3
    assert ry.customer.status == Customer.ACTIVE and ry.customer.lost_at is None
    assert kinds(y) == [CustomerEvent.ADDED, CustomerEvent.LOST, CustomerEvent.REJOINED]


def test_transfer_moves_the_relation_and_records_failures(world, sim_rules):
    a, b = employee(world.sim), employee(world.sim)
    x = customer_of(world.sim, a)
    y = customer_of(world.sim, a)
    world.process()

    r = world.sim.call(
        "externalcontact/transfer_customer", {"handover_userid": a, "takeover_userid": b, "external_userid": [y]}
    )
    assert r["customer"][0]["errcode"] == 0, r
    world.control("transfer/refuse", {"external_userid": y})
    world.process()
    failed = CustomerEvent.objects.get(customer__external_userid=y, kind=CustomerEvent.TRANSFER_FAILED)
    assert failed.employee.userid == b and failed.detail == {"reason": "customer_refused", "takeover_userid": b}
    assert relation(a, y).status == FollowRelation.ACTIVE

    sim_rules(transfer_accept_after_s=0)
    r = world.sim.call(
        "externalcontact/transfer_customer", {"handover_userid": a, "takeover_userid": b, "external_userid": [x]}
    )
    assert r["customer"][0]["errcode"] == 0, r
    world.control("tick")
    cbs = world.process()
    assert {"del_external_contact", "add_external_contact"} <= {c["change_type"] for c in cbs}
    assert relation(a, x).status == FollowRelation.TRANSFERRED
    assert relation(b, x).status == FollowRelation.ACTIVE
    customer = Customer.objects.get(external_userid=x)
    assert customer.status == Customer.ACTIVE
    moved = CustomerEvent.objects.get(customer=customer, kind=CustomerEvent.TRANSFERRED)
    assert moved.employee.userid == a and moved.detail == {"by": "transfer", "source": "DELETE_BY_TRANSFER"}


def test_group_life(world):
    owner = employee(world.sim)
    x = customer_of(world.sim, owner)
    stranger = world.control("customer/new", {"n": 1})["external_userid"][0]
    chat_id = world.control("group/create", {"owner": owner, "name": "会员群", "members": [x, stranger]})["chat_id"]
    world.process()
    chat = GroupChat.objects.get(chat_id=chat_id)
    assert chat.name == "会员群" and chat.owner.userid == owner and chat.member_count == 3 and chat.customer_count == 2
    stay = GroupMember.objects.get(group=chat, userid=x)
    assert stay.customer.external_userid == x and stay.left_at is None
    assert GroupMember.objects.get(group=chat, userid=stranger).customer is None  # not a customer (yet)
    # the add and the group's creation are processed in one batch, in no promised order
    joined = CustomerEvent.objects.filter(customer__external_userid=x, kind=CustomerEvent.GROUP_JOINED).get()
    assert joined.detail["chat_id"] == chat_id and CustomerEvent.ADDED in kinds(x)

    # the stranger becomes a customer: their stay is linked
    world.control("add_friend", {"userid": owner, "external_userid": stranger, "add_way": 4})
    world.process()
    assert GroupMember.objects.get(group=chat, userid=stranger).customer.external_userid == stranger
    assert CustomerEvent.GROUP_JOINED in kinds(stranger)  # the earlier join is on the new customer's timeline

    world.control("group/leave", {"chat_id": chat_id, "external_userid": x, "quit_scene": 1})
    # The leave is processed before the next changes: callbacks are delivered concurrently and may
    # arrive out of order, and a change_name re-read that lands first records the leave without
    # its QuitScene (a known limitation: the del_member event's scene is not applied afterwards).
    world.process()
    world.control("group/rename", {"chat_id": chat_id, "name": "VIP 会员群"})
    world.control("group/notice", {"chat_id": chat_id, "notice": "周末上新"})
    world.process()
    chat.refresh_from_db()
    assert chat.name == "VIP 会员群" and chat.notice == "周末上新" and chat.member_count == 2
    stay.refresh_from_db()
    assert stay.left_at is not None and stay.quit_scene == 1
    left = CustomerEvent.objects.filter(customer__external_userid=x, kind=CustomerEvent.GROUP_LEFT).get()
    assert left.detail["chat_id"] == chat_id and left.detail["quit_scene"] == 1

    # rejoining starts a new stay; the old one stays as history
    world.control("group/join", {"chat_id": chat_id, "external_userid": x, "join_scene": 3})
    world.process()
    stays = list(GroupMember.objects.filter(group=chat, userid=x).order_by("id"))
    assert len(stays) == 2 and stays[0].left_at and stays[1].left_at is None and stays[1].join_scene == 3

    world.control("group/dismiss", {"chat_id": chat_id})
    world.process()
    chat.refresh_from_db()
    assert chat.status == GroupChat.DISMISSED and chat.dismissed_at is not None and chat.member_count == 0
    assert not GroupMember.objects.filter(group=chat, left_at__isnull=True).exists()


def test_tag_changes(world):
    emp = employee(world.sim)
    x = customer_of(world.sim, emp)
    group = world.control("tags/admin_create", {"group_name": "兴趣偏好", "tags": ["黄金", "钻石"]})["tag_group"]
    world.process()
    tg = TagGroup.objects.get(group_id=group["group_id"])
    assert tg.name == "兴趣偏好" and not tg.deleted
    gold, diamond = (Tag.objects.get(tag_id=t["id"]) for t in group["tag"])
    assert {gold.name, diamond.name} == {"黄金", "钻石"} and gold.group == tg

    world.control("tags/admin_update", {"id": gold.tag_id, "name": "足金"})
    world.control("tags/admin_shuffle", {"group_id": tg.group_id, "order": [diamond.tag_id, gold.tag_id]})
    world.process()
    gold.refresh_from_db()
    diamond.refresh_from_db()
    assert gold.name == "足金" and diamond.order > gold.order

    world.control("customer/edit", {"userid": emp, "external_userid": x, "add_tag": [gold.tag_id, diamond.tag_id]})
    world.process()
    assert FollowTag.objects.filter(relation=relation(emp, x)).count() == 2

    world.control("tags/admin_delete", {"tag_id": [gold.tag_id]})
    world.process()
    gold.refresh_from_db()
    assert gold.deleted and not FollowTag.objects.filter(tag=gold).exists()
    assert FollowTag.objects.filter(tag=diamond).count() == 1

    world.control("tags/admin_delete", {"group_id": [tg.group_id]})
    world.process()
    tg.refresh_from_db()
    diamond.refresh_from_db()
    assert tg.deleted and diamond.deleted and not FollowTag.objects.filter(tag__group=tg).exists()


def test_org_changes(world):
    dept = world.control("department/create", {"name": "杭州西湖店", "parentid": 1})["department"]
    sub = world.control("department/create", {"name": "杭州西湖店二组", "parentid": dept["id"]})["department"]
    emp = employee(world.sim, department=[sub["id"]], position="店员")
    x = customer_of(world.sim, emp)
    world.process()
    d, s = Department.objects.get(id=dept["id"]), Department.objects.get(id=sub["id"])
    assert d.path == f"/1/{d.id}/" and s.path == f"{d.path}{s.id}/" and s.parent == d
    e = Employee.objects.get(userid=emp)
    assert (
        e.position == "店员" and list(e.departments.values_list("id", flat=True)) == [s.id] and e.main_department == s
    )

    # moving a department moves its subtree
    other = world.control("department/create", {"name": "浙江大区", "parentid": 1})["department"]
    world.control("department/update", {"id": dept["id"], "parentid": other["id"]})
    world.process()
    s.refresh_from_db()
    assert s.path == f"/1/{other['id']}/{dept['id']}/{s.id}/" and s.depth == 3

    # a new userid keeps the member's relations
    new_userid = emp + "x"
    world.control("employee/update", {"userid": emp, "new_userid": new_userid, "position": "店长"})
    world.process()
    e.refresh_from_db()
    assert e.userid == new_userid and e.position == "店长"
    assert relation(new_userid, x).status == FollowRelation.ACTIVE

    world.control("employee/resign", {"userid": new_userid})
    world.process()
    e.refresh_from_db()
    assert e.status == Employee.STATUS_LEFT and e.resigned_at is not None and not e.contact_enabled
    assert relation(new_userid, x).status == FollowRelation.ACTIVE  # kept for the resigned transfer

    world.control("department/delete", {"id": sub["id"]})
    world.process()
    assert not Department.objects.filter(id=sub["id"]).exists()
