"""Query counts of the console's and API's heaviest pages, pinned so that an N+1 cannot come back
silently: the number of queries must not grow with the rows on the page (1 row vs many), and stays
under a pinned ceiling.

Fast layer: the worlds are written straight into the test database (no emulator process). The
ceilings are the counts measured when they were pinned: a change that adds a query per request
must lower another or raise the ceiling here, on purpose.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from siyu.accounts import services as accounts
from siyu.broadcasts.models import Batch, Broadcast, Recipient
from siyu.channels.models import ChannelAdd, ChannelCode
from siyu.customers.models import (
    Customer,
    CustomerEvent,
    FollowRelation,
    FollowTag,
    Tag,
    TagGroup,
)
from siyu.org.models import Department, Employee, EmployeeDepartment

pytestmark = pytest.mark.django_db

PASSWORD = "query-count-pass-123"
STORE = 2  # the store department a store manager is bound to

# Ceilings (queries per request, per role), pinned from the counts measured on SQLite and
# PostgreSQL when they were written. A store manager's pages cost more: the scope (their department
# subtree's employees) is resolved first and every read is narrowed by it.
LIST_MAX = {"admin": 11, "store_manager": 27}
LIST_API_MAX = {"admin": 8, "store_manager": 21}
DETAIL_MAX = {"admin": 12, "store_manager": 20}
BROADCAST_MAX = {"admin": 11, "store_manager": 15}  # +1: the next result sync's time (its pending timer)
ANALYTICS_MAX = {"admin": 7, "store_manager": 17}


def _org(employees: int) -> list[Employee]:
    Department.objects.create(id=1, name="总部", parentid=0, path="/1/", depth=0)
    Department.objects.create(id=STORE, name="门店", parentid=1, parent_id=1, path="/1/2/", depth=1)
    out = []
    for i in range(employees):
        e = Employee.objects.create(
            userid=f"qc-emp{i}", name=f"导购{i}", main_department_id=STORE, contact_enabled=True
        )
        EmployeeDepartment.objects.create(employee=e, department_id=STORE)
        out.append(e)
    return out


def _customers(n: int, employees: list[Employee], relations_each: int = 2) -> list[Customer]:
    """``n`` more customers, each followed by ``relations_each`` employees, each relation with two
    tags and an event: every row of the list shows employees and tags of its own."""
    group, _ = TagGroup.objects.get_or_create(group_id="qc-grp", defaults={"name": "客户等级"})
    tags = [
        Tag.objects.get_or_create(tag_id=f"qc-tag{i}", defaults={"group": group, "name": f"等级{i}"})[0]
        for i in range(3)
    ]
    now = timezone.now()
    start = Customer.objects.filter(external_userid__startswith="wmqc").count()
    out = []
    for i in range(start, start + n):
        c = Customer.objects.create(
            external_userid=f"wmqc{i:06d}", name=f"客户{i}", first_added_at=now - timedelta(days=i)
        )
        for j in range(relations_each):
            emp = employees[(i + j) % len(employees)]
            rel = FollowRelation.objects.create(
                customer=c, employee=emp, remark=f"备注{i}-{j}", added_at=now - timedelta(days=i, hours=j)
            )
            for t in (tags[j % 3], tags[(j + 1) % 3]):
                FollowTag.objects.create(relation=rel, tag=t, customer=c, employee=emp)
            CustomerEvent.objects.create(customer=c, kind=CustomerEvent.ADDED, employee=emp, at=rel.added_at)
        out.append(c)
    return out


def _client(role: str, **binding) -> Client:
    user, _ = accounts.ensure_user(f"qc-{role}", PASSWORD, role=role, **binding)
    c = Client()
    c.force_login(user)
    c.user = user
    return c


CLIENTS = {"admin": {}, "store_manager": {"department_id": STORE}}


def _count(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        r = client.get(url)
    assert r.status_code == 200, (url, r.status_code)
    return len(ctx.captured_queries)


def _pinned(client: Client, url: str, ceiling: int, assert_max) -> str:
    with assert_max(ceiling):
        r = client.get(url)
    assert r.status_code == 200
    return r.content.decode()


# --- customer list --------------------------------------------------------------------------------
@pytest.mark.parametrize("role", list(CLIENTS))
@pytest.mark.parametrize("url,ceiling", [("/customers/", LIST_MAX), ("/api/v1/customers", LIST_API_MAX)])
def test_customer_list_queries_do_not_grow_with_the_page(role, url, ceiling, django_assert_max_num_queries):
    employees = _org(3)
    _customers(1, employees)
    client = _client(role, **CLIENTS[role])
    client.get(url)  # warm per-process caches (settings row, content types): not per page
    one = _count(client, url)
    _customers(49, employees)
    many = _count(client, url)
    assert many == one, f"{url} as {role}: {one} queries for 1 customer, {many} for 50"
    body = _pinned(client, url, ceiling[role], django_assert_max_num_queries)
    assert body.count("wmqc0000") >= 50 or body.count("客户") >= 50  # the page really holds 50 rows


# --- customer detail ------------------------------------------------------------------------------
@pytest.mark.parametrize("role", list(CLIENTS))
def test_customer_detail_queries_do_not_grow_with_relations(role, django_assert_max_num_queries):
    employees = _org(10)
    few, many = _customers(1, employees, relations_each=1)[0], _customers(1, employees, relations_each=10)[0]
    client = _client(role, **CLIENTS[role])
    client.get(f"/customers/{few.id}/")
    one = _count(client, f"/customers/{few.id}/")
    ten = _count(client, f"/customers/{many.id}/")
    assert ten == one, f"customer detail as {role}: {one} queries for 1 relation, {ten} for 10"
    body = _pinned(client, f"/customers/{many.id}/", DETAIL_MAX[role], django_assert_max_num_queries)
    assert "导购9" in body


# --- broadcast detail -----------------------------------------------------------------------------
def _broadcast(employees: list[Employee], per_employee: int, by) -> Broadcast:
    customers = _customers(len(employees) * per_employee, employees, relations_each=1)
    b = Broadcast.objects.create(
        kind=Broadcast.CUSTOMER,
        name="双十一",
        status=Broadcast.SENT,
        text="hi",
        created_by=by,
        totals={"planned": len(customers), "delivered": len(customers)},
    )
    for k, emp in enumerate(employees):
        batch = Batch.objects.create(
            broadcast=b, employee=emp, userid=emp.userid, size=per_employee, status=Batch.SENT, msgid=f"msg{b.id}-{k}"
        )
        mine = customers[k * per_employee : (k + 1) * per_employee]
        Recipient.objects.bulk_create(
            Recipient(
                broadcast=b,
                target=c.external_userid,
                customer_id=c.id,
                employee_id=emp.id,
                batch=batch,
                state=Recipient.RECEIVED if i % 2 else Recipient.DELIVERED,
            )
            for i, c in enumerate(mine)
        )
    return b


@pytest.mark.parametrize("role", list(CLIENTS))
def test_broadcast_detail_queries_do_not_grow_with_senders(role, django_assert_max_num_queries):
    employees = _org(10)
    client = _client(role, **CLIENTS[role])  # a store manager sees the broadcasts they created
    small, big = _broadcast(employees[:1], 1, client.user), _broadcast(employees, 5, client.user)
    client.get(f"/broadcasts/{small.id}/")
    one = _count(client, f"/broadcasts/{small.id}/")
    ten = _count(client, f"/broadcasts/{big.id}/")
    assert ten == one, f"broadcast detail as {role}: {one} queries for 1 sender, {ten} for 10 senders × 5"
    body = _pinned(client, f"/broadcasts/{big.id}/", BROADCAST_MAX[role], django_assert_max_num_queries)
    assert "导购9" in body


# --- channel analytics ----------------------------------------------------------------------------
@pytest.mark.parametrize("role", list(CLIENTS))
@pytest.mark.parametrize("dim", ["day", "code", "employee", "department"])
def test_channel_analytics_queries_do_not_grow_with_codes(role, dim, django_assert_max_num_queries):
    employees = _org(5)
    client = _client(role, **CLIENTS[role])
    today = timezone.localdate()
    url = f"/channels/analytics/?start={today - timedelta(days=13)}&end={today}&dim={dim}"

    def codes(n: int) -> None:
        start = ChannelCode.objects.count()
        for k in range(start, start + n):
            code = ChannelCode.objects.create(
                name=f"门店码{k}", users=[e.userid for e in employees], config_id=f"cfg{k}"
            )
            for d in range(14):
                emp = employees[(k + d) % len(employees)]
                at = timezone.now() - timedelta(days=d)
                ChannelAdd.objects.create(
                    code=code,
                    userid=emp.userid,
                    department_id=STORE,
                    external_userid=f"wmca{k}-{d}",
                    added_at=at,
                    day=timezone.localdate(at),
                    lost_at=at if d % 3 == 0 else None,
                )

    codes(1)
    client.get(url)
    one = _count(client, url)
    codes(9)
    ten = _count(client, url)
    assert ten == one, f"analytics by {dim} as {role}: {one} queries for 1 code, {ten} for 10"
    _pinned(client, url, ANALYTICS_MAX[role], django_assert_max_num_queries)
