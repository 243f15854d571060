"""The 概览 page's headline numbers, provided by the apps that own the data.

Four standard counters are declared here. Each is read from the owning app's selector, found by
name — ``siyu.org.selectors.employee_count``, ``siyu.customers.selectors.customer_count``,
``siyu.groups.selectors.group_count``, ``siyu.customers.selectors.tag_count`` — as soon as that
function exists. A provider is called with the viewer's ``siyu.accounts.selectors.DataScope``
and must count only what that scope may see (store managers and guides see their own share).
An app may instead (or additionally, to link its page) call from its ``ready()``::

    from siyu.core import dashboard
    dashboard.provide("customers", selectors.customer_count, url_name="customers:list")

A counter with no provider shows an empty state ("not synchronised yet") rather than a 0 that
would look like real data. Apps may add counters of their own with ``register``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypedDict

from django.urls import NoReverseMatch, reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

logger = logging.getLogger("siyu.dashboard")

Provider = Callable[[Any], "int | None"]  # fn(scope: DataScope) -> count (the kernel does not import accounts)


@dataclass
class Counter:
    key: str
    label: Promise | str
    empty_hint: Promise | str
    order: int = 100
    fn: Provider | None = None
    provider: str = ""  # "module:function", looked up when fn is not set
    url_name: str | None = None
    roles: tuple[str, ...] | None = None


_COUNTERS: dict[str, Counter] = {}


def register(
    key: str,
    label: Promise | str,
    *,
    empty_hint: Promise | str = "",
    order: int = 100,
    fn: Provider | None = None,
    provider: str = "",
    url_name: str | None = None,
    roles: Iterable[str] | None = None,
) -> Counter:
    counter = Counter(
        key, label, empty_hint or _("暂无数据"), order, fn, provider, url_name, tuple(roles) if roles else None
    )
    _COUNTERS[key] = counter
    return counter


def provide(key: str, fn: Provider, *, url_name: str | None = None) -> None:
    """Supply the value (and optionally the page to link) of a declared counter."""
    counter = _COUNTERS[key]
    counter.fn = fn
    if url_name:
        counter.url_name = url_name


register(
    "employees", _("员工"), empty_hint=_("组织架构尚未同步"), order=10, provider="siyu.org.selectors:employee_count"
)
register(
    "customers",
    _("跟进中客户"),
    empty_hint=_("客户尚未同步"),
    order=20,
    provider="siyu.customers.selectors:customer_count",
)
register("groups", _("客户群"), empty_hint=_("客户群尚未同步"), order=30, provider="siyu.groups.selectors:group_count")
register(
    "tags", _("客户标签"), empty_hint=_("客户标签尚未同步"), order=40, provider="siyu.customers.selectors:tag_count"
)


def _resolve(counter: Counter) -> Provider | None:
    if counter.fn is not None:
        return counter.fn
    if not counter.provider:
        return None
    module_name, _sep, attr = counter.provider.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
            return None  # the app (or its selectors module) does not exist yet
        raise
    return getattr(module, attr, None)


class CounterValue(TypedDict):
    key: str
    label: Promise | str
    value: int | None
    url: str | None
    empty_hint: Promise | str
    error: bool


def counters(role: str | None, scope: object) -> list[CounterValue]:
    """The counters ``role`` may see, each counted within ``scope`` (a ``DataScope``)."""
    out: list[CounterValue] = []
    for c in sorted(_COUNTERS.values(), key=lambda c: c.order):
        if c.roles is not None and role not in c.roles:
            continue
        value = None
        error = False
        try:
            fn = _resolve(c)
            if fn is not None:
                value = fn(scope)
        except Exception:  # one broken counter must not take the overview down
            logger.exception("dashboard counter %s failed", c.key)
            error = True
        url = None
        if c.url_name and value is not None:
            try:
                url = reverse(c.url_name)
            except NoReverseMatch:
                url = None
        out.append(
            {"key": c.key, "label": c.label, "value": value, "url": url, "empty_hint": c.empty_hint, "error": error}
        )
    return out


# --- the admin's health panels ---------------------------------------------------------------
# Values provided by the apps that own them (``siyu.wecom`` provides ``wecom``, ``inbox`` and
# ``calls_by_hour`` from its ready()), so the overview page needs no import of theirs.
# (each panel's value has its own shape, known to the provider and the page: Any here)
_HEALTH: dict[str, Callable[[], Any]] = {}


def provide_health(key: str, fn: Callable[[], Any]) -> None:
    _HEALTH[key] = fn


def health(key: str, default: Any = None) -> Any:
    fn = _HEALTH.get(key)
    return fn() if fn is not None else default


# --- the operator's panels (growth and trend, channel top list) and pending work ---------------
# Each is read from the owning app's selector, found by name like the counters above (or supplied
# with ``provide_panel`` / ``register_todo(fn=...)``), and called with the viewer's DataScope.
_PANELS: dict[str, Counter] = {}


def register_panel(key: str, *, provider: str = "", fn: Provider | None = None) -> None:
    _PANELS[key] = Counter(key, key, "", 100, fn, provider)


def provide_panel(key: str, fn: Callable[[Any], Any]) -> None:
    _PANELS.setdefault(key, Counter(key, key, "", 100)).fn = fn


def panel(key: str, scope: object, default: Any = None) -> Any:
    """A panel's value for ``scope`` (``default`` when nobody provides it or it fails)."""
    counter = _PANELS.get(key)
    if counter is None:
        return default
    try:
        fn = _resolve(counter)
        value = fn(scope) if fn is not None else None
    except Exception:  # one broken panel must not take the overview down
        logger.exception("dashboard panel %s failed", key)
        return default
    return default if value is None else value


register_panel("growth", provider="siyu.customers.selectors:growth")
register_panel("top_channels", provider="siyu.channels.selectors:top_codes")

_TODOS: dict[str, Counter] = {}


def register_todo(
    key: str,
    label: Promise | str,
    *,
    order: int = 100,
    fn: Provider | None = None,
    provider: str = "",
    url_name: str | None = None,
    roles: Iterable[str] | None = None,
) -> None:
    """Pending work shown on the overview (待办) when its count is above zero."""
    _TODOS[key] = Counter(key, label, "", order, fn, provider, url_name, tuple(roles) if roles else None)


register_todo(
    "broadcasts_running",
    _("进行中的群发"),
    order=10,
    provider="siyu.broadcasts.selectors:running_count",
    url_name="broadcasts:list",
)
register_todo(
    "transfers_waiting",
    _("等待接替的客户"),
    order=20,
    provider="siyu.transfers.selectors:waiting_count",
    url_name="transfers:handovers",
)
register_todo(
    "churn_today",
    _("今日流失提醒"),
    order=30,
    provider="siyu.transfers.selectors:churn_today",
    url_name="transfers:churn",
)


def todos(role: str | None, scope: object) -> list[CounterValue]:
    """The pending work ``role`` may see with a count above zero, by order."""
    out: list[CounterValue] = []
    for c in sorted(_TODOS.values(), key=lambda c: c.order):
        if c.roles is not None and role not in c.roles:
            continue
        try:
            fn = _resolve(c)
            value = fn(scope) if fn is not None else None
        except Exception:
            logger.exception("dashboard todo %s failed", c.key)
            continue
        if not value:
            continue
        try:
            url = reverse(c.url_name) if c.url_name else None
        except NoReverseMatch:
            url = None
        out.append({"key": c.key, "label": c.label, "value": value, "url": url, "empty_hint": "", "error": False})
    return out
