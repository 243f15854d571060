"""Continuity (issue 6) over real HTTP to the emulator: resigned transfer spread over three
employees with refusals and a takeover at its cap, the 90-day on-job limit refused before WeCom,
churn alerts to the right manager exactly once.

The module has its own emulator (the clock moves by days). Callbacks are delivered to the live
server and processed by a real worker."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.utils import timezone

from siyu.accounts import services as accounts
from siyu.core.worker import Worker
from siyu.customers.models import Customer, CustomerEvent, FollowRelation
from siyu.org import selectors as org_selectors
from siyu.org.models import Employee
from siyu.sync.services import run_full_sync
from siyu.transfers import selectors as transfer_selectors
from siyu.transfers import services
from siyu.transfers.models import ChurnEvent, ChurnRule, GroupHandoverItem, Handover, HandoverItem
from siyu.wecom import gateway
from siyu.wecom.models import CallbackInbox
from tests.sim.helpers import customer_of, employee, new_tags, own_sim, resign, uid
from tests.sync.test_sync_callbacks import last_callback_id, wait_for

sim = own_sim(customers=10, seed=61)
DAY = 86400


class World:
    def __init__(self, sim):
        self.sim = sim
        self.mark = last_callback_id(sim)

    def process(self) -> None:
        """Every callback sent since the last call delivered, then a worker runs till idle."""

        def delivered():
            cbs = self.sim.control("callbacks", {"since": self.mark, "limit": 100000})["callbacks"]
            if not cbs:
                return True
            if all(c["status"] == 1 for c in cbs):
                self.mark = cbs[-1]["id"]
                return True
            return False

        wait_for(delivered, timeout=60)
        Worker(interval=0.02).run(max_idle_s=0.5)
        bad = CallbackInbox.objects.exclude(status__in=[CallbackInbox.DONE, CallbackInbox.IGNORED])
        assert not bad.exists(), list(bad.values("event", "change_type", "status", "error")[:5])


def advance(sim, seconds: int) -> None:
    """Move the emulator's clock. The product's cached tokens expire with the jump (against real
    WeCom, wechatpy refreshes a token 60 s before its expiry, so they never go stale like this);
    they are refreshed at once so the inbox's parallel reads do not all meet 42001 together."""
    sim.control("time/advance", {"seconds": seconds})
    for c in (gateway.contact(), gateway.app()):
        c.invalidate_token()
        c.fetch_access_token()


@pytest.fixture
def world(live_callbacks):
    run = run_full_sync(workers=2)
    assert run.status == "done", run.error
    return World(live_callbacks)


def console(role: str = "operator", **binding) -> Client:
    user, _ = accounts.ensure_user(uid("op"), "console-pass-123", role=role, **binding)
    c = Client()
    c.force_login(user)
    return c


def add_customers(sim, userid: str, n: int) -> list[str]:
    return [customer_of(sim, userid) for _ in range(n)]


def page_items(c: Client, handover_id: int) -> dict[str, str]:
    """Every customer's status as the console's handover page shows it (all pages)."""
    out: dict[str, str] = {}
    page = 1
    while True:
        html = c.get(f"/transfers/handovers/{handover_id}/", {"page": page}).content.decode()
        for x, status in re.findall(r'data-testid="item-row" data-x="([^"]+)" data-status="([^"]+)"', html):
            out[x] = status
        if f"page={page + 1}" not in html:
            return out
        page += 1


def page_counts(c: Client, handover_id: int) -> dict[str, int]:
    html = c.get(f"/transfers/handovers/{handover_id}/").content.decode()
    return {k: int(v) for k, v in re.findall(r'<dd data-count="([a-z_]+)">(\d+)</dd>', html)}


