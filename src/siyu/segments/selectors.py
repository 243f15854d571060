"""Reads of the segments app: member pages (keyset), export rows, saved segments.

Public API (other apps and the console):

- ``member_page(definition, scope, after=None, limit=50, now=None) -> MemberPage``: the members
  (persons, ascending id) after the id ``after``: ``items`` = [{"id", "name", "member_no",
  "member_level", "points"}], ``next_after`` (the last id when more follow, else None).
- ``export_rows(definition, scope, now=None) -> Iterator[list]``: the header then one row per member.
- ``segments(include_archived=False)``, ``segment(pk)``, ``count_history(segment, limit=90)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from siyu.accounts.selectors import DataScope
from siyu.profiles import selectors as profile_selectors
from siyu.segments import sqlcompile
from siyu.segments.models import Segment, SegmentCount

MAX_PAGE = 500
EXPORT_BATCH = 2000
MEMBER_COLUMNS = ("id", "name", "member_no", "member_level", "points")


@dataclass
class MemberPage:
    items: list[dict[str, Any]] = field(default_factory=list)
    next_after: int | None = None


def _ids_after(definition: Any, scope: DataScope, after: int | None, limit: int, now: datetime | None) -> list[int]:
    from siyu.segments import engine, services

    node = services.tree(definition)
    now = sqlcompile.normalise_now(now)
    index = engine.get_index()
    if index is not None:
        return list(index.person_ids(node, scope, now, after=after, limit=limit))
    qs = sqlcompile.matching(node, scope, now)
    if after is not None:
        qs = qs.filter(id__gt=after)
    return list(qs.order_by("id").values_list("id", flat=True)[:limit])


def _rows(ids: list[int]) -> list[dict[str, Any]]:
    found = {r["id"]: r for r in profile_selectors.all_profiles().filter(id__in=ids).values(*MEMBER_COLUMNS)}
    return [found[i] for i in ids if i in found]


def member_page(
    definition: Any, scope: DataScope, after: int | None = None, limit: int = 50, now: datetime | None = None
) -> MemberPage:
    limit = max(1, min(int(limit), MAX_PAGE))
    ids = _ids_after(definition, scope, after, limit + 1, now)
    more = len(ids) > limit
    ids = ids[:limit]
    return MemberPage(items=_rows(ids), next_after=ids[-1] if more and ids else None)


def export_header() -> list[str]:
    return ["ID", _("姓名"), _("会员号"), _("会员等级"), _("积分")]


def export_rows(definition: Any, scope: DataScope, now: datetime | None = None) -> Iterator[list[Any]]:
    """The header, then one row per member (in id order, read in batches)."""
    now = sqlcompile.normalise_now(now)
    yield export_header()
    after: int | None = None
    while True:
        ids = _ids_after(definition, scope, after, EXPORT_BATCH, now)
        if not ids:
            return
        for row in _rows(ids):
            yield [row[c] for c in MEMBER_COLUMNS]
        after = ids[-1]


def segments(include_archived: bool = False) -> QuerySet[Segment]:
    qs = Segment.objects.all()
    if not include_archived:
        qs = qs.filter(archived=False)
    return qs.order_by("-updated_at", "-id")


def segment(pk: int) -> Segment | None:
    return Segment.objects.filter(pk=pk).first()


def count_history(seg: Segment, limit: int = 90) -> list[SegmentCount]:
    return list(SegmentCount.objects.filter(segment=seg).order_by("-at")[:limit])
