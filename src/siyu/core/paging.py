"""Pagination for console lists."""

from __future__ import annotations

from django.core.paginator import Page, Paginator

PER_PAGE = 50


def paginate(request, queryset, per_page: int = PER_PAGE) -> Page:
    """The page named by ``?page=`` (out-of-range and junk values give the nearest valid page)."""
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))