# --- the scenario of the issue -----------------------------------------------------------------
@pytest.mark.slow
def test_resigned_500_customers_10_groups_spread_over_three(world):
    s = world.sim
    leaver = employee(s)
    b, c, d = employee(s), employee(s), employee(s)
    xs = add_customers(s, leaver, 500)
    # d already has 5 customers; its cap lets it take 100 more
    add_customers(s, d, 5)
    s.control("employee/set", {"userid": d, "customer_cap": 105})
    chats = [
        s.control("group/create", {"owner": leaver, "name": f"群{i}", "members": xs[i * 3 : i * 3 + 3]})["chat_id"]
        for i in range(10)
    ]
    t1, t2 = new_tags(s, "VIP", "老客")
    s.control("customer/edit", {"userid": leaver, "external_userid": xs[-1], "remark": "王女士<b>", "add_tag": [t1]})
    world.process()
    resign(s, leaver)
    world.process()
    assert Employee.objects.get(userid=leaver).status == Employee.STATUS_LEFT

    op = console()
    listing = op.get("/transfers/resigned/").content.decode()
    assert f'data-userid="{leaver}"' in listing
    emp = Employee.objects.get(userid=leaver)
    ids = {u: Employee.objects.get(userid=u).id for u in (b, c, d)}
    r = op.post(f"/transfers/resigned/{emp.id}/", {"strategy": "round_robin", "takeover": list(ids.values())})
    assert r.status_code == 302, r.content[:500]
    h = Handover.objects.get()
    assert h.kind == Handover.RESIGNED and h.items.count() == 500 and h.group_items.count() == 10
    assert set(h.items.values_list("status", flat=True)) == {HandoverItem.WAITING}
    per = {
        u: list(h.items.filter(takeover_userid=u).order_by("id").values_list("external_userid", flat=True))
        for u in (b, c, d)
    }
    assert sorted(len(v) for v in per.values()) == [166, 167, 167]
    # every group went at once
    assert set(GroupHandoverItem.objects.values_list("status", flat=True)) == {"done"}
    owners = {ch: s.call("externalcontact/groupchat/get", {"chat_id": ch})["group_chat"]["owner"] for ch in chats}
    assert set(owners.values()) <= {b, c, d} and len(set(owners.values())) == 3

    # 20 customers refuse (10 of b's, 10 of c's)
    refusers = per[b][:10] + per[c][:10]
    for x in refusers:
        s.control("transfer/refuse", {"external_userid": x})
    world.process()
    assert h.items.filter(status=HandoverItem.REFUSED).count() == 20  # from transfer_fail callbacks

    # the waiting clock is shown per customer
    html = op.get(f"/transfers/handovers/{h.id}/", {"status": "waiting"}).content.decode()
    assert "剩余" in html

    advance(s, DAY + 60)
    world.process()
    r = op.post(f"/transfers/handovers/{h.id}/refresh/")
    assert r.status_code == 302

    expected = {}
    for u, lst in per.items():
        room = 100 if u == d else len(lst)
        for i, x in enumerate(lst):
            expected[x] = "accepted" if i < room else "at_capacity"
    for x in refusers:
        expected[x] = "refused"
    shown = page_items(op, h.id)
    assert shown == expected
    counts = page_counts(op, h.id)
    assert counts["total"] == 500 and counts["refused"] == 20
    assert counts["at_capacity"] == len(per[d]) - 100
    assert counts["accepted"] == 500 - 20 - (len(per[d]) - 100)
    assert counts["waiting"] == 0
    # the emulator agrees
    sim_status = {
        t["external_userid"]: t["status"]
        for t in s.control("transfer/list", {"handover_userid": leaver, "limit": 1000})["transfers"]
    }
    code = {"accepted": 1, "refused": 3, "at_capacity": 4}
    assert all(sim_status[x] == code[v] for x, v in expected.items())

    # remark, tags and history carried over to the new relation
    carried = xs[-1]
    assert expected[carried] == "accepted"
    first_owner = next(u for u, lst in per.items() if carried in lst)
    new = FollowRelation.objects.get(customer__external_userid=carried, employee__userid=first_owner)
    old = FollowRelation.objects.get(customer__external_userid=carried, employee__userid=leaver)
    assert new.status == FollowRelation.ACTIVE and new.remark == "王女士<b>"
    assert set(new.tags.values_list("tag_id", flat=True)) >= {t1}
    assert old.status == FollowRelation.TRANSFERRED
    kinds = set(CustomerEvent.objects.filter(customer__external_userid=carried).values_list("kind", flat=True))
    assert {CustomerEvent.ADDED, CustomerEvent.TRANSFERRED} <= kinds
    # the hostile remark is escaped in the console
    page = op.get(f"/customers/{new.customer_id}/").content.decode()
    assert "王女士<b>" not in page and "王女士&lt;b&gt;" in page
    assert t2


