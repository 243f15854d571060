"""The phone-frame preview of welcome messages (``siyu.core.preview``): images of stored media are
shown through the console's media view."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from siyu.core import preview
from siyu.org import selectors as org_selectors


def image_url(pk: int) -> str:
    return reverse("wecom:media-image", args=[pk])


def for_form(kind: str = "welcome") -> dict[str, Any]:
    return preview.context(kind)


def for_welcome(welcome: dict[str, Any], userids: list[str], kind: str = "welcome") -> dict[str, Any]:
    employee = org_selectors.names_by_userid(userids).get(userids[0], "") if userids else ""
    return preview.render_context(
        kind, welcome.get("text", ""), welcome.get("attachments", []), employee=employee, image_url=image_url
    )
