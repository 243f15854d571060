"""Fast layer (database only): relations ended in the past, applied in bulk (``siyu demo``'s
history) like the del_follow_user callback applies one: status, timeline entry, customer status."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from siyu.customers import services
from siyu.customers.models import Customer, CustomerEvent, FollowRelation
from siyu.org.models import Employee

pytestmark = pytest.mark.django_db


def test_relation_statuses_apply_once_and_refresh_customers():
    now = timezone.now()
    guide = Employee.objects.create(userid="guide1", name="许娟")
    rows = []
    for i in range(3):
        c = Customer.objects.create(external_userid=f"wm{i:030d}", name=f"客户{i}", status=Customer.ACTIVE)
        FollowRelation.objects.create(
            customer=c, employee=guide, status=FollowRelation.ACTIVE, added_at=now - timedelta(days=90)
        )
        rows.append((c.external_userid, "guide1", FollowRelation.LOST_BY_CUSTOMER, now - timedelta(days=i)))
    rows.append(("wm" + "9" * 30, "guide1", FollowRelation.LOST_BY_CUSTOMER, now))  # unknown: skipped
    assert services.set_relation_statuses(rows) == 3
    assert services.set_relation_statuses(rows) == 0
    assert FollowRelation.objects.filter(status=FollowRelation.LOST_BY_CUSTOMER).count() == 3
    assert CustomerEvent.objects.filter(kind=CustomerEvent.LOST, source="history").count() == 3
    assert set(Customer.objects.values_list("status", flat=True)) == {Customer.LOST}
