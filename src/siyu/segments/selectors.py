"""Reads of the segments app: member pages (keyset), export rows, saved segments.

Public API (other apps and the console):

- ``member_page(definition, scope, after=None, limit=50, now=None) -> MemberPage``: the members
  (persons, ascending id) after the id ``after``: ``items`` = [{"id", "name", "member_no",
  "member_level", "points"}], ``next_after`` (the last id when more follow, else None).
- ``export_rows(definition, scope, now=None) -> Iterator[list]``: the header then one row per member.
- ``segments(include_archived=False)``, ``segment(pk)``, ``count_history(segment, limit=90)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from siyu.accounts.selectors import DataScope
from siyu.core import pickers
from siyu.customers import selectors as customer_selectors
from siyu.insights import selectors as insight_selectors
from siyu.profiles import selectors as profile_selectors
from siyu.segments import engine, services, sqlcompile
from siyu.segments.models import Segment, SegmentCount, Snapshot, SnapshotMember

MAX_PAGE = 500
EXPORT_BATCH = 2000
MEMBER_COLUMNS = ("id", "name", "member_no", "member_level", "points")


@dataclass
class MemberPage:
    items: list[dict[str, Any]] = field(default_factory=list)
    next_after: int | None = None


def _ids_after(definition: Any, scope: DataScope, after: int | None, limit: int, now: datetime | None) -> list[int]:

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


# --- the console's reads (part E): saved segments in the viewer's scope, the count history, the
# segment picker, the snapshots a send reaches -------------------------------------------------------
@dataclass(frozen=True)
class Viewer:
    """Who looks: their data scope and console user (the segment picker's scope)."""

    scope: DataScope
    user_id: int | None


def _viewer(who: DataScope | Viewer) -> Viewer:
    return who if isinstance(who, Viewer) else Viewer(who, None)


def segments_visible(who: DataScope | Viewer, *, archived: bool | None = False) -> QuerySet[Segment]:
    """Admins and operators see every segment; other roles the segments they made (a segment's
    count and members are always computed in the viewer's own scope)."""
    v = _viewer(who)
    if v.scope.nothing:
        return Segment.objects.none()
    qs = Segment.objects.select_related("created_by").order_by("-updated_at", "-id")
    if archived is not None:
        qs = qs.filter(archived=archived)
    if v.scope.everything:
        return qs
    return qs.filter(created_by_id=v.user_id) if v.user_id else qs.none()


def segments_for(user: Any, scope: DataScope, *, archived: bool | None = False) -> QuerySet[Segment]:
    return segments_visible(Viewer(scope, getattr(user, "id", None)), archived=archived)


def segment_for(user: Any, scope: DataScope, pk: int) -> Segment:
    """One segment the viewer may see (archived ones too), else 404."""
    s = segments_for(user, scope, archived=None).filter(id=pk).first()
    if s is None:
        raise Http404("no such segment")
    return s


def segment_items(values: Sequence[str], who: Any) -> dict[str, pickers.Item]:
    """The segment picker's resolve: the values that name a segment the viewer may see."""
    ids = [int(v) for v in values if str(v).isdigit()]
    if not ids or not isinstance(who, (DataScope, Viewer)):
        return {}
    qs = segments_visible(who, archived=False).filter(id__in=ids)
    return {str(s.id): _item(s, _viewer(who)) for s in qs}


def _item(s: Segment, v: Viewer) -> pickers.Item:
    # the stored count is over every person: shown to those who see everyone
    sub = _("%(n)s 人") % {"n": s.count} if s.counted_at and v.scope.everything else ""
    return pickers.item(s.id, s.name, sub)


def search_segments(
    who: DataScope | Viewer, q: str, limit: int = pickers.SEARCH_LIMIT
) -> tuple[list[pickers.Item], bool]:
    """Saved segments by name (the picker's search): (items, more)."""
    qs = segments_visible(who, archived=False)
    if q:
        qs = qs.filter(name__icontains=q)
    rows = list(qs[: limit + 1])
    return [_item(s, _viewer(who)) for s in rows[:limit]], len(rows) > limit


def segment_name(segment_id: int | None) -> str:
    if not segment_id:
        return ""
    return Segment.objects.filter(id=segment_id).values_list("name", flat=True).first() or ""


def snapshot_info(snapshot_id: int | None) -> dict[str, Any] | None:
    """A snapshot's counts: persons, WeCom customers, persons without a WeCom customer."""
    if not snapshot_id:
        return None
    snap = Snapshot.objects.filter(id=snapshot_id).first()
    if snap is None:
        return None
    reached = (
        SnapshotMember.objects.filter(snapshot_id=snap.id, customer_id__isnull=False)
        .values("profile_id")
        .distinct()
        .count()
    )
    return {
        "id": snap.id,
        "segment_id": snap.segment_id,
        "persons": snap.profiles,
        "customers": snap.customers,
        "without_wecom": max(0, snap.profiles - reached),
        "created_at": snap.created_at,
    }


def snapshot_customer_ids(snapshot_id: int) -> QuerySet[Any, Any]:
    """The WeCom customers of a snapshot's members (``customer_id``; a values queryset, a subquery
    for ``id__in``)."""
    return (
        SnapshotMember.objects.filter(snapshot_id=snapshot_id, customer_id__isnull=False)
        .values("customer_id")
        .distinct()
    )


def _members(segment_id: int, scope: DataScope) -> QuerySet[Any, Any] | None:
    """The persons of a saved segment now, as a subquery of ids (None: no such segment, or its
    definition no longer parses)."""
    # lazy: a cycle inside the app broken on purpose (services reads these selectors' module layer)

    segment = Segment.objects.filter(id=segment_id).first()
    if segment is None:
        return None
    try:
        node = services.tree(segment.definition)
    except ValidationError:
        return None
    return sqlcompile.matching(node, scope, sqlcompile.normalise_now(None)).order_by().values("id")


def live_customer_ids(segment_id: int, scope: DataScope) -> QuerySet[Any, Any]:
    """The WeCom customers of a segment's members now (``customer_id``, a subquery for ``id__in``):
    a broadcast's estimate before its audience is frozen."""
    links = profile_selectors.customer_persons()
    members = _members(segment_id, scope)
    if members is None:
        return links.none().values("customer_id")
    return links.filter(**{"person__in": members}).values("customer_id")


def live_counts(segment_id: int, scope: DataScope) -> dict[str, int]:
    """A segment's members now: persons, their WeCom customers, persons without a WeCom customer."""
    members = _members(segment_id, scope)
    if members is None:
        return {"persons": 0, "customers": 0, "without_wecom": 0}
    persons = members.count()
    links = profile_selectors.customer_persons().filter(**{"person__in": members})
    customers = links.count()  # one key per WeCom customer
    # the members with a WeCom customer: the distinct persons of those links (each is a member)
    reached = links.values("person").distinct().count() if customers else 0  # type: ignore[misc]
    return {"persons": persons, "customers": customers, "without_wecom": persons - reached}


def member_details(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Member rows (``member_page`` items) with what the console shows beside the name: the
    person's WeCom customers (id, name), lifecycle stage and last order."""
    ids = [int(r["id"]) for r in items]
    if not ids:
        return []
    links = [
        (int(r["person"]), int(r["customer_id"]))
        for r in profile_selectors.customer_persons().filter(**{"person__in": ids})
    ]
    names = customer_selectors.customer_names(c for _p, c in links)
    customers: dict[int, list[dict[str, Any]]] = {}
    for person, cid in links:
        customers.setdefault(person, []).append({"id": cid, "name": names.get(cid, "")})
    stages = dict(insight_selectors.stage_choices())
    metrics = {
        m["profile_id"]: m
        for m in insight_selectors.metrics().filter(profile_id__in=ids).values("profile_id", "stage", "last_order_at")
    }
    out = []
    for r in items:
        m: dict[str, Any] = dict(metrics.get(r["id"]) or {})
        out.append(
            {
                **r,
                "profile_id": r["id"],
                "customers": customers.get(r["id"], []),
                "stage_label": stages.get(m.get("stage", ""), ""),
                "last_order_at": m.get("last_order_at"),
            }
        )
    return out
