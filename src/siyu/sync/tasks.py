"""Background tasks of the sync app (run by ``siyu worker``)."""

from __future__ import annotations

from django_tasks import task

from siyu.sync.services import SyncBusy, run_full_sync


@task(queue_name="sync")
def full_sync(restart: bool = False) -> dict:
    """The full sync (the console's "sync now"); resumes an interrupted run unless ``restart``."""
    try:
        run = run_full_sync(restart=restart)
    except SyncBusy as e:
        return {"busy": str(e)}
    return {"run": run.id, "status": run.status, "counts": run.counts}
