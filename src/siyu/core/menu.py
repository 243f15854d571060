"""The console's navigation: fixed sections, entries registered by the apps that own the pages.

An app adds its pages from its ``AppConfig.ready()``::

    from siyu.core import menu
    menu.register("customers", _("客户列表"), "customers:list", order=10)
    menu.register("settings", _("企业微信"), "wecom:settings", roles=("admin",))

A section is shown only when at least one of its entries resolves and is allowed for the user's
role, so the sidebar only ever links pages that exist. A section whose single entry carries the
section's own name is drawn as one link (概览).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from django.urls import NoReverseMatch, reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Section:
    key: str
    label: Promise | str
    icon: str
    order: int


@dataclass(frozen=True)
class Entry:
    section: str
    label: Promise | str
    url_name: str
    order: int = 100
    roles: tuple[str, ...] | None = None  # None: every role


SECTIONS: dict[str, Section] = {
    s.key: s
    for s in (
        Section("overview", _("概览"), "overview", 10),
        Section("customers", _("客户"), "customers", 20),
        Section("cdp", _("客户数据"), "chart", 25),
        Section("tags", _("客户标签"), "tags", 30),
        Section("groups", _("客户群"), "groups", 40),
        Section("staff", _("员工"), "staff", 50),
        Section("contact_ways", _("渠道活码"), "qrcode", 60),
        Section("mass", _("群发"), "send", 70),
        Section("enable", _("导购赋能"), "sidebar", 75),
        Section("transfer", _("客户继承"), "transfer", 80),
        Section("analytics", _("数据分析"), "chart", 90),
        Section("settings", _("设置"), "settings", 100),
    )
}

_ENTRIES: dict[str, Entry] = {}


def register(
    section: str, label: Promise | str, url_name: str, *, order: int = 100, roles: tuple[str, ...] | None = None
) -> Entry:
    """Add (or replace, keyed by ``url_name``) a page in ``section``."""
    if section not in SECTIONS:
        raise ValueError(f"unknown menu section {section!r}; one of {sorted(SECTIONS)}")
    entry = Entry(section, label, url_name, order, tuple(roles) if roles else None)
    _ENTRIES[url_name] = entry
    return entry


def entries() -> list[Entry]:
    return sorted(_ENTRIES.values(), key=lambda e: (SECTIONS[e.section].order, e.order))


class Link(TypedDict):
    entry: Entry
    url: str
    label: Promise | str
    active: bool


class SidebarSection(TypedDict):
    key: str
    label: Promise | str
    icon: str
    items: list[Link]
    single: bool
    url: str | None
    active: bool


def build(path: str, role: str | None) -> list[SidebarSection]:
    """The sidebar for a user with ``role`` looking at ``path``: sections with their links."""
    links: list[Link] = []
    for entry in entries():
        if role is None or (entry.roles is not None and role not in entry.roles):
            continue
        try:
            url = reverse(entry.url_name)
        except NoReverseMatch:
            continue
        links.append({"entry": entry, "url": url, "label": entry.label, "active": False})

    # The active link is the longest URL that prefixes the current path ("/" only matches itself).
    best: Link | None = None
    for link in links:
        url = link["url"]
        matches = path == url or (url != "/" and path.startswith(url))
        if matches and (best is None or len(url) > len(best["url"])):
            best = link
    if best:
        best["active"] = True

    sections: list[SidebarSection] = []
    for key, section in sorted(SECTIONS.items(), key=lambda kv: kv[1].order):
        items = [link for link in links if link["entry"].section == key]
        if not items:
            continue
        single = len(items) == 1 and str(items[0]["label"]) == str(section.label)
        sections.append(
            {
                "key": key,
                "label": section.label,
                "icon": section.icon,
                "items": items,
                "single": single,
                "url": items[0]["url"] if single else None,
                "active": any(link["active"] for link in items),
            }
        )
    return sections
