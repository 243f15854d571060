"""Every callback type of issue 3 changes what the console shows, within seconds, over real HTTP.

The emulator's world is changed through its control API (or its WeCom API, as an app would); the
emulator sends the real encrypted callbacks to the product's live server; a worker runs in the
background as in production; and the test reads the console's pages over HTTP, with an admin's
session, until they show the change. Each wait is bounded by ``WITHIN_S``.

Covered: change_external_contact add / add_half / edit / del_external_contact / del_follow_user /
transfer_fail; change_external_chat create, update (add_member, del_member, change_owner,
change_name, change_notice) and dismiss; change_external_tag create / update / delete / shuffle
(tags and tag groups); change_contact create_user / update_user / delete_user and create_party /
update_party / delete_party.
"""

from __future__ import annotations

import re
import threading
import time
from urllib.parse import urlencode

import pytest
import requests
from django.conf import settings
from django.db import connection
from django.test import Client
from django.utils.html import escape

from siyu.accounts import services as accounts
from siyu.core.worker import Worker
from siyu.customers.models import Tag
from siyu.org.models import Employee
from siyu.sync.services import run_full_sync
from tests.sim.helpers import customer_of, employee, uid

WITHIN_S = 10.0  # "within seconds": every change must be on the page by then


class Console:
    """The admin's browser, minus the browser: GET console pages over HTTP and wait for a change."""

    def __init__(self, sim, base_url: str, http: requests.Session):
        self.sim = sim
        self.base = base_url
        self.http = http
        self.latencies: dict[str, float] = {}

    def get(self, path: str, **params) -> str:
        url = self.base + path + ("?" + urlencode(params, doseq=True) if params else "")
        r = self.http.get(url, timeout=10, allow_redirects=False)
        assert r.status_code == 200, (url, r.status_code)
        return r.text

    def wait(self, label: str, path: str, predicate, **params) -> str:
        """Poll the page until ``predicate(html)`` holds; record how long it took (from the call,
        i.e. from just after the change was made in the emulator)."""
        t0 = time.monotonic()
        while True:
            body = self.get(path, **params)
            if predicate(body):
                self.latencies[label] = time.monotonic() - t0
                return body
            if time.monotonic() - t0 > WITHIN_S:
                raise AssertionError(f"{label}: {path} {params} did not change within {WITHIN_S} s")
            time.sleep(0.1)

    def control(self, name: str, body: dict | None = None) -> dict:
        return self.sim.control(name, body)


def has(text: str):
    return lambda body: escape(text) in body


def lacks(text: str):
    return lambda body: escape(text) not in body


def listed(text: str):
    """The text is in the group table (not just echoed in the filter form)."""
    return lambda body: (
        'data-testid="group-table"' in body and escape(text) in body.split('data-testid="group-table"', 1)[1]
    )


def customer_ids(body: str) -> list[int]:
    return [int(x) for x in re.findall(r'data-customer="(\d+)"', body)]


@pytest.fixture
def console(live_callbacks, live_server):
    """Synced with the emulator, a worker running in the background, an admin's HTTP session."""
    sim = live_callbacks
    assert run_full_sync(workers=2).status == "done"
    user, _ = accounts.ensure_user(f"cb-admin-{uid()}", "cb-pass-123", role="admin")
    client = Client()
    client.force_login(user)
    http = requests.Session()
    http.cookies.set(settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value)

    worker = Worker(interval=0.05)

    def run():
        try:
            worker.run()
        finally:
            connection.close()

    thread = threading.Thread(target=run, name="test-worker", daemon=True)
    thread.start()
    c = Console(sim, live_server.url, http)
    yield c
    worker.stop()
    thread.join(15)
    assert not thread.is_alive()
    assert c.latencies and max(c.latencies.values()) <= WITHIN_S, c.latencies


