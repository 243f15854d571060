"""Writes of guide tasks: rules, the morning's generation (and its preview), completion (by a send
from the sidebar, or marked done with an outcome), escalation of overdue tasks to the store
manager, and the guides' morning summary (a WeCom app message)."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.accounts.selectors import DataScope
from siyu.core import bulk
from siyu.guidetasks import engine
from siyu.guidetasks.models import FollowUp, Rule, Summary, Task
from siyu.org import selectors as org_selectors
from siyu.wecom import gateway

logger = logging.getLogger("siyu.guidetasks")

MAX_CAMPAIGN_CUSTOMERS = 200_000
MORNING = dt.time(6, 0)  # the day's rule tasks are made at 06:00 (local time)
SUMMARY_AT = dt.time(8, 30)  # and each guide is told at 08:30


class RuleError(ValueError):
    """A rule an operator cannot save as written; the text is for them."""


# --- rules ------------------------------------------------------------------------------------------------
@dataclass
class RuleInput:
    kind: str
    name: str
    params: dict[str, Any]
    script_id: int | None = None
    material_id: int | None = None
    due_hours: int = 24
    active: bool = True
    segment_id: int | None = None
    customer_ids: list[int] | None = None
    deadline: dt.datetime | None = None


def _check(d: RuleInput) -> None:  # noqa: C901 - one rule per kind's parameters
    if d.kind not in Rule.Kind.values:
        raise RuleError(_("未知的任务类型。"))
    if not d.name.strip():
        raise RuleError(_("名称不能为空。"))
    if not 1 <= d.due_hours <= 24 * 30:
        raise RuleError(_("完成时限须在 1 小时到 30 天之间。"))
    p = engine.params_of(d.kind, d.params)
    if d.kind == "browsed" and not 1 <= float(p["hours"]) <= 168:
        raise RuleError(_("浏览后等待时长须在 1 到 168 小时之间。"))
    if d.kind == "repurchase" and not 0.3 <= float(p["fraction"]) <= 1.0:
        raise RuleError(_("复购提醒时点须在复购周期的 30% 到 100% 之间。"))
    if d.kind in ("birthday", "points") and not 0 <= int(p["days_before"]) <= 60:
        raise RuleError(_("提前天数须在 0 到 60 天之间。"))
    if d.kind == "dormant" and not 7 <= int(p["days"]) <= 730:
        raise RuleError(_("沉睡天数须在 7 到 730 天之间。"))
    if d.kind == "newcomer" and not (p["days"] and all(1 <= int(x) <= 60 for x in p["days"])):
        raise RuleError(_("新客跟进日须为 1 到 60 天之间的整数。"))
    if d.kind == "campaign":
        if not d.segment_id and not d.customer_ids:
            raise RuleError(_("运营任务须选择客户分群或客户。"))
        if d.customer_ids and len(d.customer_ids) > MAX_CAMPAIGN_CUSTOMERS:
            raise RuleError(_("一次最多 %(n)d 位客户。") % {"n": MAX_CAMPAIGN_CUSTOMERS})
        if d.deadline is None or d.deadline <= timezone.now():
            raise RuleError(_("截止时间须晚于现在。"))


def save_rule(d: RuleInput, *, rule: Rule | None = None, operator: str = "", department_id: int | None = None) -> Rule:
    _check(d)
    r = rule or Rule(created_by=operator[:150], department_id=department_id)
    r.kind, r.name, r.active = d.kind, d.name.strip()[:64], d.active
    r.params = {k: v for k, v in engine.params_of(d.kind, d.params).items() if k in engine.DEFAULTS.get(d.kind, {})}
    r.script_id, r.material_id, r.due_hours = d.script_id, d.material_id, d.due_hours
    r.segment_id = d.segment_id if d.kind == "campaign" else None
    r.customer_ids = sorted(set(d.customer_ids or [])) if d.kind == "campaign" else []
    r.deadline = d.deadline if d.kind == "campaign" else None
    r.save()
    return r


def delete_rule(rule: Rule) -> None:
    """The rule and its open tasks go; done tasks stay in the guides' results."""
    with transaction.atomic():
        Task.objects.filter(rule=rule, status=Task.Status.OPEN).update(status=Task.Status.CANCELLED)
        rule.active = False
        rule.save(update_fields=["active"])


