"""Audiences: pluggable query objects that say who a broadcast reaches.

An audience is stored as JSON on the broadcast (``{"type": ..., ...}``) and resolved by the class
registered for its type. Each class answers, for a viewer's data scope:

- ``customer_ids(scope)`` — a queryset of Customer ids (``.values("id")``), or None (groups);
- ``sender_ids(scope)`` — the employees allowed to send (None = any employee in scope).

The segment engine's type (``@register("segment")``, below) returns a saved segment's customer ids:
its live definition for estimates, the members snapshot taken when the broadcast is planned
afterwards; planning, estimates and execution do not change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol, TypeVar

from django.db.models import QuerySet

from siyu.accounts.selectors import DataScope
from siyu.customers.selectors import CustomerFilters, customer_queryset
from siyu.groups import selectors as group_selectors
from siyu.org.selectors import employee_ids_for_scope, employee_ids_in_subtree
from siyu.segments import selectors as segment_selectors


class AudienceType(Protocol):
    """What a registered audience class offers the registry (its instances answer the queries)."""

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Any: ...


TYPES: dict[str, type[AudienceType]] = {}
_C = TypeVar("_C", bound=type[Any])


def register(name: str) -> Callable[[_C], _C]:
    def wrap(cls: _C) -> _C:
        TYPES[name] = cls
        cls.type_name = name
        return cls

    return wrap


def scope_to_json(scope: DataScope) -> dict:
    return {"everything": scope.everything, "department_id": scope.department_id, "wecom_userid": scope.wecom_userid}


def scope_from_json(data: dict | None) -> DataScope:
    data = data or {}
    return DataScope(
        everything=bool(data.get("everything")),
        department_id=data.get("department_id"),
        wecom_userid=data.get("wecom_userid") or "",
    )


def _date(v) -> date | None:
    if not v:
        return None
    return v if isinstance(v, date) else date.fromisoformat(str(v))


def _ints(v) -> list[int]:
    return sorted({int(x) for x in (v or []) if str(x).lstrip("-").isdigit()})


def _sorted_or_none(ids: set[int] | None) -> list[int] | None:
    return None if ids is None else sorted(ids)


def _scoped_employees(scope: DataScope, employee_ids: list[int], department_ids: list[int]) -> set[int] | None:
    allowed = employee_ids_for_scope(scope)  # None = all
    chosen: set[int] | None = None
    if employee_ids or department_ids:
        chosen = set(employee_ids)
        for d in department_ids:
            chosen |= set(employee_ids_in_subtree(d))
    if allowed is None:
        return chosen
    return set(allowed) if chosen is None else chosen & set(allowed)


@register("customers")
@dataclass
class CustomerAudience:
    """All customers, or a filter: tags (any / all / none), employees, departments, add time,
    channel state, group membership, lost status — the customer list's own filter."""

    tags: list[int]
    tag_mode: str = "any"
    employee_ids: list[int] = None  # type: ignore[assignment]
    department_ids: list[int] = None  # type: ignore[assignment]
    added_from: str = ""
    added_to: str = ""
    state: str = ""
    status: str = ""  # "" | active | lost
    group: str = ""  # "" | any | none | <GroupChat id>

    @classmethod
    def from_json(cls, d: dict) -> CustomerAudience:
        mode = str(d["tag_mode"]) if d.get("tag_mode") in ("any", "all", "none") else "any"
        status = str(d["status"]) if d.get("status") in ("", "active", "lost") else ""
        return cls(
            tags=_ints(d.get("tags")),
            tag_mode=mode,
            employee_ids=_ints(d.get("employee_ids")),
            department_ids=_ints(d.get("department_ids")),
            added_from=str(d.get("added_from") or ""),
            added_to=str(d.get("added_to") or ""),
            state=str(d.get("state") or "")[:64],
            status=status,
            group=str(d.get("group") or "")[:20],
        )

    def to_json(self) -> dict:
        return {"type": "customers", **{k: v for k, v in self.__dict__.items()}}

    def filters(self):
        return CustomerFilters(
            tags=self.tags,
            tag_mode=self.tag_mode,
            added_from=_date(self.added_from),
            added_to=_date(self.added_to),
            state=self.state,
            status=self.status,
            group=self.group,
        )

    def customer_ids(self, scope: DataScope) -> QuerySet:
        return customer_queryset(scope, self.filters()).values("id")

    def sender_ids(self, scope: DataScope) -> set[int] | None:
        return _scoped_employees(scope, self.employee_ids or [], self.department_ids or [])


