"""Scenario controls for acquisition: many scans of a contact way in one call.

``/sim/scan_many`` runs ``n`` scans of one contact way (each one exactly as ``/sim/scan``: a new
WeChat user, the employee chosen round-robin among the way's CURRENT ``user`` list plus party
members). WeCom documents only that a multi-member way "随机分配" (distributes) adds among its
members; we assume an even rotation over the list as it stands at the time of each scan, so a
product that changes the list with update_contact_way (schedules, caps) sees the change on the
very next scan. The scans are committed a few at a time (``per_tx``), so their callbacks are
queued as they commit, and WeCom's API (a product sending the welcomes of the first scans) is not
held behind the write lock of the whole batch. A scan that fails stops the batch; the transactions
before it stay done.
"""

from __future__ import annotations

from django.db import transaction

from siyu.wecom_sim import schemas
from siyu.wecom_sim.control import ControlError, action
from siyu.wecom_sim.endpoints.contact_ways import scan


@action("scan_many", schemas.ScanMany, atomic=False)
def scan_many(body: dict) -> dict:
    """Body: config_id, n (1–1000), name (prefix of the new users' names), per_tx (scans per
    transaction, 1–50, default 5). Answers the scans in order ({userid, external_userid,
    welcome_code, state}) and the count per employee."""
    n = int(body.get("n") or 1)
    if not 1 <= n <= 1000:
        raise ControlError("n must be between 1 and 1000")
    per_tx = int(body.get("per_tx") or 5)
    if not 1 <= per_tx <= 50:
        raise ControlError("per_tx must be between 1 and 50")
    out, per_user = [], {}
    for start in range(0, n, per_tx):
        with transaction.atomic():
            done = [
                scan({"config_id": body.get("config_id"), "name": f"{body.get('name') or '扫码客户'}{i}"})
                for i in range(start, min(n, start + per_tx))
            ]
        for r in done:
            out.append({k: r.get(k) for k in ("userid", "external_userid", "welcome_code", "state", "added")})
            per_user[r["userid"]] = per_user.get(r["userid"], 0) + 1
    return {"scans": out, "per_user": per_user}