# --- generation -----------------------------------------------------------------------------------------------
@dataclass
class Planned:
    rule: Rule
    customers: list[int]
    periods: list[str]
    guides: list[tuple[str, int | None]]


def _scope_of(rule: Rule) -> DataScope:
    if rule.department_id is not None:
        return DataScope(department_id=rule.department_id)
    return DataScope(everything=True)


def _plan(rule: Rule, now: dt.datetime, audience: engine.Audience, metrics: Any) -> Planned:
    p = engine.params_of(rule.kind, rule.params)
    found = {
        "browsed": lambda: engine.browsed(now, p),
        "repurchase": lambda: engine.repurchase(now, p, metrics()),
        "birthday": lambda: engine.birthday(now, p),
        "points": lambda: engine.points(now, p),
        "dormant": lambda: engine.dormant(now, p, metrics()),
        "newcomer": lambda: engine.newcomer(now, p),
        "followup": lambda: engine.followups(now),
        "campaign": lambda: engine.campaign(rule, _scope_of(rule)),
    }[rule.kind]()
    customers, periods = audience.customers_of(found.persons, found.person_periods)
    employees = [-1] * len(customers)
    customers += found.customers
    periods += found.customer_periods
    employees += found.customer_employees
    allowed: set[int] | None = None
    local: dict[int, int] = {}
    if rule.department_id is not None:
        allowed = org_selectors.employee_ids_in_subtree(rule.department_id)
        local = audience.guides_among(allowed)
    out = Planned(rule, [], [], [])
    seen: set[tuple[int, str]] = set()
    for cid, period, eid in zip(customers, periods, employees, strict=True):
        if (cid, period) in seen:
            continue
        if allowed is not None:
            eid = local.get(cid, -1) if eid < 0 else eid
            if eid not in allowed:
                continue
        guide = audience.guide_of(cid, eid)
        if guide is None:  # no active relation: nobody to ask
            continue
        seen.add((cid, period))
        out.customers.append(cid)
        out.periods.append(period)
        out.guides.append(guide)
    return out


def _metrics_once() -> Any:
    """The metrics arrays, read on first use and then shared by the rules of one run."""
    return functools.cache(engine.metrics_arrays)


def _rules(rule_ids: list[int] | None, kinds: tuple[str, ...] | None = None) -> list[Rule]:
    qs = Rule.objects.filter(active=True)
    if rule_ids is not None:
        qs = qs.filter(id__in=rule_ids)
    if kinds is not None:
        qs = qs.filter(kind__in=kinds)
    return list(qs.order_by("id"))


def preview(rule: Rule, now: dt.datetime | None = None) -> dict[str, Any]:
    """What the rule would make at ``now`` (default: tomorrow morning): new tasks per guide (names)
    and in all, leaving out tasks that already exist."""
    now = now or next_morning()
    planned = _plan(rule, now, engine.Audience(), _metrics_once())
    existing = set(
        Task.objects.filter(rule=rule, customer_id__in=planned.customers).values_list("customer_id", "period")
    )
    per_guide: Counter[str] = Counter(
        g[0]
        for c, p, g in zip(planned.customers, planned.periods, planned.guides, strict=True)
        if (c, p) not in existing
    )
    names = org_selectors.names_by_userid(per_guide)
    return {
        "at": now,
        "total": sum(per_guide.values()),
        "guides": len(per_guide),
        "per_guide": [{"userid": u, "name": names.get(u) or u, "n": n} for u, n in per_guide.most_common(20)],
    }