# --- the 90-day on-job limit ------------------------------------------------------------------------
def test_onjob_limit_refused_before_wecom(world):
    s = world.sim
    a, b, z = employee(s), employee(s), employee(s)
    x = customer_of(s, a)
    y = customer_of(s, a)
    world.process()
    op = console()
    emp_a, emp_b = Employee.objects.get(userid=a), Employee.objects.get(userid=b)

    def transfer(src, dst, picked, message="您好，后续由同事为您服务"):
        return op.post("/transfers/onjob/", {"handover": src.id, "takeover": dst.id, "x": picked, "message": message})

    # two real on-job transfers of x within 90 days: a → b, then b → a
    for src, dst in ((emp_a, emp_b), (emp_b, emp_a)):
        assert transfer(src, dst, [x]).status_code == 302
        advance(s, DAY + 60)
        world.process()
        services.poll()
    assert HandoverItem.objects.filter(external_userid=x, status=HandoverItem.ACCEPTED).count() == 2
    assert FollowRelation.objects.get(customer__external_userid=x, employee=emp_a).status == FollowRelation.ACTIVE

    # shown before submitting: the customer is at the limit, its box disabled
    html = op.get("/transfers/onjob/", {"handover": emp_a.id}).content.decode()
    row = re.search(rf'data-x="{x}".*?</tr>', html, re.S).group(0)
    assert "disabled" in row and "2 / 2" in row and "已达上限" in row
    assert "disabled" not in re.search(rf'data-x="{y}".*?</tr>', html, re.S).group(0)
    preview = op.post(
        "/api/v1/transfers/onjob/preview", {"external_userids": [x, y]}, content_type="application/json"
    ).json()
    assert {p["external_userid"]: p["allowed"] for p in preview} == {x: False, y: True}

    def transfer_calls() -> int:
        calls = s.control("api_log", {"limit": 100000})["calls"]
        return sum(1 for c in calls if c["path"].endswith("transfer_customer"))

    n_before = transfer_calls()
    assert n_before >= 2
    handovers_before = Handover.objects.count()
    # posted anyway (a forged form): refused with a clear message, nothing reaches WeCom
    r = transfer(emp_a, emp_b, [x])
    assert r.status_code == 200
    body = r.content.decode()
    assert "90天内" in body and "上限" in body and "未提交到企业微信" in body
    assert Handover.objects.count() == handovers_before
    r = op.post(
        "/api/v1/transfers/onjob",
        {"handover_userid": a, "takeover_userid": b, "external_userids": [x]},
        content_type="application/json",
    )
    assert r.status_code == 422 and "90天内" in r.json()["detail"]
    assert transfer_calls() == n_before
    assert not [t for t in s.control("transfer/list", {"external_userid": x})["transfers"] if t["status"] == 2]

    # data scope: a guide sees the handovers of their own customers only
    h = Handover.objects.order_by("id").first()
    outsider = console("guide", wecom_userid=z)
    assert outsider.get(f"/transfers/handovers/{h.id}/").status_code == 403
    assert outsider.get("/api/v1/transfers/handovers").json() == []
    assert outsider.get(f"/api/v1/transfers/handovers/{h.id}").status_code == 403
    assert outsider.get("/transfers/onjob/").status_code == 403  # guides do not start transfers
    mine = console("guide", wecom_userid=b)
    assert mine.get(f"/transfers/handovers/{h.id}/").status_code == 200
    got = mine.get(f"/api/v1/transfers/handovers/{h.id}").json()
    assert [i["status"] for i in got["items"]] == ["accepted"] and got["counts"]["accepted"] == 1


# --- churn alerts -----------------------------------------------------------------------------------
def test_churn_alert_reaches_the_manager_once(world):
    s = world.sim
    dept = s.control("department/create", {"name": uid("门店"), "parentid": 1})["department"]["id"]
    boss = employee(s, department=[dept], is_leader_in_dept=[1])
    guide = employee(s, department=[dept], is_leader_in_dept=[0])
    other_boss = employee(s)  # not the guide's manager
    x1, x2 = customer_of(s, guide), customer_of(s, guide)
    world.process()
    assert org_selectors.manager_of(Employee.objects.get(userid=guide)) == boss
    since = s.control("app_messages", {})["messages"]
    last_id = since[-1]["id"] if since else 0

    s.control("delete", {"userid": guide, "external_userid": x1, "by": "customer"})
    s.control("delete", {"userid": guide, "external_userid": x2, "by": "employee"})
    world.process()
    evs = ChurnEvent.objects.filter(userid=guide).order_by("id")
    assert {e.kind for e in evs} == {ChurnEvent.BY_CUSTOMER, ChurnEvent.BY_EMPLOYEE}
    assert {e.manager_userid for e in evs} == {boss}
    assert {e.notify_status for e in evs} == {ChurnEvent.SENT}
    msgs = s.control("app_messages", {"since_id": last_id})["messages"]
    to_boss = [m for m in msgs if m["touser"] == boss]
    assert len(to_boss) == 2 and not [m for m in msgs if m["touser"] in (other_boss, guide)]
    assert all("客户流失提醒" in m["content"]["content"] for m in to_boss)

    # the same callbacks again (WeCom retries): nothing new is recorded or sent
    for cb in s.control("callbacks", {"since": 0, "limit": 100000})["callbacks"][-5:]:
        s.control("callbacks/redeliver", {"ids": [cb["id"]]})
    world.process()
    services.notify(list(evs.values_list("id", flat=True)))
    assert ChurnEvent.objects.filter(userid=guide).count() == 2
    msgs = s.control("app_messages", {"since_id": last_id})["messages"]
    assert len([m for m in msgs if m["touser"] == boss]) == 2

    # the list, filtered, and the export (scoped: a guide of another store sees nothing)
    op = console()
    html = op.get("/transfers/churn/", {"kind": ChurnEvent.BY_CUSTOMER}).content.decode()
    assert f'data-x="{x1}"' in html and f'data-x="{x2}"' not in html
    csv_text = b"".join(op.get("/transfers/churn/export.csv").streaming_content).decode("utf-8-sig")
    assert x1 in csv_text and x2 in csv_text
    outsider = console("guide", wecom_userid=other_boss)
    assert f'data-x="{x1}"' not in outsider.get("/transfers/churn/").content.decode()


