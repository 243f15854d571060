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
    ``updated_at``, oldest first), at most ``limit``, and the newest ``updated_at`` read (``at``
    when none)."""
    if at is not None:
        queryset = queryset.filter(updated_at__gt=at)
    rows = list(queryset.order_by("updated_at").values_list("id", "updated_at")[:limit])
    if not rows:
        return [], at
    return [r[0] for r in rows], rows[-1][1]
