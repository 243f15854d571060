"""core.timers' public face: schedule, cancel, reschedule, next_due (service level, no emulator)."""

from __future__ import annotations

import time

import pytest

from siyu.core import timers
from siyu.core.models import Timer

pytestmark = pytest.mark.django_db


def test_cancel_frees_the_key_and_only_touches_pending_timers():
    t = timers.schedule("tests.kind", time.time() + 60, {"a": 1}, key="k1")
    assert timers.schedule("tests.kind", time.time() + 60, key="k1") is None  # one pending per key
    assert timers.cancel("k1") is True
    t.refresh_from_db()
    assert t.status == Timer.Status.DONE and t.key is None and t.finished_at is not None
    assert timers.cancel("k1") is False  # nothing pending any more
    assert timers.schedule("tests.kind", time.time() + 60, key="k1") is not None  # the key is free again


def test_next_due_and_reschedule():
    assert timers.next_due("tests.kind") is None
    now = time.time()
    timers.schedule("tests.kind", now + 300, key="late")
    timers.schedule("tests.kind", now + 100, key="soon")
    timers.schedule("tests.other", now + 10, key="other")
    assert timers.next_due("tests.kind") == pytest.approx(now + 100)
    assert timers.reschedule("late", now + 50) is True
    assert timers.next_due("tests.kind") == pytest.approx(now + 50)
    assert timers.due_at("late") == pytest.approx(now + 50) and timers.due_at("nobody") is None
    assert [p["key"] for p in timers.pending("tests.kind")] == ["late", "soon"]
    timers.cancel("late")
    timers.cancel("soon")
    assert timers.next_due("tests.kind") is None and timers.due_at("soon") is None
    assert timers.reschedule("soon", now) is False


def test_purge_done_drops_only_old_finished_timers(db):
    import time as _time

    from siyu.core import timers as _timers
    from siyu.core.models import Timer

    old = _time.time() - _timers.KEEP_DONE_S - 60
    Timer.objects.create(kind="x", payload={}, run_after=old, status=Timer.Status.DONE)
    kept_failed = Timer.objects.create(kind="x", payload={}, run_after=old, status=Timer.Status.FAILED)
    recent = Timer.objects.create(kind="x", payload={}, run_after=_time.time() - 60, status=Timer.Status.DONE)
    pending = Timer.objects.create(kind="x", payload={}, run_after=old)
    assert _timers.purge_done() == 1
    assert set(Timer.objects.values_list("id", flat=True)) == {kept_failed.id, recent.id, pending.id}
