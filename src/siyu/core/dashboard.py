"""The 概览 page's headline numbers, provided by the apps that own the data.

The four standard counters are declared here; an app provides a value from its ``ready()``::

    from siyu.core import dashboard
    dashboard.provide("customers", selectors.customer_count, url_name="customers:list")

A counter nobody provides is shown as an empty state ("not synchronised yet") rather than a 0
that would look like real data. Apps may also add counters of their own with ``register``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

from django.urls import NoReverseMatch, reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

logger = logging.getLogger("siyu.dashboard")


@dataclass
class Counter:
    key: str
    label: Promise | str
    empty_hint: Promise | str
    order: int = 100
    fn: Callable[[], int] | None = None
    url_name: str | None = None
    roles: tuple[str, ...] | None = None
    extra: dict = field(default_factory=dict)


_COUNTERS: dict[str, Counter] = {}


def register(key: str, label, *, empty_hint="", order: int = 100, fn=None, url_name=None, roles=None) -> Counter:
    counter = Counter(key, label, empty_hint or _("暂无数据"), order, fn, url_name, tuple(roles) if roles else None)
    _COUNTERS[key] = counter
    return counter


def provide(key: str, fn: Callable[[], int], *, url_name: str | None = None) -> None:
    """Supply the value (and optionally the page to link) of a declared counter."""
    counter = _COUNTERS[key]
    counter.fn = fn
    if url_name:
        counter.url_name = url_name


register("employees", _("员工"), empty_hint=_("组织架构尚未同步"), order=10)
register("customers", _("客户"), empty_hint=_("客户尚未同步"), order=20)
register("groups", _("客户群"), empty_hint=_("客户群尚未同步"), order=30)
register("tags", _("客户标签"), empty_hint=_("客户标签尚未同步"), order=40)


def counters(role: str | None) -> list[dict]:
    out = []
    for c in sorted(_COUNTERS.values(), key=lambda c: c.order):
        if c.roles is not None and role not in c.roles:
            continue
        value = None
        error = False
        if c.fn is not None:
            try:
                value = c.fn()
            except Exception:  # one broken counter must not take the dashboard down
                logger.exception("dashboard counter %s failed", c.key)
                error = True
        url = None
        if c.url_name and value is not None:
            try:
                url = reverse(c.url_name)
            except NoReverseMatch:
                url = None
        out.append({"key": c.key, "label": c.label, "value": value, "url": url, "empty_hint": c.empty_hint, "error": error})
    return out
