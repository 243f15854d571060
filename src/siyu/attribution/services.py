"""Attributing orders (see ``models``), and the commission rules."""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.attribution.models import Attribution, CommissionRule
from siyu.commerce import selectors as commerce_selectors
from siyu.core import bulk
from siyu.customers import selectors as customer_selectors
from siyu.links import selectors as link_selectors
from siyu.org import selectors as org_selectors
from siyu.profiles import selectors as profile_selectors

logger = logging.getLogger("siyu.attribution")

CLICK_DAYS = 7  # a click on a guide's link counts for orders paid within this many days after it
BATCH = 2000


def _relations(customer_ids: list[int]) -> dict[int, list[tuple[Any, Any, str, int, str, Any]]]:
    """Per customer: (added_at, left_at or None, employee userid, employee id, state, external_userid)."""
    out: dict[int, list[tuple[Any, Any, str, int, str, Any]]] = defaultdict(list)
    rows = (
        customer_selectors.follow_relations()
        .filter(customer_id__in=customer_ids)
        .values_list(
            "customer_id",
            "added_at",
            "status",
            "status_changed_at",
            "employee__userid",
            "employee_id",
            "state",
            "customer__external_userid",
        )
    )
    for cid, added, status, changed, userid, eid, state, ext in rows:
        left = None if status == "active" else changed
        out[cid].append((added, left, userid, eid, state, ext))
    return out


def attribute(order_ids: list[int]) -> int:
    """(Re)attribute these orders; returns how many were written."""
    orders = list(
        commerce_selectors.orders()
        .filter(id__in=order_ids)
        .values("id", "profile_id", "paid_at", "guide_userid", "store_code", "amount", "refunded_amount")
    )
    if not orders:
        return 0
    person_of: dict[int, int] = {}
    for person, cluster in profile_selectors.clusters({o["profile_id"] for o in orders}).items():
        for pid in cluster:
            person_of[pid] = person
    customers_of: dict[int, list[int]] = defaultdict(list)
    for person, cid in profile_selectors.customers_of_persons(person_of.values()):
        customers_of[person].append(cid)
    all_customers = sorted({c for cs in customers_of.values() for c in cs})
    relations = _relations(all_customers)
    ext_of = {cid: rels[0][5] for cid, rels in relations.items() if rels}
    first = min(o["paid_at"] for o in orders) - dt.timedelta(days=CLICK_DAYS)
    last = max(o["paid_at"] for o in orders)
    clicks: dict[str, list[tuple[Any, str, int]]] = defaultdict(list)
    for ext, at, userid, lid in link_selectors.clicks_of_customers(sorted(set(ext_of.values())), first, last):
        clicks[ext].append((at, userid, lid))
    now = timezone.now()
    rows: list[dict[str, Any]] = []
    for o in orders:
        paid = o["paid_at"]
        cids = customers_of.get(person_of.get(o["profile_id"], o["profile_id"]), [])
        guide, reason, state = "", Attribution.Reason.NONE, ""
        link_id: int | None = None
        at_pay = [r for c in cids for r in relations.get(c, []) if r[0] <= paid and (r[1] is None or r[1] > paid)]
        if o["guide_userid"]:
            guide, reason = o["guide_userid"], Attribution.Reason.ORDER_GUIDE
        else:
            recent = [
                c
                for cid in cids
                for c in clicks.get(ext_of.get(cid, ""), [])
                if paid - dt.timedelta(days=CLICK_DAYS) <= c[0] <= paid
            ]
            if recent:
                at, guide, link_id = max(recent)
                reason = Attribution.Reason.LINK_CLICK
            elif at_pay:
                guide, reason = max(at_pay)[2], Attribution.Reason.RELATION
        mine = [r for r in at_pay if r[2] == guide]
        state = max(mine)[4] if mine else (max(at_pay)[4] if at_pay else "")
        rows.append(
            {
                "order_id": o["id"],
                "paid_at": paid,
                "guide_userid": guide,
                "department_id": None,  # the guide's store: filled below for the batch's guides
                "store": o["store_code"],
                "channel": state,
                "reason": reason,
                "link_id": link_id,
                "amount": o["amount"],
                "refunded": o["refunded_amount"],
                "computed_at": now,
            }
        )
    members = org_selectors.employee_ids({r["guide_userid"] for r in rows if r["guide_userid"]})
    homes = org_selectors.home_departments(members.values())
    for r in rows:
        eid = members.get(r["guide_userid"])
        r["department_id"] = homes.get(eid) if eid is not None else None
    fields = [k for k in rows[0] if k != "order_id"]
    with transaction.atomic():
        bulk.insert(Attribution, rows, conflict=("order_id",), update=fields)
    return len(rows)


def step(state: dict[str, Any]) -> dict[str, Any]:
    """One step of the walk over changed orders (new ones, refunds): attributes them and returns
    the next state (the watermark and how many were read)."""
    at = dt.datetime.fromisoformat(state["at"]) if state.get("at") else None
    ids, at, after = commerce_selectors.order_ids_changed_since(
        at, int(state.get("after", 0)), BATCH, walk="attribution"
    )
    if ids:
        attribute(ids)
    return {"at": at.isoformat() if at else None, "after": after, "more": len(ids)}


# --- commission rules --------------------------------------------------------------------------------------------
class RuleError(ValueError):
    pass


def save_rule(scope: str, value: str, percent: str | Decimal) -> CommissionRule:
    if scope not in CommissionRule.Scope.values:
        raise RuleError(_("未知的适用范围。"))
    value = "" if scope == CommissionRule.Scope.DEFAULT else value.strip()[:64]
    if scope != CommissionRule.Scope.DEFAULT and not value:
        raise RuleError(_("请填写门店编码或品类。"))
    if scope == CommissionRule.Scope.TIER:
        value = value.upper()
        if value not in ("A", "B", "C"):
            raise RuleError(_("导购等级须是 A、B 或 C。"))
    try:
        pct = Decimal(str(percent)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        raise RuleError(_("提成比例须是 0 到 100 之间的数。")) from None
    if not Decimal(0) <= pct <= Decimal(100):
        raise RuleError(_("提成比例须是 0 到 100 之间的数。"))
    rule, _created = CommissionRule.objects.update_or_create(scope=scope, value=value, defaults={"percent": pct})
    return rule


def delete_rule(rule: CommissionRule) -> None:
    rule.delete()
