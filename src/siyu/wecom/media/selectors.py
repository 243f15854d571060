"""Reads of stored media: what the console shows about a file (never its WeCom media id)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypedDict

from siyu.wecom.models import StoredMedia


class MediaInfo(TypedDict):
    id: int
    kind: str
    name: str
    size: int
    content_type: str


def infos(ids: Iterable[int]) -> dict[int, MediaInfo]:
    """The kind, name, size and type of each stored media in ``ids`` (unknown ids left out)."""
    wanted = {int(i) for i in ids}
    if not wanted:
        return {}
    rows = StoredMedia.objects.filter(id__in=wanted).values("id", "kind", "name", "size", "content_type")
    return {
        r["id"]: MediaInfo(id=r["id"], kind=r["kind"], name=r["name"], size=r["size"], content_type=r["content_type"])
        for r in rows
    }


def exists(pk: int, kind: str | None = None) -> bool:
    qs = StoredMedia.objects.filter(id=pk)
    if kind:
        qs = qs.filter(kind=kind)
    return qs.exists()


def content(pk: int) -> tuple[bytes, str, str] | None:
    """The bytes, content type and name of an image (for the console's preview), or None."""
    m = StoredMedia.objects.filter(id=pk, kind=StoredMedia.Kind.IMAGE).first()
    if m is None:
        return None
    return bytes(m.data), m.content_type or "image/jpeg", m.name
