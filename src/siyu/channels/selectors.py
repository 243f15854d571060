"""Reads of the acquisition app, scoped by the viewer's DataScope: admins and operators see every
code and add; store managers the adds landing on their department's employees (and codes they
staff); guides their own."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any, Literal, TypedDict

from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.accounts.selectors import DataScope
from siyu.channels.models import STATE_PREFIX, ChannelAdd, ChannelCode, DefaultWelcome, WelcomeSend
from siyu.channels.services import local
from siyu.org import selectors as org_selectors


def allowed_userids(scope: DataScope) -> set[str] | None:
    """None: everything; else the userids whose adds the scope may see."""
    if scope.everything:
        return None
    if scope.nothing:
        return set()
    ids = org_selectors.employee_ids_for_scope(scope)
    if ids is None:
        return None
    return set(org_selectors.employee_userids(ids).values())


def codes(scope: DataScope, q: str = "", folder: str = "") -> list[ChannelCode]:
    qs = ChannelCode.objects.filter(enabled=True).order_by("folder", "-id")
    if q:
        qs = qs.filter(name__icontains=q)
    if folder:
        qs = qs.filter(folder=folder)
    allowed = allowed_userids(scope)
    rows = list(qs)
    if allowed is not None:
        mine = set(ChannelAdd.objects.filter(userid__in=allowed).values_list("code_id", flat=True).distinct())
        rows = [c for c in rows if c.id in mine or allowed.intersection(c.users + c.backups + c.active_users)]
    return rows


def code(scope: DataScope, code_id: int) -> ChannelCode | None:
    for c in codes(scope):
        if c.id == code_id:
            return c
    return None


def adds(scope: DataScope) -> QuerySet[ChannelAdd]:
    qs = ChannelAdd.objects.all()
    allowed = allowed_userids(scope)
    if allowed is not None:
        qs = qs.filter(userid__in=allowed)
    return qs


def add_counts(scope: DataScope, code_ids: list[int]) -> dict[int, int]:
    """Adds per code (within the scope) for these codes."""
    rows = adds(scope).filter(code_id__in=code_ids).values_list("code_id").annotate(n=Count("id"))
    return dict(rows.values_list("code_id", "n"))


def default_welcomes() -> list[DefaultWelcome]:
    """Every default welcome, newest first, each with ``employee_name`` and ``department_name``
    (the page shows names; the account and id only as secondary text)."""
    rows = list(DefaultWelcome.objects.order_by("-id"))
    employees = org_selectors.names_by_userid(w.userid for w in rows if w.userid)
    departments = org_selectors.department_names(w.department_id for w in rows if w.department_id)
    for w in rows:
        setattr(w, "employee_name", employees.get(w.userid, ""))  # noqa: B010 - not a model field: a display name
        setattr(w, "department_name", departments.get(w.department_id or 0, ""))  # noqa: B010 - same
    return rows


def adds_today(scope: DataScope) -> int | None:
    return adds(scope).filter(day=local().date()).count()


def top_codes(scope: DataScope, days: int = 7, limit: int = 5) -> list[dict[str, Any]]:
    """The overview's channel top list: the codes with the most adds over the last ``days`` days
    (name, new, lost, net), within the viewer's scope."""
    end = local().date()
    rows = analytics(scope, end - timedelta(days=days - 1), end, dimension="code")["rows"]
    rows.sort(key=lambda r: (-r["new"], r["label"]))
    return [
        {"id": r["key"], "name": r["label"], "new": r["new"], "lost": r["lost"], "net": r["net"]} for r in rows[:limit]
    ]


def welcome_failures(scope: DataScope, code_obj: ChannelCode, limit: int = 50) -> list[WelcomeSend]:
    qs = WelcomeSend.objects.filter(code=code_obj, status=WelcomeSend.FAILED).order_by("-id")
    allowed = allowed_userids(scope)
    if allowed is not None:
        qs = qs.filter(userid__in=allowed)
    return list(qs[:limit])


def welcome_counts(scope: DataScope, code_ids: Iterable[int] | None = None) -> dict[int, dict[str, int]]:
    qs = WelcomeSend.objects.exclude(code=None)
    if code_ids is not None:
        qs = qs.filter(code_id__in=code_ids)
    allowed = allowed_userids(scope)
    if allowed is not None:
        qs = qs.filter(userid__in=allowed)
    out: dict[int, dict[str, int]] = defaultdict(
        lambda: {"sent": 0, "failed": 0, "pending": 0, "skipped": 0, "unknown": 0}
    )
    for cid, status, n in (
        qs.values_list("code_id", "status").annotate(n=Count("id")).values_list("code_id", "status", "n")
    ):
        out[cid][status] = n
    return out


