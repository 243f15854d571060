"""REST: upload a file once (image, video, file) for use in messages. The answer is the stored
media's id, used as ``{"media": id}`` in welcome and group-welcome attachments; the product uploads
it to WeCom when a message needs it and renews WeCom's 3-day media id by itself."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import File, Form, Router, Schema
from ninja.files import UploadedFile

from siyu.accounts.permissions import Role, caller, require_role
from siyu.core.api_schemas import responses
from siyu.wecom.media import services

router = Router(tags=["media"])


class MediaOut(Schema):
    id: int
    kind: str
    name: str
    size: int


@router.post("/media", response=responses(MediaOut, 400, status=201), summary="Store a file for messages")
def upload(request: HttpRequest, kind: Form[str], media: File[UploadedFile]) -> Any:
    require_role(request, Role.ADMIN, Role.OPERATOR)
    if kind not in services.KINDS:
        return 400, {"detail": "kind must be image, video or file"}
    if (media.size or 0) > 20 * 1024 * 1024 + 1:
        return 400, {"detail": "file too large"}
    try:
        m = services.store(
            kind, media.name or kind, media.read(), media.content_type or "", created_by=caller(request).get_username()
        )
    except services.MediaError as e:
        return 400, {"detail": str(e)}
    return 201, {"id": m.id, "kind": m.kind, "name": m.name, "size": m.size}
