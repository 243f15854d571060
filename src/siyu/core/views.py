"""Console error pages of the kernel."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from siyu.core.inputs import BadInput


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler400: a console page naming what was wrong (``siyu.core.inputs.BadInput`` carries a
    message for the user; other 400s get the generic text)."""
    message = str(exception) if isinstance(exception, BadInput) else ""
    return render(request, "400.html", {"message": message}, status=400)
