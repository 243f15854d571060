"""Console pages of the commerce app: data imports (admins and operators)."""

from __future__ import annotations

from pathlib import Path

from django.contrib import messages
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from siyu.accounts.permissions import Role, role_required
from siyu.commerce import files, selectors, services
from siyu.commerce.forms import ImportForm
from siyu.commerce.models import ImportJob
from siyu.profiles import services as profile_services

IMPORTERS = (Role.ADMIN, Role.OPERATOR)


@role_required(*IMPORTERS)
def imports(request):
    """Upload a file to import (a background job) and the recent jobs."""
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = services.start_import_job(
                form.cleaned_data["kind"],
                form.cleaned_data["file"],
                dry_run=form.cleaned_data["dry_run"],
                user_id=request.user.id,
            )
        except services.UploadError as e:
            form.add_error("file", str(e))
        else:
            messages.success(request, _("文件已上传，正在后台导入。"))
            return redirect("commerce:import-job-page", job_id=job.id)
    jobs = selectors.recent_jobs()
    status = 400 if request.method == "POST" else 200
    return render(
        request, "commerce/imports.html", {"form": form, "jobs": jobs, "kinds": ImportJob.Kind.choices}, status=status
    )


def _job(job_id: int) -> ImportJob:
    job = selectors.import_job(job_id)
    if job is None:
        raise Http404(_("导入任务不存在"))
    return job


@role_required(*IMPORTERS)
@require_GET
def import_job_page(request, job_id: int):
    return render(request, "commerce/import_job.html", {"job": _job(job_id)})


@role_required(*IMPORTERS)
@require_GET
def import_job(request, job_id: int):
    """The job's progress panel (polled by htmx until the job is finished)."""
    return render(request, "commerce/_import_job.html", {"job": _job(job_id)})


@role_required(*IMPORTERS)
@require_GET
def import_errors(request, job_id: int):
    """The job's per-row errors (CSV)."""
    job = _job(job_id)
    path = Path(job.errors_path) if job.errors_path else None
    if path is None or not path.is_file():
        raise Http404(_("没有错误明细"))
    stem = Path(job.filename).stem[:60] or "import"
    return FileResponse(path.open("rb"), as_attachment=True, filename=f"{stem}-errors.csv", content_type="text/csv")


@role_required(*IMPORTERS)
@require_GET
def import_template(request, kind: str):
    if kind not in services.KINDS:
        raise Http404(_("未知的导入类型"))
    keys = list(profile_services.custom_fields()) if kind == "members" else []
    response = HttpResponse(files.template(kind, keys), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="siyu-{kind}-template.csv"'
    return response
