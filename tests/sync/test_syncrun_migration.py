"""SyncRun moved from the customers app to the sync app on its own table: a database migrated
before the move keeps its runs (service-level, no emulator)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from siyu.sync import selectors
from siyu.sync.models import SyncRun

BEFORE = [("customers", "0004_followtag_employee"), ("sync", None)]
AFTER = [("customers", "0005_syncrun_to_sync_app"), ("sync", "0001_initial")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor


@pytest.mark.django_db(transaction=True)
def test_runs_stored_before_the_move_are_the_sync_apps_after_it():
    try:
        old_state = _migrate(BEFORE).loader.project_state(BEFORE[:1]).apps
        OldRun = old_state.get_model("customers", "SyncRun")
        assert OldRun._meta.db_table == "customers_syncrun"
        now = timezone.now()
        OldRun.objects.create(status="done", phase="done", started_at=now, finished_at=now, counts={"customers": 7})
        OldRun.objects.create(status="failed", phase="groups", started_at=now, error="killed", resumes=1)

        _migrate(AFTER)
        runs = list(SyncRun.objects.order_by("id"))
        assert [(r.status, r.phase, r.counts, r.resumes) for r in runs] == [
            (SyncRun.Status.DONE, "done", {"customers": 7}, 0),
            (SyncRun.Status.FAILED, "groups", {}, 1),
        ]
        assert selectors.latest_run().error == "killed"
        # the table is the same one: a new run continues its ids
        assert SyncRun.objects.create(started_at=now).id == runs[-1].id + 1
    finally:
        # leave the schema as every other test expects it: every app at its latest migration
        # (AFTER alone would leave later migrations of customers, e.g. 0006, unapplied)
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    # every later migration is back (a table added after the move exists again)
    assert "customers_bulktagjob" in connection.introspection.table_names()
