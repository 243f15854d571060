"""Writes and counts of the segments app: the live count, saved segments, snapshots, the daily
count history.

Public API (other apps: broadcasts; the console of this app):

- ``count(definition, scope, now=None) -> int``: the live count of a definition (a dict, a parsed
  tree or a ``Segment``) among the persons the viewer may see; the in-memory index answers when it
  is enabled (``SIYU_SEGMENT_INDEX``), else the SQL compiler. Raises ``DefinitionError``.
- ``save_segment(name, definition, *, user=None, description="") -> Segment`` and
  ``update_segment(segment, *, name=None, definition=None, description=None) -> Segment``: validate
  and record a ``SegmentCount``.
- ``archive_segment(segment)``.
- ``snapshot(definition_or_segment, scope, purpose, now=None) -> Snapshot``: freezes the members:
  one ``SnapshotMember`` per (person, WeCom customer), ``customer`` null for a person without one;
  written by one INSERT … SELECT.
- ``record_counts(now=None)``: every saved segment's count (the daily timer).
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.accounts.selectors import DataScope
from siyu.core import timers
from siyu.profiles import selectors as profile_selectors
from siyu.segments import engine, sqlcompile
from siyu.segments.grammar import DefinitionError, Node, parse
from siyu.segments.models import Segment, SegmentCount, Snapshot, SnapshotMember

logger = logging.getLogger("siyu.segments")
EVERYTHING = DataScope(everything=True)
DAILY_KIND = "segments.daily_counts"
DAILY_AT = time(4, 30)  # local time, after the nightly RFM run

__all__ = [
    "DefinitionError",
    "archive_segment",
    "count",
    "record_counts",
    "save_segment",
    "snapshot",
    "tree",
    "update_segment",
]


def tree(definition: Any) -> Node:
    """A parsed tree from a definition dict, a tree or a Segment."""
    if isinstance(definition, Segment):
        definition = definition.definition
    if isinstance(definition, dict):
        return parse(definition)
    return definition  # type: ignore[no-any-return]


def count(definition: Any, scope: DataScope, now: datetime | None = None) -> int:
    """The number of persons in ``scope`` the definition selects (see the module's docstring)."""
    node = tree(definition)
    now = sqlcompile.normalise_now(now)

    index = engine.get_index()
    if index is not None:
        return int(index.count(node, scope, now))
    return sqlcompile.sql_count(node, scope, now)


def person_ids(definition: Any, scope: DataScope, now: datetime | None = None) -> list[int]:
    """The persons (live profile ids, ascending) the definition selects in ``scope``."""
    node = tree(definition)
    now = sqlcompile.normalise_now(now)

    index = engine.get_index()
    if index is not None:
        return list(index.person_ids(node, scope, now))
    return sqlcompile.sql_person_ids(node, scope, now)


def _record(segment: Segment, now: datetime | None = None) -> SegmentCount:
    at = now or timezone.now()
    n = count(segment.definition, EVERYTHING, at)
    Segment.objects.filter(pk=segment.pk).update(count=n, counted_at=at)
    segment.count, segment.counted_at = n, at
    return SegmentCount.objects.create(segment=segment, at=at, count=n)


def _check_name(name: str, segment: Segment | None = None) -> str:
    """A segment's name: 1–64 characters, and no other live (unarchived) segment's."""
    name = (name or "").strip()
    if not name or len(name) > 64:
        raise DefinitionError([{"path": "name", "message": _("名称应为 1–64 个字")}])
    others = Segment.objects.filter(name=name, archived=False)
    if segment is not None:
        others = others.exclude(pk=segment.pk)
    if others.exists():
        raise DefinitionError([{"path": "name", "message": _("已有同名的分群，请换一个名称")}])
    return name


def save_segment(name: str, definition: dict[str, Any], *, user: Any = None, description: str = "") -> Segment:
    """Validate and save a new segment (its first count recorded, over every person)."""
    parse(definition)
    name = _check_name(name)
    with transaction.atomic():
        segment = Segment.objects.create(
            name=name,
            description=(description or "")[:255],
            definition=definition,
            created_by=user if getattr(user, "pk", None) else None,
        )
        _record(segment)
    return segment


def update_segment(
    segment: Segment,
    *,
    name: str | None = None,
    definition: dict[str, Any] | None = None,
    description: str | None = None,
) -> Segment:
    if definition is not None:
        parse(definition)
        segment.definition = definition
    if name is not None:
        segment.name = _check_name(name, segment)
    if description is not None:
        segment.description = description[:255]
    with transaction.atomic():
        segment.save()
        if definition is not None:
            _record(segment)
    return segment


def archive_segment(segment: Segment, archived: bool = True) -> Segment:
    segment.archived = archived
    segment.save(update_fields=["archived", "updated_at"])
    return segment


def snapshot(definition: Any, scope: DataScope, purpose: str, now: datetime | None = None) -> Snapshot:
    """Freeze the members of a definition or segment: each member person with each of its WeCom
    customers (``customer`` null when it has none). Set-based: one INSERT … SELECT."""
    segment = definition if isinstance(definition, Segment) else None
    node = tree(definition)
    now = sqlcompile.normalise_now(now)
    raw = segment.definition if segment is not None else (definition if isinstance(definition, dict) else {})
    members = sqlcompile.matching(node, scope, now).order_by().values("id")
    links = profile_selectors.customer_persons().order_by()
    m_sql, m_params = members.query.sql_with_params()
    l_sql, l_params = links.query.sql_with_params()
    table = SnapshotMember._meta.db_table
    with transaction.atomic():
        snap = Snapshot.objects.create(segment=segment, definition=raw, purpose=(purpose or "")[:32])
        with connection.cursor() as cur:
            cur.execute(
                f"INSERT INTO {table} (snapshot_id, profile_id, customer_id) "
                f"SELECT %s, m.id, l.customer_id FROM ({m_sql}) m LEFT JOIN ({l_sql}) l ON l.person = m.id",
                [snap.pk, *m_params, *l_params],
            )
        rows = SnapshotMember.objects.filter(snapshot=snap)
        snap.profiles = rows.values("profile_id").distinct().count()
        snap.customers = rows.filter(customer__isnull=False).values("customer_id").distinct().count()
        snap.save(update_fields=["profiles", "customers"])
    return snap


# --- the daily count history ---------------------------------------------------------------------
def record_counts(now: datetime | None = None) -> int:
    """Record the count of every saved (not archived) segment; answers how many."""
    done = 0
    for segment in Segment.objects.filter(archived=False).order_by("id"):
        try:
            _record(segment, now)
            done += 1
        except DefinitionError:  # a definition that no longer parses (a custom field removed)
            logger.warning("segment %s: definition no longer valid, not counted", segment.pk)
    return done


def next_daily_at(after: datetime | None = None) -> datetime:
    tz = timezone.get_default_timezone()
    after = timezone.localtime(after or timezone.now(), tz)
    at = timezone.make_aware(datetime.combine(after.date(), DAILY_AT), tz)
    if at <= after:
        at = timezone.make_aware(datetime.combine(after.date() + timedelta(days=1), DAILY_AT), tz)
    return at


def ensure_daily_scheduled() -> None:
    """Called when a worker starts: the next daily count timer (idempotent by its key)."""
    at = next_daily_at()
    timers.schedule(DAILY_KIND, at.timestamp(), {}, key=f"segments-daily:{at.date().isoformat()}")


@timers.handler(DAILY_KIND)
def _daily(payload: dict[str, Any]) -> None:
    record_counts()
    ensure_daily_scheduled()


# --- the console and the sends (part E) ----------------------------------------------------------
ACTIVE_RELATION = {"field": "relation", "op": "eq", "value": "active"}


def count_with_wecom(definition: dict[str, Any], scope: DataScope) -> tuple[int, int]:
    """The builder's live count: (persons, those of them followed by an employee on WeCom)."""
    persons = count(definition, scope)
    if not persons:
        return 0, 0
    return persons, count({"op": "and", "items": [definition, ACTIVE_RELATION]}, scope)


def recount(segment: Segment) -> SegmentCount:
    """Count a saved segment now (its history gains a point)."""
    return _record(segment)


def snapshot_segment(segment_id: int, scope: DataScope, purpose: str) -> int:
    """Freeze a saved segment's members in ``scope`` (a send being planned); answers the snapshot id."""
    segment = Segment.objects.get(id=segment_id)
    return int(snapshot(segment, scope, purpose).pk)