def test_contact_events_change_the_customer_pages(console, sim_rules):
    c = console
    # add_external_contact: a new customer is in the list (searched by nickname)
    emp = employee(c.sim)
    name = f"回调客户{uid()}"
    x = customer_of(c.sim, emp, name=name)
    body = c.wait("add_external_contact", "/customers/", lambda b: len(customer_ids(b)) == 1, q=name.lower())
    cid = customer_ids(body)[0]
    emp_id = Employee.objects.get(userid=emp).id

    # edit_external_contact: remark and a corp tag, on the detail page and through the tag filter
    tag = Tag.objects.filter(deleted=False).order_by("id").first()
    remark = f"回调备注{uid()}"
    c.control("customer/edit", {"userid": emp, "external_userid": x, "remark": remark, "add_tag": [tag.tag_id]})
    c.wait("edit_external_contact", f"/customers/{cid}/", has(remark))
    found = c.get("/customers/", tags=tag.id, employee=emp_id, q=name.lower())
    assert customer_ids(found) == [cid]

    # add_half_external_contact: the customer added the employee through a skip-verify way and the
    # employee has not added back yet
    sim_rules(employee_confirms_half_add_immediately=False)
    state = f"half{uid()}"[:30]
    way = c.sim.call(
        "externalcontact/add_contact_way", {"type": 1, "scene": 2, "user": [emp], "state": state, "skip_verify": True}
    )
    half_name = f"半添加{uid()}"
    c.control("scan", {"config_id": way["config_id"], "name": half_name})
    body = c.wait(
        "add_half_external_contact", "/customers/", lambda b: len(customer_ids(b)) == 1, q=half_name.lower()
    )  # by name: the channel filter takes the product's codes only
    assert escape(half_name) in body

    # del_follow_user (the customer deleted the employee) and del_external_contact (the employee
    # deleted the customer): both listed as lost, with their relation kept
    y_name = f"被删客户{uid()}"
    y = customer_of(c.sim, emp, name=y_name)
    c.wait("add_external_contact (2)", "/customers/", lambda b: len(customer_ids(b)) == 1, q=y_name.lower())
    c.control("delete", {"userid": emp, "external_userid": x, "by": "customer"})
    c.wait("del_follow_user", "/customers/", lambda b: customer_ids(b) == [cid], status="lost", q=name.lower())
    c.control("delete", {"userid": emp, "external_userid": y, "by": "employee"})
    body = c.wait(
        "del_external_contact", "/customers/", lambda b: len(customer_ids(b)) == 1, status="lost", q=y_name.lower()
    )
    detail = c.get(f"/customers/{customer_ids(body)[0]}/")
    assert f'data-relation="{emp}"' in detail and 'data-kind="lost"' in detail

    # transfer_fail: the customer refused the takeover employee
    other = employee(c.sim)
    z_name = f"拒绝转接{uid()}"
    z = customer_of(c.sim, emp, name=z_name)
    body = c.wait("add_external_contact (3)", "/customers/", lambda b: len(customer_ids(b)) == 1, q=z_name.lower())
    zid = customer_ids(body)[0]
    r = c.sim.call(
        "externalcontact/transfer_customer", {"handover_userid": emp, "takeover_userid": other, "external_userid": [z]}
    )
    assert r["customer"][0]["errcode"] == 0, r
    c.control("transfer/refuse", {"external_userid": z})
    c.wait("transfer_fail", f"/customers/{zid}/", lambda b: 'data-kind="transfer_failed"' in b)


def test_group_events_change_the_group_pages(console):
    c = console
    owner, heir = employee(c.sim, name=f"群主{uid()}"), employee(c.sim, name=f"新群主{uid()}")
    stay_name, join_name = f"老成员{uid()}", f"新成员{uid()}"
    x = customer_of(c.sim, owner, name=stay_name)
    y = customer_of(c.sim, owner, name=join_name)
    group_name = f"回调群{uid()}"
    chat_id = c.control("group/create", {"owner": owner, "name": group_name, "members": [x]})["chat_id"]
    body = c.wait("create", "/groups/", listed(group_name), q=group_name)
    gid = int(re.search(r'href="/groups/(\d+)/"', body).group(1))
    detail = f"/groups/{gid}/"
    assert escape(stay_name) in c.get(detail)

    c.control("group/join", {"chat_id": chat_id, "external_userid": y, "join_scene": 3})
    c.wait("update/add_member", detail, has(join_name))
    ycid = customer_ids(c.get("/customers/", q=join_name.lower()))[0]
    assert 'data-group="current"' in c.get(f"/customers/{ycid}/")

    c.control("group/leave", {"chat_id": chat_id, "external_userid": x, "quit_scene": 0})
    xcid = customer_ids(c.get("/customers/", q=stay_name.lower()))[0]
    c.wait(
        "update/del_member",
        f"/customers/{xcid}/",
        lambda b: 'data-group="past"' in b and 'data-group="current"' not in b,
    )
    history = c.get(detail).split('data-testid="history-table"', 1)[1]
    assert 'data-left="1"' in history and escape(stay_name) in history

    heir_name = Employee.objects.get(userid=heir).name
    r = c.sim.call("externalcontact/groupchat/onjob_transfer", {"chat_id_list": [chat_id], "new_owner": heir})
    assert r["failed_chat_list"] == [], r
    c.wait(
        "update/change_owner",
        detail,
        lambda b: escape(heir_name) in b.split('data-testid="group-info"', 1)[1].split("</dl>", 1)[0],
    )

    new_name = f"改名群{uid()}"
    c.control("group/rename", {"chat_id": chat_id, "name": new_name})
    c.wait("update/change_name", "/groups/", listed(new_name), q=new_name)

    notice = f"群公告{uid()}"
    c.control("group/notice", {"chat_id": chat_id, "notice": notice})
    c.wait("update/change_notice", detail, has(notice))

    c.control("group/dismiss", {"chat_id": chat_id})
    c.wait("dismiss", "/groups/", listed(new_name), q=new_name, status="dismissed")


