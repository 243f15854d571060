"""The image of a stored media, for the console's message previews (any signed-in console role:
welcome and message images are not secret within the corp)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse

from siyu.accounts.permissions import role_required
from siyu.wecom.media import selectors


@role_required()
def image(request: HttpRequest, pk: int) -> HttpResponse:
    found = selectors.content(pk)
    if found is None:
        raise Http404
    data, content_type, _name = found
    resp = HttpResponse(data, content_type=content_type if content_type.startswith("image/") else "image/jpeg")
    resp["Content-Disposition"] = "inline"
    resp["X-Content-Type-Options"] = "nosniff"
    resp["Cache-Control"] = "private, max-age=3600"
    return resp