def generate(now: dt.datetime | None = None, rule_ids: list[int] | None = None) -> dict[int, int]:
    """Make the tasks the active rules select at ``now``: at most one per (rule, customer, period),
    however often this runs. Returns the tasks made per rule."""
    now = now or timezone.now()
    rules = _rules(rule_ids)
    if not rules:
        return {}
    audience = engine.Audience()
    metrics = _metrics_once()
    made: dict[int, int] = {}
    for rule in rules:
        planned = _plan(rule, now, audience, metrics)
        due = rule.deadline if rule.kind == "campaign" and rule.deadline else now + dt.timedelta(hours=rule.due_hours)
        rows = [
            {
                "rule": rule.id,
                "period": period,
                "customer_id": cid,
                "employee_userid": guide[0],
                "department_id": guide[1],
                "created_at": now,
                "due_at": due,
                "status": Task.Status.OPEN,
                "outcome": "",
                "note": "",
            }
            for cid, period, guide in zip(planned.customers, planned.periods, planned.guides, strict=True)
        ]
        created = 0
        with transaction.atomic():
            for i in range(0, len(rows), 5000):
                created += len(
                    bulk.insert(Task, rows[i : i + 5000], conflict=("rule", "customer_id", "period"), returning=("id",))
                )
            Rule.objects.filter(id=rule.id).update(last_run_at=now, last_run_created=created)
        made[rule.id] = created
        logger.info("rule %s (%s): %d tasks made of %d selected", rule.id, rule.kind, created, len(rows))
    return made


def next_morning(after: dt.datetime | None = None) -> dt.datetime:
    local = timezone.localtime(after or timezone.now())
    day = local.date() if local.time() < MORNING else local.date() + dt.timedelta(days=1)
    return timezone.make_aware(dt.datetime.combine(day, MORNING))


# --- completion ---------------------------------------------------------------------------------------------
def complete_by_send(
    *, userid: str, customer_id: int | None, item: str, item_id: int, chat_type: str, chat_key: str
) -> int:
    """A guide sent a script or material into a customer's chat: their open tasks for that customer
    whose suggested content it was (or that suggest nothing in particular) are done."""
    if chat_type != "single" or customer_id is None:
        return 0
    now = timezone.now()
    qs = Task.objects.filter(employee_userid=userid, customer_id=customer_id, status=Task.Status.OPEN)
    ids = []
    for t in qs.select_related("rule"):
        r = t.rule
        suggests_nothing = r.script_id is None and r.material_id is None
        suggested = r.script_id if item == "script" else r.material_id
        if suggests_nothing or suggested == item_id:
            ids.append(t.id)
    return Task.objects.filter(id__in=ids, status=Task.Status.OPEN).update(
        status=Task.Status.DONE, outcome=Task.Outcome.SENT, done_at=now
    )


class TaskError(ValueError):
    pass


def mark_done(task: Task, *, userid: str, outcome: str, note: str = "") -> Task:
    if task.employee_userid != userid:
        raise TaskError(_("这不是你的任务。"))
    if outcome not in Task.Outcome.values or outcome == Task.Outcome.SENT:
        raise TaskError(_("请选择跟进结果。"))
    if task.status != Task.Status.OPEN:
        raise TaskError(_("任务已完成或已取消。"))
    Task.objects.filter(id=task.id, status=Task.Status.OPEN).update(
        status=Task.Status.DONE, outcome=outcome, note=note.strip()[:200], done_at=timezone.now()
    )
    task.refresh_from_db()
    return task


# --- the guides' morning, escalation ----------------------------------------------------------------------------
def _agent_id() -> int:
    return int(gateway.app().cfg.agent_id or 0)


def _public_url(path: str) -> str:
    return settings.SIYU_PUBLIC_URL.rstrip("/") + path


def send_summaries(day: dt.date | None = None) -> int:
    """Each guide with open tasks gets one textcard for the day (not twice: ``Summary``)."""
    day = day or timezone.localdate()
    now = timezone.now()
    per_guide: dict[str, Counter[str]] = defaultdict(Counter)
    overdue: Counter[str] = Counter()
    names = dict(Rule.objects.values_list("id", "name"))
    for userid, rule_id, due_at in Task.objects.filter(status=Task.Status.OPEN).values_list(
        "employee_userid", "rule_id", "due_at"
    ):
        per_guide[userid][names.get(rule_id, "")] += 1
        if due_at < now:
            overdue[userid] += 1
    sent = 0
    for userid, counts in per_guide.items():
        summary, created = Summary.objects.get_or_create(
            employee_userid=userid, day=day, defaults={"open_tasks": sum(counts.values())}
        )
        if not created and summary.sent_at is not None:
            continue
        lines = "".join(f'<div class="normal">{name}：{n}</div>' for name, n in counts.most_common(6))
        if overdue[userid]:
            lines += '<div class="highlight">' + _("已逾期：%(n)d 项") % {"n": overdue[userid]} + "</div>"
        card = {
            "title": _("今日导购任务 %(n)d 项") % {"n": sum(counts.values())},
            "description": f'<div class="gray">{day.isoformat()}</div>{lines}',
            "url": _public_url("/sidebar/tasks/"),
            "btntxt": _("去完成"),
        }
        try:
            gateway.app().message.send(
                _agent_id(),
                [userid],
                msg={
                    "msgtype": "textcard",
                    "textcard": card,
                    "enable_duplicate_check": 1,
                    "duplicate_check_interval": 14400,
                },
            )
        except gateway.WeComAPIError as e:
            Summary.objects.filter(id=summary.id).update(error=gateway.error_text(e)[:255])
            logger.warning("morning summary to %s failed: %s", userid, gateway.redact(e))
            continue
        Summary.objects.filter(id=summary.id).update(sent_at=timezone.now(), error="")
        sent += 1
    return sent


