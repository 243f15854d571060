"""Background tasks of the broadcasts app (run by ``siyu worker``)."""

from __future__ import annotations

from django_tasks import task

from siyu.broadcasts import services
from siyu.broadcasts.models import Broadcast


@task()
def execute(broadcast_id: int) -> dict:
    b = Broadcast.objects.filter(id=broadcast_id).first()
    if b is None or b.status not in Broadcast.RUNNING:
        return {"skipped": True}
    b = services.Executor(b).run()
    return {"status": b.status}


@task()
def sync(broadcast_id: int) -> dict:
    b = Broadcast.objects.filter(id=broadcast_id).first()
    if b is None or b.status != Broadcast.SENT:
        return {"skipped": True}
    return services.sync_and_reschedule(b)
