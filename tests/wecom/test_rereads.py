"""Two real edits of one customer within one second look exactly alike to the dedupe key."""

from __future__ import annotations

from siyu.core.worker import Worker
from siyu.wecom import inbox
from siyu.wecom.models import CallbackInbox
from tests.core.test_worker import _post_events


def test_repeat_of_a_processed_reread_event_runs_again_but_a_pending_one_does_not(client, sim, transactional_db):
    from tests.conftest import point_product_at

    point_product_at(sim)
    inbox.REREADS.add(("siyu_test_effect", ""))
    second = 1795000000  # one CreateTime for all three: identical events
    try:
        _post_events(client, 1, 0, "reread", second)
        _post_events(client, 1, 0, "reread", second)  # a retry before processing: one row, pending
        row = CallbackInbox.objects.get(event="siyu_test_effect")
        assert row.status == "pending" and row.repeats == 0
        Worker().run(max_idle_s=0.3)
        _post_events(client, 1, 0, "reread", second)  # the same fields after processing: run again
        row.refresh_from_db()
        assert row.status == "pending" and row.repeats == 1
        Worker().run(max_idle_s=0.3)
        row.refresh_from_db()
        assert row.status == "done"
    finally:
        inbox.REREADS.discard(("siyu_test_effect", ""))

    from tests.effects.models import Effect

    assert Effect.objects.filter(key="reread-0").count() == 2