def escalate_overdue(now: dt.datetime | None = None) -> int:
    """Overdue open tasks go to the guide's store manager (one message per manager and run, listing
    the guides and counts); each task is escalated once."""
    now = now or timezone.now()
    rows = list(
        Task.objects.filter(status=Task.Status.OPEN, due_at__lt=now, escalated_at__isnull=True).values_list(
            "id", "employee_userid"
        )[:50_000]
    )
    if not rows:
        return 0
    by_guide: dict[str, list[int]] = defaultdict(list)
    for tid, userid in rows:
        by_guide[userid].append(tid)
    by_manager: dict[str, list[str]] = defaultdict(list)
    for userid in by_guide:
        employee = org_selectors.employee_by_userid(userid)
        manager = org_selectors.manager_of(employee) if employee is not None else ""
        if manager:
            by_manager[manager].append(userid)
    names = org_selectors.names_by_userid(by_guide)
    for manager, guides in by_manager.items():
        text = _("【导购任务逾期】") + "；".join(
            _("%(name)s %(n)d 项") % {"name": names.get(g) or g, "n": len(by_guide[g])} for g in guides
        )
        try:
            gateway.app().message.send(_agent_id(), [manager], msg={"msgtype": "text", "text": {"content": text}})
        except gateway.WeComAPIError as e:
            logger.warning("escalation to %s failed: %s", manager, gateway.redact(e))
            continue
        done = [t for g in guides for t in by_guide[g]]
        Task.objects.filter(id__in=done).update(escalated_at=now)
    return sum(len(by_guide[g]) for guides in by_manager.values() for g in guides)


# --- follow-up records ----------------------------------------------------------------------------------------
FOLLOWUP_RULE_NAME = "跟进提醒"


def followup_rule() -> Rule:
    """The built-in rule that turns follow-up records' next contacts into tasks."""
    rule = Rule.objects.filter(kind=Rule.Kind.FOLLOWUP).order_by("id").first()
    if rule is None:
        rule = Rule.objects.create(kind=Rule.Kind.FOLLOWUP, name=FOLLOWUP_RULE_NAME, params={}, due_hours=24)
    return rule


def add_followup(*, customer_id: int, userid: str, text: str, next_at: dt.date | None = None) -> FollowUp:
    """A guide's follow-up record; with ``next_at``, a task on that morning (made by the run, or
    now if that day is today)."""
    text = text.strip()
    if not text:
        raise TaskError(_("请填写跟进内容。"))
    if len(text) > 500:
        raise TaskError(_("跟进内容最多 500 字。"))
    today = timezone.localdate()
    if next_at is not None and not today <= next_at <= today + dt.timedelta(days=366):
        raise TaskError(_("下次联系日期须在今天到一年之内。"))
    employee = org_selectors.employee_by_userid(userid)
    if employee is None:
        raise TaskError(_("你的企业微信账号尚未同步，请稍后再试。"))
    f = FollowUp.objects.create(
        customer_id=customer_id,
        employee_id=employee.id,
        employee_userid=userid,
        text=text,
        next_at=next_at,
        created_at=timezone.now(),
    )
    rule = followup_rule()
    if next_at == today and rule.active:
        generate(rule_ids=[rule.id])
    return f
