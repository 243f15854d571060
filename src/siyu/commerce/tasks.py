"""Background tasks of the commerce app (run by ``siyu worker``)."""

from __future__ import annotations

from django_tasks import task

from siyu.commerce import services


@task()
def run_import_job(job_id: int) -> dict:
    job = services.run_import_job(job_id)
    if job is None:
        return {"skipped": True}
    return {"status": job.status, "processed": job.processed, "failed": job.failed}
