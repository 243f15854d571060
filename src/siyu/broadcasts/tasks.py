"""Background tasks of the broadcasts app (run by ``siyu worker``)."""

from __future__ import annotations

from django_tasks import task


@task()
def execute(broadcast_id: int) -> dict:
    from siyu.broadcasts.models import Broadcast
    from siyu.broadcasts.services import Executor

    b = Broadcast.objects.filter(id=broadcast_id).first()
    if b is None or b.status not in Broadcast.RUNNING:
        return {"skipped": True}
    b = Executor(b).run()
    return {"status": b.status}


@task()
def sync(broadcast_id: int) -> dict:
    from siyu.broadcasts import services
    from siyu.broadcasts.models import Broadcast

    b = Broadcast.objects.filter(id=broadcast_id).first()
    if b is None or b.status != Broadcast.SENT:
        return {"skipped": True}
    try:
        return services.sync(b)
    finally:
        services.schedule_next_sync(b)
