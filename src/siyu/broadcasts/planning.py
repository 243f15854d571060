"""Recipient resolution, cap filtering and batching, as set-based SQL (a million rows in seconds).

``rows_sql`` yields the same rows for the estimate (aggregated) and for the plan (inserted, one
audience key range at a time, ``ON CONFLICT DO NOTHING`` on the per-broadcast unique target), so a
broadcast reaches exactly the targets its estimate named (if the world did not change in between).
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection, transaction

from siyu.broadcasts import audience as aud
from siyu.broadcasts import caps
from siyu.broadcasts.models import Batch, Broadcast, Recipient
from siyu.customers import selectors as customer_selectors
from siyu.groups import selectors as group_selectors
from siyu.org import selectors as org_selectors
from siyu.org.selectors import EmployeeStatus

MAX_CUSTOMERS_PER_CALL = 10_000  # add_msg_template doc 92135
MAX_CHATS_PER_CALL = 2_000


def _caps(kind: str, now: int) -> list[caps.Cap]:
    return [caps.mass_cap(kind, now)] if kind in ("single", "group") else caps.moment_caps(now)


# a condition that excludes a recipient: (SQL, its parameters, the reason stored)
PreCheck = tuple[str, list[object], str]


def _reason(pre: list[PreCheck], cap_list: list[caps.Cap], key_sql: str) -> tuple[str, list]:
    """A CASE naming the first rule that stops a target ('' = send): ``pre`` conditions, then each
    receive cap as one index probe into the receipts (kind, target, at)."""
    whens, params = [], []
    for cond, ps, reason in pre:
        whens.append(f"WHEN {cond} THEN %s")
        params += [*ps, reason]
    for c in cap_list:
        whens.append(
            f"WHEN (SELECT COUNT(*) FROM broadcasts_receipt x WHERE x.kind = %s AND x.target = {key_sql}"
            f" AND x.at >= %s AND x.at < %s) >= %s THEN %s"
        )
        params += [c.kind, c.start, c.end, c.limit, c.rule]
    return ("CASE " + " ".join(whens) + " ELSE '' END") if whens else "''", params


def rows_sql(b: Broadcast, lo: int | None = None, hi: int | None = None, now: int | None = None) -> tuple[str, list]:
    """SELECT c0 target, c1 customer_id, c2 group_id, c3 employee_id, c4 reason ('' = send) —
    one row per target. The reason is computed once per row: consumers read it from a derived
    table that is materialized, never re-expanded (SQLite would otherwise evaluate the receipts
    probe again for each reference to c4)."""
    now = int(now or time.time())
    scope = aud.scope_from_json(b.audience.get("scope"))
    a = aud.from_json(b.audience)
    senders = a.sender_ids(scope)
    inactive: list[PreCheck] = [("e.status <> %s", [EmployeeStatus.ACTIVE], "employee_inactive")]

    if b.kind == Broadcast.GROUP:
        qs = a.groups(scope)
        if lo is not None:
            qs = qs.filter(id__gt=lo, id__lte=hi)
        sub, sub_params = qs.values("id").query.sql_with_params()
        pre: list[PreCheck] = [
            ("g.status <> %s", ["active"], "dismissed"),
            ("g.owner_id IS NULL", [], "no_owner"),
            *inactive,
        ]
        r_sql, r_params = _reason(pre, _caps("group", now), "g.chat_id")
        inner = (
            f"SELECT g.chat_id AS c0, CAST(NULL AS BIGINT) AS c1, g.id AS c2, g.owner_id AS c3, {r_sql} AS c4"
            f" FROM groups_groupchat g LEFT JOIN org_employee e ON e.id = g.owner_id WHERE g.id IN ({sub})"
        )
        return inner, r_params + list(sub_params)

    ids = a.customer_ids(scope)
    moment = b.kind == Broadcast.MOMENT
    if not moment and not (ids.query.where or ids.query.is_empty()):
        ids = None  # "all customers" needs no membership test
    # Moments: the executors' own customers (active relations), the relation carrying any tag
    best = customer_selectors.audience_relations(
        ids,
        active_only=moment,
        tag_ids=a.tags if moment else None,
        employee_ids=sorted(senders) if senders is not None else None,
        lo=lo,
        hi=hi,
    )
    sub, sub_params = best.query.sql_with_params()
    kind = "moment" if moment else "single"
    active = customer_selectors.RelationStatus.ACTIVE
    pre = [("r.status <> %s", [active], "lost"), *inactive]
    r_sql, r_params = _reason(pre, _caps(kind, now), "c.external_userid")
    inner = (
        "SELECT c.external_userid AS c0, r.customer_id AS c1, CAST(NULL AS BIGINT) AS c2, r.employee_id AS c3,"
        f" {r_sql} AS c4"
        f" FROM customers_followrelation r JOIN customers_customer c ON c.id = r.customer_id"
        f" JOIN org_employee e ON e.id = r.employee_id WHERE r.id IN ({sub})"
    )
    return inner, r_params + list(sub_params)


def estimate(b: Broadcast) -> dict:
    """Recipients per employee, skips by reason (the rule named), before anything is written."""
    sql, params = rows_sql(b)
    with connection.cursor() as cur:
        cur.execute(f"SELECT s.c3, s.c4, COUNT(*) FROM ({sql}) s GROUP BY s.c3, s.c4", params)
        rows = [(emp, "skipped" if reason else "planned", reason, n) for emp, reason, n in cur.fetchall()]
    per_emp: dict[int, dict] = {}
    skipped: dict[str, int] = {}
    total = send = 0
    for emp, state, reason, n in rows:
        total += n
        e = per_emp.setdefault(emp, {"employee_id": emp, "recipients": 0, "skipped": 0})
        if state == "planned":
            send += n
            e["recipients"] += n
        else:
            skipped[reason] = skipped.get(reason, 0) + n
            e["skipped"] += n
    names = org_selectors.employee_names(per_emp)
    userids = org_selectors.employee_userids([k for k in per_emp if k])
    employees = sorted(per_emp.values(), key=lambda e: -e["recipients"])
    for e in employees:
        e["name"] = names.get(e["employee_id"], "")
        e["userid"] = userids.get(e["employee_id"], "")
    return {
        "total": total,
        "recipients": send,
        "skipped": skipped,
        "skipped_total": total - send,
        "employees": employees,
    }


def key_bounds(b: Broadcast) -> int:
    """The largest audience key (customer or group id) at planning time."""
    return group_selectors.max_group_id() if b.kind == Broadcast.GROUP else customer_selectors.max_customer_id()


def plan_step(b: Broadcast, hi_key: int, now: int, chunk: int | None = None) -> bool:
    """Plan the next key range (``chunk`` audience keys, settings.SIYU_BROADCAST_PLAN_CHUNK by
    default); the rows and the cursor commit together. False when done."""
    chunk = chunk or settings.SIYU_BROADCAST_PLAN_CHUNK
    lo = b.plan_cursor
    if lo >= hi_key:
        return False
    hi = min(lo + chunk, hi_key)
    sql, params = rows_sql(b, lo, hi, now=now)
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute(
                f"WITH s AS MATERIALIZED ({sql})"
                " INSERT INTO broadcasts_recipient"
                " (broadcast_id, target, customer_id, group_id, employee_id, state, reason)"
                " SELECT %s, s.c0, s.c1, s.c2, s.c3, CASE WHEN s.c4 = '' THEN %s ELSE %s END, s.c4 FROM s"
                " WHERE 1 = 1 ON CONFLICT DO NOTHING",
                [*params, b.id, Recipient.PLANNED, Recipient.SKIPPED],
            )
        Broadcast.objects.filter(id=b.id).update(plan_cursor=hi)
    b.plan_cursor = hi
    return True


def batch_all(b: Broadcast) -> int:
    """Cut each sender's planned rows (in id order) into batches of the per-call limit. A batch is
    an id range of one sender's rows, so a million rows need only their (sender, id) read, from
    the covering (broadcast, employee, id, state) index, and one Batch row per call written.
    Resumable: batches already made are kept; the rest is cut after them."""
    limit = MAX_CHATS_PER_CALL if b.kind == Broadcast.GROUP else MAX_CUSTOMERS_PER_CALL
    done_hi: dict[int, int] = {}
    seqs: dict[int, int] = {}
    for emp, seq, hi in Batch.objects.filter(broadcast=b).values_list("employee_id", "seq", "hi_id"):
        seqs[emp] = max(seqs.get(emp, -1), seq)
        done_hi[emp] = max(done_hi.get(emp, 0), hi or 0)
    with connection.cursor() as cur:
        cur.execute(
            "SELECT employee_id, id FROM broadcasts_recipient WHERE broadcast_id = %s AND state = %s"
            " ORDER BY employee_id, id",
            [b.id, Recipient.PLANNED],
        )
        rows = cur.fetchall()
    cuts = []  # (employee, lo_id, hi_id, size)
    i, n = 0, len(rows)
    while i < n:
        emp = rows[i][0]
        j = i
        while j < n and rows[j][0] == emp:  # this sender's rows: [i, j)
            j += 1
        k = i
        done = done_hi.get(emp, 0)
        while k < j and rows[k][1] <= done:
            k += 1
        for lo in range(k, j, limit):
            hi = min(lo + limit, j) - 1
            cuts.append((emp, rows[lo][1], rows[hi][1], hi - lo + 1))
        i = j
    del rows
    firsts = dict(Recipient.objects.filter(id__in=[c[1] for c in cuts]).values_list("id", "target")) if cuts else {}
    userids = org_selectors.employee_userids()
    new = []
    for emp, lo_id, hi_id, size in cuts:
        seq = seqs.get(emp, -1) + 1
        seqs[emp] = seq
        new.append(
            Batch(
                broadcast=b,
                employee_id=emp,
                userid=userids.get(emp, ""),
                seq=seq,
                size=size,
                first_target=firsts.get(lo_id, ""),
                lo_id=lo_id,
                hi_id=hi_id,
            )
        )
    with transaction.atomic():
        Batch.objects.bulk_create(new, batch_size=500)
    return len(new)
