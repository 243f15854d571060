"""Pagination for console lists."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.paginator import Page, Paginator
from django.http import HttpRequest

PER_PAGE = 50


def paginate(request: HttpRequest, queryset: Any, per_page: int = PER_PAGE) -> Page[Any]:
    """The page named by ``?page=`` (out-of-range and junk values give the nearest valid page)."""
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


def changed_since(queryset: Any, at: datetime | None, limit: int = 50_000) -> tuple[list[int], datetime | None]:
    """One step of a watermark walk: the ids of the rows of ``queryset`` written after ``at`` (by
    ``updated_at``, oldest first), about ``limit`` of them, and the newest ``updated_at`` read
    (``at`` when none). Rows sharing the step's last ``updated_at`` (one bulk update writes one time
    on every row) all come in this step, past ``limit`` if need be: the next step starts after that
    time, and a cut inside the group would lose the rest."""
    if at is not None:
        queryset = queryset.filter(updated_at__gt=at)
    rows = list(queryset.order_by("updated_at", "id").values_list("id", "updated_at")[:limit])
    if not rows:
        return [], at
    ids = [r[0] for r in rows]
    last_id, last = rows[-1]
    if len(rows) == limit:
        ids += list(queryset.filter(updated_at=last, id__gt=last_id).order_by("id").values_list("id", flat=True))
    return ids, last