def analytics(
    scope: DataScope, start: date, end: date, code_id: int | None = None, dimension: str = "day"
) -> dict[str, Any]:
    """Rows per ``dimension`` (day / code / employee / department) over [start, end]: new, lost,
    net, 1-day and 7-day retention (of adds old enough to tell; None otherwise) and the welcome
    success rate."""
    today = local().date()
    qs = adds(scope).filter(day__gte=start, day__lte=end)
    if code_id:
        qs = qs.filter(code_id=code_id)
    keys: dict[str, Literal["day", "code_id", "userid", "department_id"]] = {
        "day": "day",
        "code": "code_id",
        "employee": "userid",
        "department": "department_id",
    }
    key = keys[dimension]
    rows: dict[Any, dict[str, Any]] = {}
    for a in qs.values("day", "code_id", "userid", "department_id", "added_at", "lost_at"):
        k = a[key]
        r = rows.setdefault(k, {"key": k, "new": 0, "lost": 0, "r1_base": 0, "r1": 0, "r7_base": 0, "r7": 0})
        r["new"] += 1
        if a["lost_at"]:
            r["lost"] += 1
        for days, base, kept in ((1, "r1_base", "r1"), (7, "r7_base", "r7")):
            if a["day"] + timedelta(days=days) <= today:
                r[base] += 1
                if not a["lost_at"] or a["lost_at"] > a["added_at"] + timedelta(days=days):
                    r[kept] += 1
    wq = WelcomeSend.objects.exclude(code=None).filter(
        started_at__gte=_ts(start), started_at__lt=_ts(end + timedelta(days=1))
    )
    if code_id:
        wq = wq.filter(code_id=code_id)
    allowed = allowed_userids(scope)
    if allowed is not None:
        wq = wq.filter(userid__in=allowed)
    welcome: dict[Any, list[int]] = defaultdict(lambda: [0, 0])
    if dimension in ("code", "employee", "day"):
        for w in wq.values("code_id", "userid", "status", "started_at"):
            wk: Any = {"code": w["code_id"], "employee": w["userid"], "day": local(w["started_at"]).date()}[dimension]
            welcome[wk][0] += 1
            welcome[wk][1] += w["status"] == WelcomeSend.SENT
    names = _names(dimension, list(rows))
    out = []
    for k in sorted(rows, key=lambda x: str(x)):
        r = rows[k]
        wc = welcome.get(k)
        out.append(
            {
                "key": str(k) if k is not None else "",
                "label": names.get(k, str(k) if k is not None else "-"),
                "new": r["new"],
                "lost": r["lost"],
                "net": r["new"] - r["lost"],
                "retention_1d": round(100 * r["r1"] / r["r1_base"], 1) if r["r1_base"] else None,
                "retention_7d": round(100 * r["r7"] / r["r7_base"], 1) if r["r7_base"] else None,
                "welcome_rate": round(100 * wc[1] / wc[0], 1) if wc and wc[0] else None,
            }
        )
    totals = {"new": sum(r["new"] for r in out), "lost": sum(r["lost"] for r in out)}
    totals["net"] = totals["new"] - totals["lost"]
    return {"rows": out, "totals": totals, "dimension": dimension}


def _ts(d: date) -> float:
    return datetime.combine(d, datetime.min.time(), tzinfo=timezone.get_current_timezone()).timestamp()


def _names(dimension: str, keys: list[Any]) -> dict[Any, str]:
    if dimension == "code":
        return dict(ChannelCode.objects.filter(id__in=keys).values_list("id", "name"))
    if dimension == "employee":
        return {u: f"{n or u}" for u, n in org_selectors.names_by_userid(keys).items()}
    if dimension == "department":
        return org_selectors.department_names(keys)
    return {k: k.isoformat() for k in keys}


def folders() -> list[str]:
    return sorted(set(ChannelCode.objects.filter(enabled=True).exclude(folder="").values_list("folder", flat=True)))


__all__ = ["Q"]


def default_welcome(pk: int | None) -> DefaultWelcome | None:
    return DefaultWelcome.objects.filter(id=pk).first() if pk else None


# --- pickers (siyu.core.pickers) and channel names for the customer pages ---------------------
class PickerRow(TypedDict):
    value: str
    label: str
    sub: str
    group: str


def _code_row(c: ChannelCode) -> PickerRow:
    sub = c.folder or ""
    if not c.enabled:
        sub = f"{sub} · {_('已删除')}" if sub else str(_("已删除"))
    return {"value": c.state, "label": c.name, "sub": sub, "group": ""}


def search_codes(scope: DataScope, q: str, *, limit: int = 20) -> tuple[list[PickerRow], bool]:
    """Live channel codes the viewer may see whose name or folder contains ``q`` (every one when
    empty), at most ``limit``; the value is the code's state (what a customer's relation carries)."""
    rows = codes(scope, q="")
    if q:
        ql = q.lower()
        rows = [c for c in rows if ql in c.name.lower() or ql in (c.folder or "").lower()]
    return [_code_row(c) for c in rows[:limit]], len(rows) > limit


def code_items(values: Iterable[str], scope: DataScope) -> dict[str, PickerRow]:
    """The picker rows of these states that name a channel code the viewer may see (a deleted
    code's customers keep its name)."""
    ids = _code_ids(values)
    if not ids:
        return {}
    visible = {c.id for c in codes(scope)}
    rows = ChannelCode.objects.filter(id__in=ids)
    return {c.state: _code_row(c) for c in rows if c.id in visible or (scope.everything and not c.enabled)}


def _code_ids(states: Iterable[str]) -> list[int]:
    out = []
    for s in states:
        rest = s[len(STATE_PREFIX) :] if s and s.startswith(STATE_PREFIX) else ""
        if rest.isdigit() and len(rest) < 19:
            out.append(int(rest))
    return out


def names_by_state(states: Iterable[str]) -> dict[str, str]:
    """Channel code name by state (``ch:<id>``), for the states that name a code (deleted ones
    too): the customer pages show the channel by name."""
    ids = _code_ids(set(states))
    if not ids:
        return {}
    return {f"{STATE_PREFIX}{i}": name for i, name in ChannelCode.objects.filter(id__in=ids).values_list("id", "name")}
