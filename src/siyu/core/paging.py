"""Pagination for console lists."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Page, Paginator
from django.http import HttpRequest

PER_PAGE = 50


def paginate(request: HttpRequest, queryset: Any, per_page: int = PER_PAGE) -> Page[Any]:
    """The page named by ``?page=`` (out-of-range and junk values give the nearest valid page)."""
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))