def test_churn_daily_digest_once(world):
    s = world.sim
    services.churn_rule()
    ChurnRule.objects.filter(id=1).update(mode=ChurnRule.DIGEST)
    guide = employee(s)
    boss = employee(s)
    s.control("employee/update", {"userid": guide, "direct_leader": [boss]})
    xs = [customer_of(s, guide) for _ in range(3)]
    world.process()
    last = s.control("app_messages", {})["messages"]
    last_id = last[-1]["id"] if last else 0
    for x in xs:
        s.control("delete", {"userid": guide, "external_userid": x, "by": "customer"})
    world.process()
    assert ChurnEvent.objects.filter(userid=guide, notify_status=ChurnEvent.PENDING).count() == 3
    assert not [m for m in s.control("app_messages", {"since_id": last_id})["messages"] if m["touser"] == boss]
    assert services.send_digest() == 1
    assert services.send_digest() == 0
    msgs = [m for m in s.control("app_messages", {"since_id": last_id})["messages"] if m["touser"] == boss]
    assert len(msgs) == 1 and "共3条" in msgs[0]["content"]["content"]


# --- planning (pure) -----------------------------------------------------------------------------------
def test_plan_strategies():
    xs = [f"x{i}" for i in range(10)]
    p = services.plan("single", external_userids=xs, chat_ids=["c1", "c2"], takeovers=[7, 8])
    assert p.customers == {7: xs} and p.groups == {7: ["c1", "c2"]} and not p.unplaced
    p = services.plan("count", external_userids=xs, chat_ids=[], takeovers=[7, 8], counts={7: 3, 8: 4})
    assert p.customers == {7: xs[:3], 8: xs[3:7]} and p.unplaced == xs[7:]
    p = services.plan("round_robin", external_userids=xs, chat_ids=["c1", "c2", "c3"], takeovers=[7, 8, 9], caps={7: 2})
    assert p.customers[7] == ["x0", "x3"] and len(p.customers[8]) == 4 and len(p.customers[9]) == 4
    assert sorted(x for xs_ in p.customers.values() for x in xs_) == sorted(xs) and p.groups == {
        7: ["c1"],
        8: ["c2"],
        9: ["c3"],
    }
    p = services.plan("round_robin", external_userids=xs, chat_ids=[], takeovers=[7, 8], caps={7: 2, 8: 3})
    assert len(p.customers[7]) == 2 and len(p.customers[8]) == 3 and len(p.unplaced) == 5
    with pytest.raises(services.TransferError):
        services.plan("single", external_userids=xs, chat_ids=[], takeovers=[])


# --- the pre-check: send only what WeCom can take (issue 16 item 4) ----------------------------------
def _sent_to_wecom(sim, suffix: str) -> set[str]:
    """Every customer any transfer call of ``suffix`` sent to WeCom."""
    out: set[str] = set()
    for c in sim.control("api_log", {"limit": 100000})["calls"]:
        if c["path"].endswith(suffix):
            out |= set((c.get("body") or {}).get("external_userid") or [])
    return out


