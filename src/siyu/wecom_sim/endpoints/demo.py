"""The demo corp's history, for ``siyu demo``'s first start (not a WeCom API: the control API).

The demo world (``world.seed(demo=True)``) is built with six months of channel history: customers
who added guides through store posters, package cards and live streams (their follow's ``state``
and ``createtime``), some of whom later deleted the guide or were deleted (``status``,
``status_time``). WeCom has no API for such history; a product that had been running for those
months would have seen it as callbacks. These actions hand it to the demo instead:

- ``demo/history``: the channel plan (name, folder, store, the staff who hold its customers), every
  follow attributed to a channel, the losses of the last six months and a guide who can leave (for
  a 离职继承 story);
- ``demo/attribute``: once the product has created a channel's contact way, the channel's customers
  carry that way's ``state`` (what WeCom would have reported had they scanned that code).

Both are idempotent: a second demo start on the same world changes nothing.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from siyu.wecom_sim import clock, schemas
from siyu.wecom_sim.control import ControlError, action
from siyu.wecom_sim.models import Department, Follow, SimState, User
from siyu.wecom_sim.world import DAY, HISTORY_DAYS

KEY = "demo_channels"


def _state() -> dict[str, Any]:
    row = SimState.objects.filter(key=KEY).first()
    if row is None:
        raise ControlError("this world has no demo history (start the emulator with --demo)")
    return dict(row.value)


def _leavers(stores: list[int], n: int = 2) -> list[dict[str, Any]]:
    """Guides of the last stores (not their managers), one per store: those who leave in the demo's
    story (the first is handed over, the second's customers wait for an owner). The same guides on
    every call, whether they already left or not."""
    out = []
    for sid in reversed(stores):
        for u in User.objects.filter(main_department=sid).order_by("-userid"):
            serving = u.status == User.STATUS_ACTIVE and u.contact_enabled
            if (serving or u.status == User.STATUS_LEFT) and not any(u.is_leader_in_dept):
                out.append({"userid": u.userid, "name": u.name, "resigned": u.status == User.STATUS_LEFT})
                break
        if len(out) == n:
            break
    return out


@action("demo/history", schemas.Empty)
def history(body: dict) -> dict:
    st = _state()
    plan: list[dict[str, Any]] = st["plan"]
    attributed: dict[str, str] = st.get("attributed") or {}
    current = {p["state"]: attributed.get(p["state"], p["state"]) for p in plan}
    by_current = {v: k for k, v in current.items()}
    follows = list(
        Follow.objects.filter(state__in=list(by_current))
        .order_by("createtime", "id")
        .values_list("userid", "external_userid", "state", "createtime", "status", "status_time")
    )
    staff: dict[str, Counter[str]] = {p["state"]: Counter() for p in plan}
    first: dict[str, int] = {}
    for userid, _ext, state, createtime, *_rest in follows:
        staff[by_current[state]][userid] += 1
        first.setdefault(by_current[state], createtime)  # follows come oldest first
    active = set(User.objects.filter(status=User.STATUS_ACTIVE, contact_enabled=True).values_list("userid", flat=True))
    channels = []
    for p in plan:
        users = [u for u, _n in staff[p["state"]].most_common() if u in active][:5]
        channels.append(
            {
                **p,
                "current_state": current[p["state"]],
                "users": users,
                "adds": sum(staff[p["state"]].values()),
                "first_add": first.get(p["state"]),
            }
        )
    since = clock.now() - HISTORY_DAYS * DAY
    losses = list(
        Follow.objects.exclude(status=Follow.ACTIVE)
        .filter(status_time__gte=since)
        .order_by("status_time", "id")
        .values_list("userid", "external_userid", "status", "status_time", "createtime")
    )
    stores = [p["department_id"] for p in plan if p.get("department_id")]
    return {
        "now": clock.now(),
        "since": since,
        "channels": channels,
        "follows": [list(f) for f in follows],
        "losses": [list(x) for x in losses],
        "stores": {d.id: d.name for d in Department.objects.filter(id__in=stores)},
        "leavers": _leavers(stores),
    }


@action("demo/attribute", schemas.DemoAttribute)
def attribute(body: dict) -> dict:
    st = _state()
    plan_states = {p["state"] for p in st["plan"]}
    attributed: dict[str, str] = dict(st.get("attributed") or {})
    moved = 0
    for legacy, new in body["states"].items():
        if legacy not in plan_states:
            raise ControlError(f"unknown demo channel {legacy!r}")
        if not new or new in plan_states:
            raise ControlError(f"invalid state for {legacy!r}")
        old = attributed.get(legacy, legacy)
        if old == new:
            continue
        moved += Follow.objects.filter(state=old).update(state=new)
        attributed[legacy] = new
    SimState.objects.update_or_create(key=KEY, defaults={"value": {**st, "attributed": attributed}})
    return {"moved": moved, "attributed": attributed}
