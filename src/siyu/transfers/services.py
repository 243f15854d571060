"""Writes and rules of continuity: planning and starting handovers, following their results,
carrying a customer's record over to the new relation, and churn alerts.

WeCom is called outside any transaction: items are created (``planned``) and committed first, the
call is made, and its per-customer answer is written afterwards. A crash between the two leaves
``planned`` items, which ``submit`` sends again (WeCom answers 40129 "already in transfer" for a
customer whose first call did go through; that item is then re-read by the poll).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.core import timers
from siyu.customers import selectors as customer_selectors
from siyu.customers import services as customer_services
from siyu.groups import selectors as group_selectors
from siyu.groups import services as group_services
from siyu.org import selectors as org_selectors
from siyu.transfers.models import (
    ChurnEvent,
    ChurnRule,
    GroupHandoverItem,
    Handover,
    HandoverItem,
)
from siyu.wecom import errcodes, gateway
from siyu.wecom.gateway import WeComAPIError

if TYPE_CHECKING:
    # the model type, through org's public face (org.selectors imports it; see the report)
    from siyu.org.selectors import Employee
    from siyu.wecom.gateway import ExternalContactAPI, ExternalContactGroupChatAPI

logger = logging.getLogger("siyu.transfers")

# WeCom's limits (doc 94081 / 96325; /work/shared/domain/wecom-api.md part 2 §3).
PER_CALL = 100  # customers per transfer_customer call
GROUPS_PER_CALL = 100  # chat ids per groupchat/transfer call
ONJOB_MAX_PER_90D = 2  # on-job transfers of one customer within 90 days
WINDOW = timedelta(days=90)
ACCEPT_AFTER = timedelta(hours=24)
MSG_MAX = 200  # transfer_success_msg characters

WECOM_STATUS = {
    1: HandoverItem.ACCEPTED,
    2: HandoverItem.WAITING,
    3: HandoverItem.REFUSED,
    4: HandoverItem.AT_CAPACITY,
    5: HandoverItem.FAILED,  # 无接替记录: WeCom has no transfer of this customer to this takeover
}
FAIL_REASON = {"customer_refused": HandoverItem.REFUSED, "customer_limit_exceed": HandoverItem.AT_CAPACITY}


class TransferError(Exception):
    """A handover refused before WeCom is asked; the message is for the operator."""


def _ts(value: Any) -> datetime | None:
    try:
        v = int(value or 0)
    except (TypeError, ValueError):
        return None
    return datetime.fromtimestamp(v, tz=UTC) if v > 0 else None


def reason_for(errcode: int) -> str:
    """WeCom's refusal in words (meaning and what to do); the code itself is kept in ``errcode``
    and shown only as secondary text."""
    return errcodes.sentence(errcode)[:255]


# --- the pre-check: send only what WeCom can take --------------------------------------------------
@dataclass(frozen=True)
class Refusal:
    """Why one customer is not sent: the errcode WeCom would answer, and the reason in words."""

    errcode: int
    reason: str


@dataclass
class Precheck:
    """What a handover may send, checked against WeCom's own view before anything is sent:
    ``sendable`` customers (in order) and, for each customer that cannot be sent, why.
    ``wecom_ok`` is False when WeCom could not be read: then nothing is sendable."""

    sendable: list[str] = field(default_factory=list)
    refused: dict[str, Refusal] = field(default_factory=dict)
    wecom_ok: bool = True


def _in_transfer(external_userids: list[str], handover_userid: str) -> set[str]:
    """Of ``external_userids``, those already waiting in a handover from ``handover_userid``."""
    return set(
        HandoverItem.objects.filter(
            handover_userid=handover_userid, status=HandoverItem.WAITING, external_userid__in=list(external_userids)
        ).values_list("external_userid", flat=True)
    )


def not_followed_reason() -> str:
    return _(
        "企业微信显示该员工已不是这位客户的跟进人（客户可能已删除员工，或已被转给其他员工），企业微信会拒绝转接，因此不提交。"
    )


def precheck_resigned(employee: Employee, wecom: dict[str, list[str]] | None) -> Precheck:
    """A resigned handover sends exactly the customers WeCom's get_unassigned_list shows as
    waiting for a new owner (doc 92124; contract part 2 §3): a customer our records still show
    on the departed employee but WeCom does not list is refused by resigned/transfer_customer
    with 40131, so it is explained and not sent. ``wecom`` is selectors.unassigned_from_wecom()."""
    ours = customer_selectors.active_customers_of(employee.id)
    if wecom is None:
        return Precheck(sendable=[], refused={}, wecom_ok=False)
    listed = list(dict.fromkeys(wecom.get(employee.userid, [])))
    waiting = _in_transfer(listed + ours, employee.userid)
    out = Precheck()
    for x in listed:
        if x in waiting:
            out.refused[x] = Refusal(40129, _("该客户已在转接中，等待客户接受或 24 小时后自动接替，无需再次提交。"))
        else:
            out.sendable.append(x)
    listed_set = set(listed)
    for x in ours:
        if x not in listed_set and x not in waiting and x not in out.refused:
            out.refused[x] = Refusal(
                40131,
                _(
                    "企业微信的待分配客户中没有这位客户（客户可能已删除该员工，或已被分配），企业微信会拒绝转接，因此不提交。"
                ),
            )
    return out


def precheck_onjob(employee: Employee, external_userids: list[str]) -> Precheck:
    """An on-job handover sends only customers WeCom still shows the employee following
    (externalcontact/list) and not already waiting in a transfer; the others are explained."""
    xs = list(dict.fromkeys(external_userids))
    try:
        followed = set(gateway.contact().external_contact.followed_by(employee.userid))
    except WeComAPIError as e:
        logger.warning("on-job pre-check of %s: %s", employee.userid, gateway.redact(e))
        return Precheck(sendable=[], refused={}, wecom_ok=False)
    waiting = _in_transfer(xs, employee.userid)
    out = Precheck()
    for x in xs:
        if x in waiting:
            out.refused[x] = Refusal(40129, _("该客户已在转接中，等待客户接受或 24 小时后自动接替，无需再次提交。"))
        elif x not in followed:
            out.refused[x] = Refusal(40131, not_followed_reason())
        else:
            out.sendable.append(x)
    return out


def wecom_unreadable_message() -> str:
    return _("暂时无法从企业微信读取该员工的客户，为避免提交会被拒绝的客户，本次未提交。请稍后重试。")


# --- the employee's manager ---------------------------------------------------------------------
# --- planning -----------------------------------------------------------------------------------
@dataclass
class Plan:
    """Customers (external_userid) and groups (chat_id) per takeover employee id, and what could
    not be placed (every takeover at its cap)."""

    customers: dict[int, list[str]] = field(default_factory=dict)
    groups: dict[int, list[str]] = field(default_factory=dict)
    unplaced: list[str] = field(default_factory=list)


def plan(
    strategy: str,
    *,
    external_userids: list[str],
    chat_ids: list[str],
    takeovers: list[int],
    counts: dict[int, int] | None = None,
    caps: dict[int, int] | None = None,
) -> Plan:
    """Spread customers and groups over ``takeovers`` (employee ids, in order).

    single: everything to the first. count: ``counts[id]`` customers each, in order (the rest is
    unplaced). store / round_robin: one each in turn, skipping a takeover once it has ``caps[id]``
    (no cap when missing or 0). Groups go round robin (no caps: a group's owner has no cap)."""
    if not takeovers:
        raise TransferError(_("请选择接替成员。"))
    out = Plan(customers={t: [] for t in takeovers}, groups={t: [] for t in takeovers})
    if strategy == "single":
        out.customers[takeovers[0]] = list(external_userids)
        out.groups[takeovers[0]] = list(chat_ids)
        return _drop_empty(out)
    if strategy == "count":
        counts = counts or {}
        i = 0
        for t in takeovers:
            n = max(0, int(counts.get(t) or 0))
            out.customers[t] = list(external_userids[i : i + n])
            i += n
        out.unplaced = list(external_userids[i:])
    else:
        caps = {t: int(c) for t, c in (caps or {}).items() if c}
        open_ = list(takeovers)
        k = 0
        for x in external_userids:
            open_ = [t for t in open_ if t not in caps or len(out.customers[t]) < caps[t]]
            if not open_:
                out.unplaced.append(x)
                continue
            t = open_[k % len(open_)]
            out.customers[t].append(x)
            k += 1
    for i, c in enumerate(chat_ids):
        out.groups[takeovers[i % len(takeovers)]].append(c)
    return _drop_empty(out)


def _drop_empty(p: Plan) -> Plan:
    p.customers = {t: xs for t, xs in p.customers.items() if xs}
    p.groups = {t: cs for t, cs in p.groups.items() if cs}
    return p


# --- the 90-day on-job limit --------------------------------------------------------------------
def onjob_counts(external_userids: list[str], now: datetime | None = None) -> dict[str, int]:
    """On-job transfers of each customer within the last 90 days that moved it or are moving it
    (WeCom counts those; a refused one or one that hit the takeover's cap did not move it).

    Our own handovers, and moves made elsewhere (WeCom's admin console) that we saw as a relation
    ended by DELETE_BY_TRANSFER; the larger of the two counts, since a move of ours is in both."""
    now = now or timezone.now()
    since = now - WINDOW
    ids = list(set(external_userids))
    ours: dict[str, int] = defaultdict(int)
    for x in HandoverItem.objects.filter(
        external_userid__in=ids,
        kind=Handover.ONJOB,
        started_at__gt=since,
        status__in=(HandoverItem.WAITING, HandoverItem.ACCEPTED),
    ).values_list("external_userid", flat=True):
        ours[x] += 1
    seen = customer_selectors.transfers_seen_since(ids, since)
    return {x: max(ours.get(x, 0), seen.get(x, 0)) for x in ids}


def limit_message(n: int) -> str:
    return _("该客户90天内已在职转接%(n)d次，已达上限（90天内最多%(max)d次），不能再转接。") % {
        "n": n,
        "max": ONJOB_MAX_PER_90D,
    }


def onjob_blocked(external_userids: list[str]) -> dict[str, int]:
    """The customers the 90-day limit refuses, with their count."""
    return {x: n for x, n in onjob_counts(external_userids).items() if n >= ONJOB_MAX_PER_90D}


# --- starting handovers -------------------------------------------------------------------------
def create_handover(
    kind: str,
    handover: Employee,
    p: Plan,
    *,
    strategy: str = "single",
    message: str = "",
    user: User | AnonymousUser | None = None,
    blocked: dict[str, int] | None = None,
    refused: dict[str, Refusal] | None = None,
) -> Handover:
    """The handover and its planned items, committed (before WeCom is asked). Customers in
    ``blocked`` are recorded as failed at once with the 90-day message, and those the pre-check
    ``refused`` (not in the plan) with its reason: they never reach WeCom."""
    if kind == Handover.ONJOB and len(message) > MSG_MAX:
        raise TransferError(_("转接提示语最多200个字。"))
    takeover_rows = {e.id: e for e in org_selectors.employees_by_ids(set(p.customers) | set(p.groups))}
    all_x = [x for xs in p.customers.values() for x in xs]
    cust = customer_selectors.customer_ids_by_external([*all_x, *(refused or {})])  # one lookup for both
    blocked = blocked or {}
    now = timezone.now()
    with transaction.atomic():
        h = Handover.objects.create(
            kind=kind,
            handover=handover,
            strategy=strategy,
            message=message,
            created_by=user if isinstance(user, User) and user.is_authenticated else None,
            unplaced=list(p.unplaced),
        )

        def item_for(x: str, emp: Employee, **outcome: Any) -> HandoverItem:
            return HandoverItem(
                handover=h,
                kind=kind,
                customer_id=cust.get(x),
                external_userid=x,
                handover_userid=handover.userid,
                takeover=emp,
                takeover_userid=emp.userid,
                **outcome,
            )

        items = []
        for t, xs in p.customers.items():
            emp = takeover_rows[t]
            for x in xs:
                if x not in blocked:
                    items.append(item_for(x, emp))
                    continue
                items.append(
                    item_for(
                        x,
                        emp,
                        status=HandoverItem.NOT_SENT,
                        errcode=40128,
                        reason=limit_message(blocked[x]),
                        finished_at=now,
                    )
                )
        first = next(iter(p.customers), None) or next(iter(p.groups), None)
        if refused and first is not None:
            emp = takeover_rows[first]
            planned = {it.external_userid for it in items}
            for x, why in refused.items():
                if x in planned:
                    continue
                items.append(
                    item_for(
                        x,
                        emp,
                        status=HandoverItem.NOT_SENT,
                        errcode=why.errcode,
                        reason=why.reason[:255],
                        finished_at=now,
                    )
                )
        HandoverItem.objects.bulk_create(items, batch_size=500)
        groups = group_selectors.group_ids_by_chat([c for cs in p.groups.values() for c in cs])
        GroupHandoverItem.objects.bulk_create(
            [
                GroupHandoverItem(handover=h, chat_id=c, group_id=groups.get(c), new_owner=takeover_rows[t], status="")
                for t, cs in p.groups.items()
                for c in cs
            ],
            batch_size=500,
        )
    return h


def submit(h: Handover) -> dict[str, float]:
    """Send the planned items of ``h`` to WeCom (outside any transaction), then record the answers.
    Returns counts of what WeCom answered."""
    api = gateway.contact().external_contact
    groups_api = gateway.contact().external_contact_group_chat
    stats = {"started": 0, "failed": 0, "groups_done": 0, "groups_failed": 0, "api_s": 0.0}
    _submit_customers(h, api, stats)
    _submit_groups(h, groups_api, stats)
    if stats["started"]:
        ensure_poll_scheduled()
    return stats


def _submit_customers(h: Handover, api: ExternalContactAPI, stats: dict[str, float]) -> None:
    """``submit``'s customers: one call per takeover and ``PER_CALL`` customers."""
    by_takeover: dict[str, list[HandoverItem]] = defaultdict(list)
    for it in h.items.filter(status=HandoverItem.PLANNED).order_by("id"):
        by_takeover[it.takeover_userid].append(it)
    for takeover, items in by_takeover.items():
        for i in range(0, len(items), PER_CALL):
            batch = items[i : i + PER_CALL]
            ids = [it.external_userid for it in batch]
            t0 = time.perf_counter()
            try:
                if h.kind == Handover.RESIGNED:
                    res = api.resigned_transfer_customer(h.handover.userid, takeover, ids)
                else:
                    res = api.transfer_customer(h.handover.userid, takeover, ids, h.message or None)
            except WeComAPIError as e:
                _record_call_failure(batch, e)
                stats["failed"] += len(batch)
                continue
            stats["api_s"] += time.perf_counter() - t0
            stats_batch = _record_started(batch, res.get("customer") or [])
            stats["started"] += stats_batch[0]
            stats["failed"] += stats_batch[1]


def _submit_groups(h: Handover, groups_api: ExternalContactGroupChatAPI, stats: dict[str, float]) -> None:
    """``submit``'s groups: one call per new owner and ``GROUPS_PER_CALL`` chats."""
    by_owner: dict[int, list[GroupHandoverItem]] = defaultdict(list)
    for g in h.group_items.filter(status="").select_related("new_owner").order_by("id"):
        by_owner[g.new_owner_id].append(g)
    for rows in by_owner.values():
        owner = rows[0].new_owner.userid
        for i in range(0, len(rows), GROUPS_PER_CALL):
            batch = rows[i : i + GROUPS_PER_CALL]
            chat_ids = [g.chat_id for g in batch]
            try:
                if h.kind == Handover.RESIGNED:
                    res = groups_api.transfer_resigned(chat_ids, owner)
                else:
                    res = groups_api.transfer_onjob(chat_ids, owner)
                failed = {f.get("chat_id"): int(f.get("errcode") or 0) for f in res.get("failed_chat_list") or []}
            except WeComAPIError as e:
                failed = {c: int(e.errcode or -1) for c in chat_ids}
            with transaction.atomic():
                for g in batch:
                    code = failed.get(g.chat_id, 0)
                    g.status = GroupHandoverItem.FAILED if code else GroupHandoverItem.DONE
                    g.errcode, g.reason = code, reason_for(code) if code else ""
                    g.save(update_fields=["status", "errcode", "reason"])
                    if not code and g.group_id:
                        _move_group(g, g.group_id)
            stats["groups_failed"] += len(failed)
            stats["groups_done"] += len(batch) - len(failed)


def _move_group(g: GroupHandoverItem, group_id: int) -> None:
    """Our copy follows at once (WeCom's change_owner callback confirms it later)."""
    group_services.set_owner(group_id, g.new_owner_id, inherited=g.handover.kind == Handover.RESIGNED)


def _record_call_failure(batch: list[HandoverItem], e: WeComAPIError) -> None:
    now = timezone.now()
    code = int(e.errcode or -1)
    for it in batch:
        it.status, it.errcode, it.reason, it.finished_at = HandoverItem.FAILED, code, reason_for(code), now
    _update_grouped(batch, ("status", "errcode", "reason", "finished_at"))


def _record_started(batch: list[HandoverItem], answers: list[dict[str, Any]]) -> tuple[int, int]:
    now = timezone.now()
    codes: dict[str | None, int] = {}
    for a in answers:
        codes.setdefault(a.get("external_userid"), int(a.get("errcode") or 0))
    started = failed = 0
    for it in batch:
        code = codes.get(it.external_userid, -1)
        if code == 0:
            it.status, it.started_at, it.due_at = HandoverItem.WAITING, now, now + ACCEPT_AFTER
            started += 1
        else:
            it.status, it.errcode, it.reason, it.finished_at = HandoverItem.FAILED, code, reason_for(code), now
            failed += 1
    _update_grouped(batch, ("status", "errcode", "reason", "started_at", "due_at", "finished_at"))
    return started, failed


# --- results: the poll and transfer_fail ---------------------------------------------------------
def poll(limit_pairs: int | None = None) -> dict[str, float]:
    """Read transfer_result / resigned/transfer_result for every (handover, takeover) pair with
    waiting items and record the statuses. Called by the timer (through a task) and the console's
    refresh button. WeCom is read first; each pair's writes commit together."""
    api = gateway.contact().external_contact
    pairs = list(
        HandoverItem.objects.filter(status=HandoverItem.WAITING)
        .values_list("kind", "handover_userid", "takeover_userid")
        .distinct()
        .order_by("kind", "handover_userid", "takeover_userid")
    )
    if limit_pairs:
        pairs = pairs[:limit_pairs]
    stats = {"pairs": 0, "changed": 0, "api_s": 0.0}
    for kind, handover, takeover in pairs:
        rows: list[dict[str, Any]] = []
        cursor = ""
        t0 = time.perf_counter()
        try:
            while True:
                if kind == Handover.RESIGNED:
                    res = api.resigned_transfer_result(handover, takeover, cursor)
                else:
                    res = api.transfer_result(handover, takeover, cursor)
                rows += res.get("customer") or []
                cursor = res.get("next_cursor") or ""
                if not cursor:
                    break
        except WeComAPIError as e:
            logger.warning("transfer result %s→%s: %s", handover, takeover, e)
            continue
        stats["api_s"] += time.perf_counter() - t0
        stats["pairs"] += 1
        stats["changed"] += apply_results(kind, handover, takeover, rows)
    return stats


def apply_results(kind: str, handover_userid: str, takeover_userid: str, rows: list[dict[str, Any]]) -> int:
    """Record one pair's transfer_result rows on its waiting items, in one transaction and in
    bulk (a departed guide's thousand customers settle in one poll)."""
    by_x = {r.get("external_userid"): r for r in rows if r.get("external_userid")}
    now = timezone.now()
    with transaction.atomic():
        items = list(
            HandoverItem.objects.select_for_update().filter(
                kind=kind,
                handover_userid=handover_userid,
                takeover_userid=takeover_userid,
                status=HandoverItem.WAITING,
                external_userid__in=list(by_x),
            )
        )
        moved: list[HandoverItem] = []
        due: list[HandoverItem] = []
        closed: list[HandoverItem] = []
        for it in items:
            r = by_x[it.external_userid]
            status = WECOM_STATUS.get(int(r.get("status") or 0))
            if status is None:
                continue
            at = _ts(r.get("takeover_time"))
            if status == HandoverItem.WAITING:
                if at and it.due_at != at:
                    it.due_at = at
                    due.append(it)
                continue
            _close(it, status, at or now)
            (moved if status == HandoverItem.ACCEPTED else closed).append(it)
        _update_grouped(due, ("due_at",))
        _update_grouped(closed + moved, ("status", "finished_at", "reason"))
        carry_over_many(moved)
    return len(moved) + len(closed)


def _update_grouped(items: list[HandoverItem], fields: tuple[str, ...]) -> None:
    """Save ``fields`` of many items with one UPDATE per distinct value tuple (a poll's items share
    a few statuses and takeover times; Django's bulk_update builds a CASE per row instead)."""
    groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for it in items:
        groups[tuple(getattr(it, f) for f in fields)].append(it.id)
    now = timezone.now()
    for values, ids in groups.items():
        for i in range(0, len(ids), 500):
            HandoverItem.objects.filter(id__in=ids[i : i + 500]).update(
                **dict(zip(fields, values, strict=True)), updated_at=now
            )


def _close(it: HandoverItem, status: str, at: datetime, reason: str = "") -> None:
    it.status, it.finished_at = status, at
    if status == HandoverItem.REFUSED:
        it.reason = reason or _("客户拒绝了转接")
    elif status == HandoverItem.AT_CAPACITY:
        it.reason = reason or _("接替成员的客户数已达上限")
    elif status == HandoverItem.FAILED:
        it.reason = reason or _("企业微信没有这位客户的转接记录")


def finish(it: HandoverItem, status: str, at: datetime, reason: str = "") -> None:
    """Close one waiting item (inside the caller's transaction)."""
    _close(it, status, at, reason)
    it.save(update_fields=["status", "finished_at", "reason", "updated_at"])
    if status == HandoverItem.ACCEPTED:
        carry_over_many([it])


def on_transfer_fail(external_userid: str, takeover_userid: str, fail_reason: str, at: datetime) -> bool:
    """transfer_fail callback: the waiting item of this customer to this takeover ends."""
    status = FAIL_REASON.get(fail_reason)
    if status is None:
        return False
    it = (
        HandoverItem.objects.select_for_update()
        .filter(external_userid=external_userid, takeover_userid=takeover_userid, status=HandoverItem.WAITING)
        .order_by("-id")
        .first()
    )
    if it is None:
        return False
    finish(it, status, at)
    return True


def carry_over_many(items: list[HandoverItem]) -> None:
    """The customers are the takeovers' now, in our records too (inside the caller's transaction):
    the customers app moves the relations, tags and timeline (``carry_over_relations``); the
    items of customers we hold are marked carried. WeCom's add_external_contact callback later
    re-reads the relation and corrects anything WeCom holds differently."""
    if not items:
        return
    now = timezone.now()
    carried = customer_services.carry_over_relations(
        [
            customer_services.CarryOver(
                external_userid=it.external_userid,
                handover_userid=it.handover_userid,
                takeover_id=it.takeover_id,
                at=it.finished_at or now,
                detail={
                    "by": "handover",
                    "handover_id": it.handover_id,
                    "kind": it.kind,
                    "from": it.handover_userid,
                    "to": it.takeover_userid,
                },
            )
            for it in items
        ]
    )
    done = [it for it in items if it.external_userid in carried]
    for it in done:
        it.carried = True
    HandoverItem.objects.filter(id__in=[it.id for it in done]).update(carried=True)


def org_ids(userids: Iterable[str]) -> dict[str, int]:
    return org_selectors.employee_ids(userids)


# --- the poll timer -----------------------------------------------------------------------------
POLL_KIND = "transfers.poll"
POLL_EVERY_S = 15 * 60


def ensure_poll_scheduled(delay_s: float | None = None) -> None:
    """One pending poll timer while anything is waiting (keyed, so at most one)."""
    if HandoverItem.objects.filter(status=HandoverItem.WAITING).exists():
        timers.schedule(
            POLL_KIND, timezone.now().timestamp() + (POLL_EVERY_S if delay_s is None else delay_s), key="transfers-poll"
        )


# --- churn ----------------------------------------------------------------------------------------
def churn_rule() -> ChurnRule:
    rule, _created = ChurnRule.objects.get_or_create(id=1)
    return rule


def set_churn_rule(*, mode: str, digest_hour: int) -> ChurnRule:
    """Change the one churn-alert rule (validated by ``forms.ChurnRuleForm``)."""
    rule = churn_rule()
    rule.mode, rule.digest_hour = mode, digest_hour
    rule.save(update_fields=["mode", "digest_hour", "updated_at"])
    return rule


def record_churn(kind: str, external_userid: str, userid: str, at: datetime) -> ChurnEvent | None:
    """A lost relation (inside the inbox row's transaction). Idempotent: the same event again is
    the same row. Returns the new row, None when it was already recorded."""
    emp = org_selectors.employee_by_userid(userid)
    rule = churn_rule()
    manager = org_selectors.manager_of(emp) if emp is not None else ""
    ev, created = ChurnEvent.objects.get_or_create(
        external_userid=external_userid,
        userid=userid,
        kind=kind,
        at=at,
        defaults=dict(
            customer_id=customer_selectors.customer_ids_by_external([external_userid]).get(external_userid),
            employee=emp,
            manager_userid=manager,
            mode=rule.mode,
            notify_status=(
                ChurnEvent.SKIPPED
                if rule.mode == ChurnRule.OFF
                else ChurnEvent.NO_MANAGER
                if not manager
                else ChurnEvent.PENDING
            ),
        ),
    )
    return ev if created else None


def _agent_id() -> int:
    return int(gateway.app().cfg.agent_id or 0)


def _claim(ids: list[int]) -> list[ChurnEvent]:
    """Take pending events for sending (committed before WeCom is asked): another worker running
    the same task finds them taken."""
    with transaction.atomic():
        rows = list(ChurnEvent.objects.select_for_update().filter(id__in=ids, notify_status=ChurnEvent.PENDING))
        ChurnEvent.objects.filter(id__in=[r.id for r in rows]).update(notify_status=ChurnEvent.SENDING)
    return rows


def _send(manager: str, content: str) -> str:
    """message/send of one text to one manager. WeCom's duplicate check (same content to the same
    member within the interval is not delivered again) covers a retry after a crash between the
    send and our record of it."""
    res = gateway.app().message.send(
        _agent_id(),
        [manager],
        msg={
            "msgtype": "text",
            "text": {"content": content},
            "enable_duplicate_check": 1,
            "duplicate_check_interval": 4 * 3600,
        },
    )
    return res.get("msgid") or ""


def _line(ev: ChurnEvent) -> str:
    cust = ev.customer.name if ev.customer_id and ev.customer else ev.external_userid
    who = ev.employee.name if ev.employee_id and ev.employee and ev.employee.name else ev.userid
    what = _("客户删除了员工") if ev.kind == ChurnEvent.BY_CUSTOMER else _("员工删除了客户")
    when = timezone.localtime(ev.at).strftime("%m-%d %H:%M")
    return _("%(when)s %(what)s：员工 %(who)s，客户 %(cust)s") % {"when": when, "what": what, "who": who, "cust": cust}


def notify(ids: list[int]) -> int:
    """Send the immediate alerts of these events, one message per event. Returns messages sent."""
    sent = 0
    for ev in _claim(ids):
        ev = ChurnEvent.objects.select_related("customer", "employee").get(id=ev.id)
        content = _("【客户流失提醒】") + _line(ev) + f" #{ev.id}"
        try:
            msgid = _send(ev.manager_userid, content)
        except WeComAPIError as e:
            logger.warning("churn alert %s to %s failed: %s", ev.id, ev.manager_userid, e)
            ChurnEvent.objects.filter(id=ev.id).update(notify_status=ChurnEvent.PENDING)
            continue
        ChurnEvent.objects.filter(id=ev.id).update(
            notify_status=ChurnEvent.SENT, notified_at=timezone.now(), msgid=msgid
        )
        sent += 1
    return sent


def send_digest() -> int:
    """Daily digest: one message per manager with every pending digest event. Returns messages."""
    pending = list(
        ChurnEvent.objects.filter(notify_status=ChurnEvent.PENDING, mode=ChurnRule.DIGEST).values_list("id", flat=True)
    )
    by_manager: dict[str, list[ChurnEvent]] = defaultdict(list)
    for ev in _claim(pending):
        by_manager[ev.manager_userid].append(ev)
    sent = 0
    for manager, evs in by_manager.items():
        evs = list(
            ChurnEvent.objects.filter(id__in=[e.id for e in evs])
            .select_related("customer", "employee")
            .order_by("at", "id")
        )
        lines = [_("【客户流失日报】共%(n)d条") % {"n": len(evs)}] + [_line(e) for e in evs[:50]]
        if len(evs) > 50:
            lines.append(_("……其余%(n)d条请在控制台查看") % {"n": len(evs) - 50})
        lines.append(f"#{min(e.id for e in evs)}-{max(e.id for e in evs)}")
        try:
            msgid = _send(manager, "\n".join(lines))
        except WeComAPIError as e:
            logger.warning("churn digest to %s failed: %s", manager, e)
            ChurnEvent.objects.filter(id__in=[e.id for e in evs]).update(notify_status=ChurnEvent.PENDING)
            continue
        ChurnEvent.objects.filter(id__in=[e.id for e in evs]).update(
            notify_status=ChurnEvent.SENT, notified_at=timezone.now(), msgid=msgid
        )
        sent += 1
    return sent


def import_churn_history(rows: Iterable[tuple[str, str, str, datetime]]) -> int:
    """Lost relations of the past, ``(kind, external_userid, userid, at)``, recorded in bulk as the
    del_follow_user / del_external_contact callbacks would have recorded them then, their managers
    told at the time (``siyu demo``'s history: nothing is sent now). Idempotent like
    ``record_churn``. Returns the number of new alerts."""
    rows = list(rows)
    if not rows:
        return 0
    emps = {u: e for u in {r[2] for r in rows} if (e := org_selectors.employee_by_userid(u)) is not None}
    managers = {u: org_selectors.manager_of(e) for u, e in emps.items()}
    customers = customer_selectors.customer_ids_by_external({r[1] for r in rows})
    rule = churn_rule()
    events = []
    for kind, ext, userid, at in rows:
        manager = managers.get(userid, "")
        events.append(
            ChurnEvent(
                kind=kind,
                customer_id=customers.get(ext),
                external_userid=ext,
                employee=emps.get(userid),
                userid=userid,
                at=at,
                manager_userid=manager,
                mode=rule.mode,
                notify_status=ChurnEvent.SENT if manager else ChurnEvent.NO_MANAGER,
                notified_at=at + timedelta(minutes=1) if manager else None,
            )
        )
    before = ChurnEvent.objects.count()
    ChurnEvent.objects.bulk_create(events, batch_size=500, ignore_conflicts=True)
    return ChurnEvent.objects.count() - before
