"""core.paging.changed_since: a watermark walk never loses rows that share one write time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from siyu.core import paging
from siyu.customers.models import Customer

pytestmark = pytest.mark.django_db


def test_a_bulk_update_larger_than_a_step_is_walked_whole():
    Customer.objects.bulk_create([Customer(external_userid=f"wmP{i}", name=f"c{i}") for i in range(25)])
    t0 = timezone.now() - timedelta(hours=1)
    same = t0 + timedelta(minutes=1)
    ids = sorted(Customer.objects.values_list("id", flat=True))
    Customer.objects.filter(id__in=ids[:3]).update(updated_at=t0)
    Customer.objects.filter(id__in=ids[3:20]).update(updated_at=same)  # one bulk update: one time
    Customer.objects.filter(id__in=ids[20:]).update(updated_at=same + timedelta(seconds=1))
    seen: list[int] = []
    at = None
    for _ in range(10):
        got, at = paging.changed_since(Customer.objects.all(), at, limit=5)
        if not got:
            break
        seen += got
    assert sorted(seen) == ids and len(seen) == len(set(seen))
