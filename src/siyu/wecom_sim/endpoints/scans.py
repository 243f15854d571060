"""Scenario controls for acquisition: many scans of a contact way in one call.

``/sim/scan_many`` runs ``n`` scans of one contact way (each one exactly as ``/sim/scan``: a new
WeChat user, the employee chosen round-robin among the way's CURRENT ``user`` list plus party
members). WeCom documents only that a multi-member way "随机分配" (distributes) adds among its
members; we assume an even rotation over the list as it stands at the time of each scan, so a
product that changes the list with update_contact_way (schedules, caps) sees the change on the
very next scan. The call is one transaction (as every control action): its callbacks are queued
when it returns.
"""

from __future__ import annotations

from siyu.wecom_sim.control import ControlError, action
from siyu.wecom_sim.endpoints.contact_ways import scan


@action("scan_many")
def scan_many(body: dict) -> dict:
    """Body: config_id, n (1–1000), name (prefix of the new users' names). Answers the scans in
    order ({userid, external_userid, welcome_code, state}) and the count per employee."""
    n = int(body.get("n") or 1)
    if not 1 <= n <= 1000:
        raise ControlError("n must be between 1 and 1000")
    out, per_user = [], {}
    for i in range(n):
        r = scan({"config_id": body.get("config_id"), "name": f"{body.get('name') or '扫码客户'}{i}"})
        out.append({k: r.get(k) for k in ("userid", "external_userid", "welcome_code", "state", "added")})
        per_user[r["userid"]] = per_user.get(r["userid"], 0) + 1
    return {"scans": out, "per_user": per_user}
