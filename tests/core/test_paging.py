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


def test_a_settled_walk_sees_a_row_committed_late_with_an_earlier_time(django_capture_on_commit_callbacks):
    """Two writers: B commits first with a later time, A commits after the walk read B, with an
    earlier time. The plain walk passes A; the settled walk hands it out at its next step, and
    hands nothing out twice."""
    now = timezone.now()
    a = Customer.objects.create(external_userid="wmA", name="A")
    b = Customer.objects.create(external_userid="wmB", name="B")
    Customer.objects.filter(id=b.id).update(updated_at=now - timedelta(seconds=2))
    Customer.objects.filter(id=a.id).update(updated_at=now - timedelta(hours=1))  # settled long ago
    with django_capture_on_commit_callbacks(execute=True):  # the step's transaction commits
        got, at = paging.changed_since(Customer.objects.all(), None, walk="t")
    assert got == [a.id, b.id] and at == now - timedelta(hours=1)  # the watermark stops at the settled row
    # A commits late, written 3 s ago (before B)
    late = Customer.objects.create(external_userid="wmLate", name="late")
    Customer.objects.filter(id=late.id).update(updated_at=now - timedelta(seconds=3))
    plain, plain_at = paging.changed_since(Customer.objects.all(), now - timedelta(seconds=2))
    assert plain == [] and plain_at == now - timedelta(seconds=2)  # the old walk had passed it
    with django_capture_on_commit_callbacks(execute=True):
        got, at = paging.changed_since(Customer.objects.all(), at, walk="t")
    assert got == [late.id] and at == now - timedelta(hours=1)
    with django_capture_on_commit_callbacks(execute=True):
        got, at = paging.changed_since(Customer.objects.all(), at, walk="t")
    assert got == []  # each handed out once
    # B written again: handed out again
    Customer.objects.filter(id=b.id).update(updated_at=now)
    with django_capture_on_commit_callbacks(execute=True):
        got, at = paging.changed_since(Customer.objects.all(), at, walk="t")
    assert got == [b.id]


def test_settle_moves_the_watermark_over_settled_rows_only_and_forgets_them(django_capture_on_commit_callbacks):
    now = timezone.now()
    old = now - paging.SETTLE - timedelta(seconds=1)
    rows = [(old, 1, "x"), (old, 2, "y"), (now - timedelta(seconds=5), 3, "z")]
    with django_capture_on_commit_callbacks(execute=True):
        fresh, at, after = paging.settle("w", rows, None, 0, now=now)
    assert fresh == rows and (at, after) == (old, 2)
    with django_capture_on_commit_callbacks(execute=True):
        fresh, at, after = paging.settle("w", rows[2:], at, after, now=now)
    assert fresh == [] and (at, after) == (old, 2)
    # later, the row settles: the watermark passes it and the walk forgets it
    with django_capture_on_commit_callbacks(execute=True):
        fresh, at, after = paging.settle("w", rows[2:], at, after, now=now + paging.SETTLE)
    assert fresh == [] and (at, after) == (rows[2][0], 3) and not paging._handed["w"]


def test_rows_of_a_step_rolled_back_are_handed_out_again(django_capture_on_commit_callbacks):
    now = timezone.now()
    rows = [(now - timedelta(seconds=5), 1, "x")]
    with django_capture_on_commit_callbacks(execute=False):  # the step's work fails: no commit
        fresh, _, _ = paging.settle("r", rows, None, 0, now=now)
    assert fresh == rows
    with django_capture_on_commit_callbacks(execute=True):
        fresh, _, _ = paging.settle("r", rows, None, 0, now=now)
    assert fresh == rows
    with django_capture_on_commit_callbacks(execute=True):
        fresh, _, _ = paging.settle("r", rows, None, 0, now=now)
    assert fresh == []
