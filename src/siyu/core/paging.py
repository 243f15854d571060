"""Pagination for console lists, and the watermark walks of background work."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.core.paginator import Page, Paginator
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

PER_PAGE = 50


def paginate(request: HttpRequest, queryset: Any, per_page: int = PER_PAGE) -> Page[Any]:
    """The page named by ``?page=`` (out-of-range and junk values give the nearest valid page)."""
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


# --- watermark walks --------------------------------------------------------------------------------
# A writer takes ``updated_at`` before its transaction commits, so a walk that moved its watermark
# to the newest time it read could pass a row committed later with an earlier time (two imports,
# or two sync workers, at once): that row would wait for the nightly full run. A walk therefore
# moves its watermark only over rows older than SETTLE, by when every transaction that wrote them
# has committed; the newer rows it reads are handed out at once (results stay fresh), remembered by
# (id, updated_at), and not handed out again when the next step reads them again. The memory is
# this process's: after a restart, or in another worker, the last SETTLE of writes is handed out
# once more, which the walks' consumers (recomputes, links) take as a no-op.
SETTLE = timedelta(seconds=60)
_handed: dict[str, dict[int, datetime]] = {}
_handed_lock = threading.Lock()
Row = TypeVar("Row", bound=tuple[Any, ...])


def settle(
    walk: str, rows: Sequence[Row], at: datetime | None, after_id: int, now: datetime | None = None
) -> tuple[list[Row], datetime | None, int]:
    """One step of the walk named ``walk`` over ``rows`` = ``(updated_at, id, ...)`` read after its
    watermark ``(at, after_id)`` in (updated_at, id) order: the rows not yet handed out, and the
    next watermark (the last row older than SETTLE; the same watermark when there is none).
    The rows count as handed out when the caller's transaction commits (at once without one): a
    step whose work is rolled back hands them out again."""
    horizon = (now or timezone.now()) - SETTLE
    with _handed_lock:
        handed = dict(_handed.get(walk, {}))
    fresh = [r for r in rows if handed.get(r[1]) != r[0]]
    settled = 0
    while settled < len(rows) and rows[settled][0] <= horizon:  # a prefix: the rows are in time order
        settled += 1
    if settled:
        at, after_id = rows[settled - 1][0], rows[settled - 1][1]
    newer = {r[1]: r[0] for r in rows[settled:]}
    passed = at

    def record() -> None:
        with _handed_lock:
            mine = _handed.setdefault(walk, {})
            mine.update(newer)
            if passed is not None:
                for pk in [pk for pk, t in mine.items() if t <= passed]:
                    del mine[pk]

    transaction.on_commit(record)
    return fresh, at, after_id


def forget_walks() -> None:
    """Forget which rows the walks handed out (tests: each starts as a fresh process)."""
    with _handed_lock:
        _handed.clear()


def changed_since(
    queryset: Any, at: datetime | None, limit: int = 50_000, walk: str = ""
) -> tuple[list[int], datetime | None]:
    """One step of a watermark walk: the ids of the rows of ``queryset`` written after ``at`` (by
    ``updated_at``, oldest first), about ``limit`` of them, and the next watermark: the newest
    ``updated_at`` read (``at`` when none), or with ``walk`` (the walk's name) the newest one
    older than SETTLE (see ``settle``). Rows sharing the step's last ``updated_at`` (one bulk
    update writes one time on every row) all come in this step, past ``limit`` if need be: the
    next step starts after that time, and a cut inside the group would lose the rest."""
    if at is not None:
        queryset = queryset.filter(updated_at__gt=at)
    rows = list(queryset.order_by("updated_at", "id").values_list("updated_at", "id")[:limit])
    if not rows:
        return [], at
    last, last_id = rows[-1]
    if len(rows) == limit:
        rows += [
            (last, pk)
            for pk in queryset.filter(updated_at=last, id__gt=last_id).order_by("id").values_list("id", flat=True)
        ]
    if not walk:
        return [r[1] for r in rows], last
    fresh, at, _ = settle(walk, rows, at, 0)
    return [r[1] for r in fresh], at
