"""Fast layer: the overview leads with what an operator wants first — customers added and lost
today and this week, net growth, the 30-day trend, the channel top list, pending work — and the
admin's system health comes after it (issue 16, item 8)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from siyu.accounts.models import Profile
from siyu.accounts.selectors import DataScope
from siyu.broadcasts.models import Broadcast
from siyu.customers import selectors
from siyu.customers.models import Customer, FollowRelation
from siyu.org.models import Department, Employee, EmployeeDepartment
from tests.helpers import client_for, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    store = Department.objects.create(id=2, name="静安店", path="/2/", depth=0)
    other = Department.objects.create(id=3, name="徐汇店", path="/3/", depth=0)
    a = Employee.objects.create(userid="a", name="许娟", main_department=store)
    b = Employee.objects.create(userid="b", name="王强", main_department=other)
    EmployeeDepartment.objects.create(employee=a, department=store)
    EmployeeDepartment.objects.create(employee=b, department=other)
    now = timezone.localtime()
    n = 0

    def rel(emp, added, lost=None):
        nonlocal n
        n += 1
        c = Customer.objects.create(external_userid=f"wm{n}", name=f"客户{n}")
        FollowRelation.objects.create(
            customer=c,
            employee=emp,
            added_at=added,
            status=FollowRelation.LOST_BY_CUSTOMER if lost else FollowRelation.ACTIVE,
            status_changed_at=lost,
        )

    rel(a, now)
    rel(a, now, lost=now)
    rel(b, now)
    rel(a, now - timedelta(days=40), lost=now)  # an old customer lost today
    rel(b, now - timedelta(days=40))
    return store


def test_growth_counts_today_this_week_and_per_day_within_scope(world):
    g = selectors.growth(DataScope(everything=True))
    assert (g["added_today"], g["lost_today"], g["net_today"]) == (3, 2, 1)
    assert g["added_week"] >= 3 and g["lost_week"] >= 2
    assert len(g["days"]) == len(g["added"]) == 30 and g["added"][-1] == 3 and g["lost"][-1] == 2
    store = selectors.growth(DataScope(department_id=world.id))
    assert (store["added_today"], store["lost_today"]) == (2, 2)


def test_the_overview_leads_with_growth_trend_and_pending_work(world):
    Broadcast.objects.create(name="周末活动", status=Broadcast.SENDING)
    body = client_for(make_user("admin", Profile.ADMIN)).get("/").content.decode()
    assert 'data-growth="added_today"' in body and 'id="trend-chart-data"' in body
    assert 'data-todo="broadcasts_running"' in body
    # the operator's panels come before the totals and the system health
    assert (
        body.index('data-testid="growth"') < body.index('data-counter="customers"') < body.index('data-panel="wecom"')
    )
    op = client_for(make_user("op", Profile.OPERATOR)).get("/").content.decode()
    assert 'data-growth="net_week"' in op and 'data-panel="wecom"' not in op