@register("groups")
@dataclass
class GroupAudience:
    """Customer groups chosen by owner, group tag (any of them) and/or a list; the choices narrow
    each other (empty = every group in scope)."""

    owner_ids: list[int]
    group_ids: list[int]
    tag_ids: list[int] = field(default_factory=list)

    @classmethod
    def from_json(cls, d: dict) -> GroupAudience:
        return cls(
            owner_ids=_ints(d.get("owner_ids")), group_ids=_ints(d.get("group_ids")), tag_ids=_ints(d.get("tag_ids"))
        )

    def to_json(self) -> dict:
        return {"type": "groups", "owner_ids": self.owner_ids, "group_ids": self.group_ids, "tag_ids": self.tag_ids}

    def customer_ids(self, scope: DataScope):
        return None

    def sender_ids(self, scope: DataScope) -> set[int] | None:
        return _scoped_employees(scope, self.owner_ids, [])

    def groups(self, scope: DataScope) -> QuerySet:
        qs = group_selectors.chats(
            self.group_ids, tag_ids=self.tag_ids, owner_ids=_sorted_or_none(self.sender_ids(scope))
        )
        if scope.nothing:
            return qs.none()
        return qs


@register("moment")
@dataclass
class MomentAudience:
    """Moments visible range: the employees who publish, and customer tags (any of them)."""

    employee_ids: list[int]
    department_ids: list[int]
    tags: list[int]

    @classmethod
    def from_json(cls, d: dict) -> MomentAudience:
        return cls(
            employee_ids=_ints(d.get("employee_ids")),
            department_ids=_ints(d.get("department_ids")),
            tags=_ints(d.get("tags")),
        )

    def to_json(self) -> dict:
        return {
            "type": "moment",
            "employee_ids": self.employee_ids,
            "department_ids": self.department_ids,
            "tags": self.tags,
        }

    def customer_ids(self, scope: DataScope) -> QuerySet:
        return customer_queryset(scope, CustomerFilters(tags=self.tags, tag_mode="any")).values("id")

    def sender_ids(self, scope: DataScope) -> set[int] | None:
        return _scoped_employees(scope, self.employee_ids, self.department_ids)


@register("segment")
@dataclass
class SegmentAudience:
    """The members of a saved segment (mass messages to customers, and Moments: a Moment's visible
    range is employees and corp customer tags, so a Moment to a segment puts a corp tag made for
    the send on the snapshot's relations, ``moment_tags``). Before planning it is the
    segment's live definition (the estimate); planning freezes it in a snapshot (``snapshot_id``)
    and from then on the broadcast reaches the snapshot's WeCom customers, whoever joins or leaves
    the segment later."""

    segment_id: int
    snapshot_id: int | None = None
    employee_ids: list[int] = field(default_factory=list)
    department_ids: list[int] = field(default_factory=list)
    tags: list[int] = field(default_factory=list)  # never used (a Moment to a segment makes its own tag)

    @classmethod
    def from_json(cls, d: dict) -> SegmentAudience:
        seg = _ints([d.get("segment_id")])
        snap = _ints([d.get("snapshot_id")])
        return cls(
            segment_id=seg[0] if seg else 0,
            snapshot_id=snap[0] if snap else None,
            employee_ids=_ints(d.get("employee_ids")),
            department_ids=_ints(d.get("department_ids")),
        )

    def to_json(self) -> dict:
        out: dict[str, Any] = {
            "type": "segment",
            "segment_id": self.segment_id,
            "employee_ids": self.employee_ids,
            "department_ids": self.department_ids,
        }
        if self.snapshot_id:
            out["snapshot_id"] = self.snapshot_id
        return out

    def customer_ids(self, scope: DataScope) -> QuerySet:
        if self.snapshot_id:
            return segment_selectors.snapshot_customer_ids(self.snapshot_id)
        return segment_selectors.live_customer_ids(self.segment_id, scope)

    def sender_ids(self, scope: DataScope) -> set[int] | None:
        return _scoped_employees(scope, self.employee_ids, self.department_ids)


def type_for(kind: str, audience: dict[str, Any]) -> str:
    """The audience type of a ``kind`` broadcast whose form gave ``audience``: a customer mass
    message or a Moment may name a saved segment; otherwise the kind's own type."""
    if kind in ("customer", "moment") and audience.get("segment_id"):
        return "segment"
    return {"customer": "customers", "group": "groups", "moment": "moment"}[kind]


def from_json(data: dict[str, Any] | None) -> Any:
    """The audience of ``data`` (an instance of the class registered for its type; callers use the
    members of the kind they asked for, hence ``Any``)."""
    data = data or {}
    cls = TYPES.get(data.get("type") or "customers")
    if cls is None:
        raise ValueError(f"unknown audience type {data.get('type')!r}")
    return cls.from_json(data)