def tag_order(body: str, tag_ids: list[str]) -> list[str]:
    return sorted(tag_ids, key=lambda t: body.index(f'data-tag="{t}"'))


def test_tag_events_change_the_tag_page(console):
    c = console
    group_name, a, b = f"回调标签组{uid()}"[:30], f"甲{uid()}"[:30], f"乙{uid()}"[:30]
    group = c.control("tags/admin_create", {"group_name": group_name, "tags": [a, b]})["tag_group"]
    body = c.wait("create (group and tags)", "/tags/", lambda h: escape(group_name) in h and escape(b) in h)
    ids = [t["id"] for t in group["tag"]]

    renamed, group_renamed = f"丙{uid()}"[:30], f"改名标签组{uid()}"[:30]
    c.control("tags/admin_update", {"id": ids[0], "name": renamed})
    c.wait("update (tag)", "/tags/", has(renamed))
    c.control("tags/admin_update", {"id": group["group_id"], "name": group_renamed})
    body = c.wait("update (group)", "/tags/", has(group_renamed))

    before = tag_order(body, ids)
    c.control("tags/admin_shuffle", {"group_id": group["group_id"], "order": list(reversed(before))})
    c.wait("shuffle", "/tags/", lambda h: tag_order(h, ids) == list(reversed(before)))

    c.control("tags/admin_delete", {"tag_id": [ids[0]]})
    c.wait("delete (tag)", "/tags/", lambda h: f'data-tag="{ids[0]}"' not in h and f'data-tag="{ids[1]}"' in h)
    c.control("tags/admin_delete", {"group_id": [group["group_id"]]})
    c.wait("delete (group)", "/tags/", lambda h: f'data-group="{group["group_id"]}"' not in h)


def test_org_events_change_the_employee_page(console):
    c = console
    dept_name = f"回调门店{uid()}"
    dept = c.control("department/create", {"name": dept_name, "parentid": 1})["department"]
    c.wait("create_party", "/employees/", has(dept_name))
    renamed = f"改名门店{uid()}"
    c.control("department/update", {"id": dept["id"], "name": renamed})
    c.wait("update_party", "/employees/", lambda h: escape(renamed) in h and escape(dept_name) not in h)

    name = f"回调员工{uid()}"
    userid = employee(c.sim, name=name, department=[dept["id"]])
    body = c.wait("create_user", "/employees/", lambda h: f'data-employee="{userid}"' in h)
    assert escape(name) in body
    new_name = f"改名员工{uid()}"
    c.control("employee/update", {"userid": userid, "name": new_name, "position": "店长"})
    c.wait("update_user", "/employees/", lambda h: escape(new_name) in h and escape(name) not in h)
    c.control("employee/delete", {"userid": userid})
    c.wait("delete_user", "/employees/", lambda h: f'data-employee="{userid}"' not in h)
    assert f'data-employee="{userid}"' in c.get("/employees/", left=1)  # kept, as resigned

    c.control("department/delete", {"id": dept["id"]})
    c.wait("delete_party", "/employees/", lacks(renamed), left=1)
