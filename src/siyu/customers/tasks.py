"""Background tasks of the customers app (run by ``siyu worker``)."""

from __future__ import annotations

from django_tasks import task

from siyu.customers import services


@task()
def run_bulk_tag_job(job_id: int) -> dict:
    job = services.run_bulk_tag_job(job_id)
    if job is None:
        return {"skipped": True}
    return {"status": job.status, "processed": job.processed, "succeeded": job.succeeded}