def _stale_relation(external_userid: str, userid: str) -> None:
    """Our records say ``userid`` follows the customer; WeCom does not (a missed callback, a move
    made in WeCom's admin console): the mismatch of the issue (301 sent where WeCom listed 285)."""
    FollowRelation.objects.create(
        customer=Customer.objects.get(external_userid=external_userid),
        employee=Employee.objects.get(userid=userid),
        status=FollowRelation.ACTIVE,
        added_at=timezone.now(),
    )


def test_resigned_sends_only_what_wecom_lists_and_explains_the_rest(world):
    s = world.sim
    leaver, other, taker = employee(s), employee(s), employee(s)
    xs = add_customers(s, leaver, 3)
    y = customer_of(s, other)
    world.process()
    resign(s, leaver)
    world.process()
    _stale_relation(y, leaver)
    emp = Employee.objects.get(userid=leaver)
    assert emp.status == Employee.STATUS_LEFT

    check = services.precheck_resigned(emp, transfer_selectors.unassigned_from_wecom())
    assert check.wecom_ok and sorted(check.sendable) == sorted(xs)
    assert set(check.refused) == {y} and check.refused[y].errcode == 40131

    op = console()
    html = op.get(f"/transfers/resigned/{emp.id}/").content.decode()
    row = re.search(rf'data-testid="refused-row" data-x="{y}".*?</tr>', html, re.S).group(0)
    assert "待分配客户中没有这位客户" in row and "企业微信会拒绝转接" in row
    assert "待分配客户 3 位" in html

    r = op.post(
        f"/transfers/resigned/{emp.id}/", {"strategy": "single", "takeover": [Employee.objects.get(userid=taker).id]}
    )
    assert r.status_code == 302, r.content[:500]
    h = Handover.objects.filter(handover=emp).get()
    statuses = dict(h.items.values_list("external_userid", "status"))
    assert statuses == {**{x: HandoverItem.WAITING for x in xs}, y: HandoverItem.NOT_SENT}
    assert y not in _sent_to_wecom(s, "resigned/transfer_customer")
    assert not h.items.filter(status=HandoverItem.FAILED).exists()  # nothing WeCom refused was sent
    page = op.get(f"/transfers/handovers/{h.id}/").content.decode()
    item = re.search(rf'data-x="{y}" data-status="not_sent".*?</tr>', page, re.S).group(0)
    assert "企业微信会拒绝转接" in item and "40131" in item  # the code only as secondary text
    # customers are waiting: the page re-reads its counts and rows by itself
    assert 'data-testid="handover-live"' in page
    r = op.get(f"/transfers/handovers/{h.id}/", {"part": "items"})
    body = r.content.decode()
    assert r.status_code == 200 and "<html" not in body and f'data-x="{y}" data-status="not_sent"' in body
    assert "part=" not in body  # its pagination links lead to the page, not the fragment


def test_onjob_precheck_explains_customers_wecom_no_longer_shows(world):
    s = world.sim
    a, b, c = employee(s), employee(s), employee(s)
    x = customer_of(s, a)
    stale = customer_of(s, c)
    world.process()
    _stale_relation(stale, a)
    op = console()
    emp_a, emp_b = Employee.objects.get(userid=a), Employee.objects.get(userid=b)

    html = op.get("/transfers/onjob/", {"handover": emp_a.id}).content.decode()
    row = re.search(rf'data-x="{stale}".*?</tr>', html, re.S).group(0)
    assert "disabled" in row and 'data-testid="wecom-refused"' in row and "已不是这位客户的跟进人" in row
    assert "disabled" not in re.search(rf'data-x="{x}".*?</tr>', html, re.S).group(0)

    # posted anyway: the stale customer is recorded as not sent, with why; only x reaches WeCom
    r = op.post("/transfers/onjob/", {"handover": emp_a.id, "takeover": emp_b.id, "x": [x, stale], "message": "您好"})
    assert r.status_code == 302, r.content[:500]
    h = Handover.objects.filter(handover=emp_a).latest("id")
    assert dict(h.items.values_list("external_userid", "status")) == {
        x: HandoverItem.WAITING,
        stale: HandoverItem.NOT_SENT,
    }
    assert stale not in _sent_to_wecom(s, "externalcontact/transfer_customer")
    # the REST API checks the same way: only customers WeCom would refuse → 422 in words, nothing sent
    r = op.post(
        "/api/v1/transfers/onjob",
        {"handover_userid": a, "takeover_userid": c, "external_userids": [stale]},
        content_type="application/json",
    )
    assert r.status_code == 422 and "已不是这位客户的跟进人" in r.json()["detail"]
    assert stale not in _sent_to_wecom(s, "externalcontact/transfer_customer")
