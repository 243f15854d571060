"""The sections of the 360° profile page (and, later, of the guide's sidebar), registered by the
apps that own their data: commerce (orders, events), insights (RFM, lifecycle, value)... The
profiles app renders them in order; it never imports those apps.

    from siyu.profiles import sections
    sections.register("orders", _("订单"), order=30, template="commerce/section_orders.html",
                      fn=selectors.profile_orders_section)

``fn(person_id, cluster_ids, viewer)`` returns the template's context (a dict), or None to hide
the section; ``person_id`` is the live profile, ``cluster_ids`` it and the profiles merged into
it (their orders and events are the person's), ``viewer`` the request's user (its data scope has
already been checked for the profile).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SectionFn = Callable[[int, list[int], Any], "dict[str, Any] | None"]


@dataclass(frozen=True)
class Section:
    key: str
    label: Any  # a lazy translation
    order: int
    template: str
    fn: SectionFn


_SECTIONS: dict[str, Section] = {}


def register(key: str, label: Any, *, order: int, template: str, fn: SectionFn) -> None:
    _SECTIONS[key] = Section(key, label, order, template, fn)


def all_sections() -> list[Section]:
    return sorted(_SECTIONS.values(), key=lambda s: (s.order, s.key))
