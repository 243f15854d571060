"""Customers, follow relations, corp tags and the timeline: keeping them in step with WeCom.

``fetch_*`` functions call WeCom and never write; the others write and never call WeCom (the
gateway rule: no WeCom call while a transaction holds the write lock).

Every write path is idempotent by state: rows are upserted on WeCom's ids, a status change is
applied only if it is a change, and timeline entries are derived from differences between what
was stored and what WeCom now says.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from siyu.accounts.selectors import DataScope
from siyu.core import bulk
from siyu.customers import selectors
from siyu.customers.models import (
    BulkTagJob,
    Customer,
    CustomerEvent,
    FollowRelation,
    FollowTag,
    Tag,
    TagGroup,
)
from siyu.org import selectors as org_selectors
from siyu.org import services as org_services
from siyu.wecom import gateway

logger = logging.getLogger("siyu.customers")

# a WeCom answer or row (JSON object), or a row of values read from the database
JSON = dict[str, Any]

# externalcontact/get errcodes meaning "nothing to read": 84061 no relation with any visible
# member, 40096 invalid external_userid, 41035 missing external_userid (part 1 §2.3).
NO_CUSTOMER = {84061, 40096, 41035}

CUSTOMER_FIELDS = [
    "name",
    "avatar",
    "type",
    "gender",
    "unionid",
    "position",
    "corp_name",
    "corp_full_name",
    "status",
    "first_added_at",
    "lost_at",
    "search_text",
    "updated_at",
]
RELATION_FIELDS = [
    "remark",
    "description",
    "remark_corp_name",
    "remark_mobiles",
    "add_way",
    "state",
    "oper_userid",
    "added_at",
    "status",
    "status_changed_at",
    "updated_at",
]
REMARK_FIELDS = ("remark", "description", "remark_corp_name", "remark_mobiles")
SEARCH_TEXT_MAX = 2000


def from_ts(value: int | str | None) -> datetime | None:
    """WeCom's unix seconds as an aware datetime (None for 0 / missing)."""
    try:
        return datetime.fromtimestamp(int(value), tz=UTC) if value else None
    except (TypeError, ValueError):
        return None


# --- reading WeCom ------------------------------------------------------------------------------
def fetch_customer(external_userid: str, client: gateway.WeComClient | None = None) -> JSON | None:
    """externalcontact/get with every page of follow_user, or None when there is no customer to
    read (no relation with a visible member any more)."""
    client = client or gateway.contact()
    detail: JSON | None = None
    cursor = ""
    while True:
        try:
            res = client.external_contact.get_detail(external_userid, cursor)
        except gateway.WeComAPIError as e:
            if detail is None and e.errcode in NO_CUSTOMER:
                return None
            raise
        if detail is None:
            detail = {"external_contact": res["external_contact"], "follow_user": []}
        detail["follow_user"].extend(res.get("follow_user") or [])
        cursor = res.get("next_cursor") or ""
        if not cursor:
            return detail


def rows_from_detail(detail: JSON) -> list[JSON]:
    """externalcontact/get's answer as batch/get_by_user rows ({external_contact, follow_info}),
    with corp and rule-group tag ids in ``tag_id`` and personal tags (no id) in ``personal_tags``."""
    contact = detail["external_contact"]
    rows = []
    for f in detail.get("follow_user") or []:
        tags = f.get("tags") or []
        follow = {k: v for k, v in f.items() if k != "tags"}
        follow["tag_id"] = [t["tag_id"] for t in tags if t.get("tag_id") and int(t.get("type") or 1) != 2]
        follow["personal_tags"] = [t.get("tag_name", "") for t in tags if int(t.get("type") or 1) == 2]
        rows.append({"external_contact": contact, "follow_info": follow})
    return rows


def fetch_tag_groups(
    tag_ids: list[str] | None = None, group_ids: list[str] | None = None, client: gateway.WeComClient | None = None
) -> list[JSON]:
    """get_corp_tag_list: every group (no filter), the groups of ``group_ids`` with all their tags,
    or the groups holding ``tag_ids`` with those tags."""
    client = client or gateway.contact()
    res = client.external_contact.get_corp_tags(tag_id=tag_ids or None, group_id=group_ids or None)
    return list(res.get("tag_group") or [])


def row_tag_ids(rows: Iterable[JSON]) -> set[str]:
    return {t for r in rows for t in (r["follow_info"].get("tag_id") or [])}


# --- tags ---------------------------------------------------------------------------------------
def known_tags(tag_ids: Iterable[str] | None = None) -> dict[str, tuple[int, str]]:
    """Live (not deleted) corp tags: WeCom tag id → (row id, name)."""
    qs = Tag.objects.filter(deleted=False)
    if tag_ids is not None:
        qs = qs.filter(tag_id__in=list(tag_ids))
    return {t: (pk, name) for t, pk, name in qs.values_list("tag_id", "id", "name")}


def _retire_tags(tag_pks: list[int]) -> int:
    """Mark tags deleted and take them off every relation (WeCom removes deleted tags from
    customers). No timeline entries: this is an admin change, not something done to a customer."""
    if not tag_pks:
        return 0
    n = Tag.objects.filter(id__in=tag_pks, deleted=False).update(deleted=True, updated_at=timezone.now())
    FollowTag.objects.filter(tag_id__in=tag_pks).delete()
    return n


def _retire_empty_groups() -> int:
    """WeCom deletes a group with its last tag (part 1 §3.4)."""
    live = Tag.objects.filter(deleted=False).values("group_id")
    return TagGroup.objects.filter(deleted=False).exclude(id__in=live).update(deleted=True, updated_at=timezone.now())


def apply_tag_groups(groups: list[JSON], full: bool = False, scope_group_ids: Iterable[str] | None = None) -> JSON:
    """Upsert tag groups and tags from get_corp_tag_list.

    ``full``: ``groups`` is every group, so anything missing was deleted in WeCom.
    ``scope_group_ids``: ``groups`` is a re-read of these groups, so their missing tags (and the
    groups themselves when missing) were deleted.
    """
    now = timezone.now()
    group_rows = {
        g["group_id"]: {
            "group_id": g["group_id"],
            "name": (g.get("group_name") or "")[:64],
            "order": int(g.get("order") or 0),
            "created_at": from_ts(g.get("create_time")),
            "strategy_id": g.get("strategy_id"),
            "deleted": bool(g.get("deleted")),
            "updated_at": now,
        }
        for g in groups
    }
    with transaction.atomic():
        group_pks = bulk.upsert_ids(
            TagGroup,
            list(group_rows.values()),
            key="group_id",
            update=["name", "order", "created_at", "strategy_id", "deleted", "updated_at"],
        )
        tag_rows = [
            {
                "tag_id": t["id"],
                "group_id": group_pks[g["group_id"]],
                "name": (t.get("name") or "")[:64],
                "order": int(t.get("order") or 0),
                "created_at": from_ts(t.get("create_time")),
                "deleted": False,
                "updated_at": now,
            }
            for g in groups
            for t in g.get("tag") or []
        ]
        # A tag deleted in WeCom comes back (as deleted) only on an explicit lookup: it is retired
        # below like any other stale tag, so its relations lose it too.
        gone = [t["id"] for g in groups for t in g.get("tag") or [] if t.get("deleted") or g.get("deleted")]
        bulk.upsert_ids(
            Tag, tag_rows, key="tag_id", update=["group", "name", "order", "created_at", "deleted", "updated_at"]
        )
        listed = [t["tag_id"] for t in tag_rows]
        stale = Tag.objects.filter(tag_id__in=gone)
        if full:
            stale = stale | Tag.objects.filter(deleted=False).exclude(tag_id__in=listed)
            TagGroup.objects.filter(deleted=False).exclude(group_id__in=list(group_rows)).update(
                deleted=True, updated_at=now
            )
        elif scope_group_ids:
            scope = list(scope_group_ids)
            stale = stale | Tag.objects.filter(deleted=False, group__group_id__in=scope).exclude(tag_id__in=listed)
            TagGroup.objects.filter(deleted=False, group_id__in=scope).exclude(group_id__in=list(group_rows)).update(
                deleted=True, updated_at=now
            )
        # tags whose group is deleted are deleted too
        stale = stale | Tag.objects.filter(deleted=False, group__deleted=True)
        retired = _retire_tags(list(stale.values_list("id", flat=True)))
        groups_retired = _retire_empty_groups()
    return {
        "tag_groups": len(group_rows),
        "tags": len(tag_rows),
        "tags_deleted": retired,
        "groups_deleted": groups_retired,
    }


def delete_tags(tag_ids: Iterable[str]) -> int:
    """change_external_tag delete (TagType tag)."""
    with transaction.atomic():
        n = _retire_tags(list(Tag.objects.filter(tag_id__in=list(tag_ids)).values_list("id", flat=True)))
        _retire_empty_groups()
    return n


def delete_tag_groups(group_ids: Iterable[str]) -> int:
    """change_external_tag delete (TagType tag_group): the group and all its tags."""
    group_ids = list(group_ids)
    with transaction.atomic():
        TagGroup.objects.filter(group_id__in=group_ids, deleted=False).update(deleted=True, updated_at=timezone.now())
        return _retire_tags(list(Tag.objects.filter(group__group_id__in=group_ids).values_list("id", flat=True)))


# --- customers and relations ---------------------------------------------------------------------
def _search_text(contact: JSON, rels: Iterable[JSON]) -> str:
    parts: list[str] = [contact.get("name") or "", contact.get("corp_name") or "", contact.get("corp_full_name") or ""]
    for r in rels:
        parts.append(r.get("remark") or "")
        parts.append(r.get("remark_corp_name") or "")
        parts.extend(str(m) for m in (r.get("remark_mobiles") or []))
    seen: dict[str, None] = {}
    for p in parts:
        p = p.strip().lower()
        if p:
            seen.setdefault(p, None)
    return " ".join(seen)[:SEARCH_TEXT_MAX]


def derive_customer(contact: JSON, rels: list[JSON]) -> JSON:
    """The customer's fields that follow from their relations: active while any relation is
    active; otherwise lost since the last relation was lost."""
    active = any(r["status"] == FollowRelation.ACTIVE for r in rels)
    added = [r["added_at"] for r in rels if r.get("added_at")]
    lost_at = None
    if rels and not active:
        lost_at = max((r.get("status_changed_at") or r["added_at"]) for r in rels)  # added_at: never null
    return {
        "status": Customer.ACTIVE if active or not rels else Customer.LOST,
        "first_added_at": min(added) if added else None,
        "lost_at": lost_at,
        "search_text": _search_text(contact, rels),
    }


def _contact_fields(c: JSON) -> JSON:
    return {
        "name": (c.get("name") or "")[:128],
        "avatar": (c.get("avatar") or "")[:512],
        "type": int(c.get("type") or 1),
        "gender": int(c.get("gender") or 0),
        "unionid": (c.get("unionid") or "")[:64],
        "position": (c.get("position") or "")[:64],
        "corp_name": (c.get("corp_name") or "")[:64],
        "corp_full_name": (c.get("corp_full_name") or "")[:128],
    }


def _follow_fields(f: JSON) -> JSON:
    mobiles = [str(m) for m in (f.get("remark_mobiles") or []) if str(m)]
    return {
        "remark": (f.get("remark") or "")[:64],
        "description": (f.get("description") or "")[:255],
        "remark_corp_name": (f.get("remark_corp_name") or f.get("remark_company") or "")[:64],
        "remark_mobiles": mobiles,
        "add_way": int(f.get("add_way") or 0),
        "state": (f.get("state") or "")[:64],
        "oper_userid": (f.get("oper_userid") or "")[:64],
    }


_REL_READ = (
    "id",
    "employee_id",
    "status",
    "added_at",
    "status_changed_at",
    "personal_tags",
    *REMARK_FIELDS,
    "customer__external_userid",
)


def write_follow_rows(  # noqa: C901 - one bulk pass over customers, relations and tags, in write order
    rows: list[JSON],
    *,
    source: str = "sync",
    employees: dict[str, int] | None = None,
    tags: dict[str, tuple[int, str]] | None = None,
    event_time: datetime | None = None,
    with_personal_tags: bool = False,
    event_times: dict[str, datetime] | None = None,
) -> JSON:
    """Upsert customers, relations and relation tags from WeCom rows (``{external_contact,
    follow_info}``: one per (customer, follower), as batch/get_by_user answers), in bulk.

    Timeline entries come from the differences with what was stored: a new relation is ``added``
    (at its createtime), a lost one seen again ``rejoined``, changed remarks ``remark_changed``,
    tag differences ``tagged`` / ``untagged``. ``employees`` and ``tags`` are caches (userid → id,
    tag id → (id, name)) that the full sync keeps across pages; tags WeCom names but we do not
    know (rule-group tags, or created a moment ago) are left out.

    ``event_times`` (external_userid → time) overrides ``event_time`` per customer: the inbox
    stores the re-reads of several callbacks in one call.

    Call inside a transaction (the caller commits the page together with its cursor).
    """
    stats = {"customers": 0, "relations": 0, "new_relations": 0, "events": 0, "tags_added": 0, "tags_removed": 0}
    if not rows:
        return stats
    now = timezone.now()
    default_at = event_time or now
    contacts: dict[str, JSON] = {}
    follows: dict[tuple[str, str], JSON] = {}
    for r in rows:
        contact, follow = r["external_contact"], r["follow_info"]
        contacts[contact["external_userid"]] = contact
        follows[(contact["external_userid"], follow["userid"])] = follow
    emp = org_services.ensure_employees({uid for _, uid in follows}, employees)

    # What is stored: every relation of these customers (their status derives from all of them)
    # and the tags of the relations on this page.
    by_customer: dict[str, dict[int, JSON]] = defaultdict(dict)
    for r in FollowRelation.objects.filter(customer__external_userid__in=list(contacts)).values(*_REL_READ):
        by_customer[r["customer__external_userid"]][r["employee_id"]] = r
    page_rel_ids = [by_customer[ext][emp[uid]]["id"] for ext, uid in follows if emp[uid] in by_customer.get(ext, {})]
    old_tags: dict[int, dict[int, int]] = defaultdict(dict)  # relation id → {tag row id: FollowTag id}
    for ft_id, rel_id, tag_pk in FollowTag.objects.filter(relation_id__in=page_rel_ids).values_list(
        "id", "relation_id", "tag_id"
    ):
        old_tags[rel_id][tag_pk] = ft_id
    tag_map = tags if tags is not None else {}
    unknown = row_tag_ids(rows).difference(tag_map)
    if unknown:
        tag_map.update(known_tags(unknown))

    relations: list[JSON] = []  # rows for the relation table, with "_ext", "_old" and "_tags"
    events: list[tuple[str, str, int, datetime, JSON]] = []  # (external_userid, kind, employee id, at, detail)
    for (ext, uid), f in follows.items():
        eid = emp[uid]
        at = event_times.get(ext, default_at) if event_times else default_at
        old = by_customer[ext].get(eid)
        values = _follow_fields(f)
        added_at = from_ts(f.get("createtime")) or (old["added_at"] if old else now)
        status, changed_at = FollowRelation.ACTIVE, None
        if old is None:
            changed_at = added_at
            events.append(
                (ext, CustomerEvent.ADDED, eid, added_at, {"state": values["state"], "add_way": values["add_way"]})
            )
        elif old["status"] == FollowRelation.ACTIVE:
            changed_at = old["status_changed_at"]
        elif old["status"] == FollowRelation.LOST_BY_CUSTOMER and old["added_at"] == added_at:
            # The customer deleted the employee: WeCom keeps listing the relation one-way with
            # its old createtime. Only a new createtime means they added each other again.
            status, changed_at = old["status"], old["status_changed_at"]
        else:
            changed_at = at
            events.append(
                (ext, CustomerEvent.REJOINED, eid, at, {"state": values["state"], "add_way": values["add_way"]})
            )
        if old is not None:
            diff = {k: [old[k], values[k]] for k in REMARK_FIELDS if old[k] != values[k]}
            if diff:
                events.append((ext, CustomerEvent.REMARK_CHANGED, eid, at, diff))
        row = {"employee": eid, "added_at": added_at, "status": status, "status_changed_at": changed_at, **values}
        by_customer[ext][eid] = row
        relations.append(
            {
                **row,
                "personal_tags": list(f.get("personal_tags") or [])
                if with_personal_tags
                else (old or {}).get("personal_tags", []),
                "_ext": ext,
                "_old": old,
                "_tags": {tag_map[t][0] for t in (f.get("tag_id") or []) if t in tag_map},
            }
        )

    customer_pks = bulk.upsert_ids(
        Customer,
        [
            {
                "external_userid": ext,
                **_contact_fields(c),
                **derive_customer(c, list(by_customer[ext].values())),
                "created_at": now,
                "updated_at": now,
            }
            for ext, c in contacts.items()
        ],
        key="external_userid",
        update=CUSTOMER_FIELDS,
    )
    fields = RELATION_FIELDS + (["personal_tags"] if with_personal_tags else [])
    rel_pks = bulk.upsert_ids(
        FollowRelation,
        [
            {
                "customer": customer_pks[r["_ext"]],
                **{k: v for k, v in r.items() if not k.startswith("_")},
                "created_at": now,
                "updated_at": now,
            }
            for r in relations
        ],
        key="customer",
        conflict=["customer", "employee"],
        update=fields,
    )

    names = {pk: name for pk, name in tag_map.values()}  # tag row id → name, for the timeline
    unnamed = {
        t
        for r in relations
        for t in old_tags.get(rel_pks[(customer_pks[r["_ext"]], r["employee"])], {})
        if t not in names
    }
    if unnamed:
        names.update(Tag.objects.filter(id__in=unnamed).values_list("id", "name"))
    add_tags: list[JSON] = []
    drop_tags: list[int] = []
    for r in relations:
        ext, cid, eid = r["_ext"], customer_pks[r["_ext"]], r["employee"]
        at = event_times.get(ext, default_at) if event_times else default_at
        rel_id = rel_pks[(cid, eid)]
        have = old_tags.get(rel_id, {})
        added = r["_tags"].difference(have)
        removed = set(have).difference(r["_tags"])
        add_tags.extend({"relation": rel_id, "tag": t, "customer": cid, "employee": eid} for t in added)
        drop_tags.extend(have[t] for t in removed)
        if r["_old"] is not None and added:
            events.append((ext, CustomerEvent.TAGGED, eid, at, {"tags": sorted(names[t] for t in added)}))
        if r["_old"] is not None and removed:
            events.append((ext, CustomerEvent.UNTAGGED, eid, at, {"tags": sorted(names.get(t, "") for t in removed)}))
    if drop_tags:
        FollowTag.objects.filter(id__in=drop_tags).delete()
    bulk.insert(FollowTag, add_tags, conflict=["relation", "tag"])
    bulk.insert(
        CustomerEvent,
        [
            {
                "customer": customer_pks[ext],
                "kind": kind,
                "employee": eid,
                "at": when,
                "detail": detail,
                "source": source,
                "created_at": now,
            }
            for ext, kind, eid, when, detail in events
        ],
    )
    stats.update(
        customers=len(contacts),
        relations=len(relations),
        new_relations=sum(1 for r in relations if r["_old"] is None),
        events=len(events),
        tags_added=len(add_tags),
        tags_removed=len(drop_tags),
    )
    return stats


def refresh_customers(customer_ids: Iterable[int]) -> int:
    """Recompute the derived fields (status, first_added_at, lost_at, search_text) of customers."""
    ids = list(set(customer_ids))
    if not ids:
        return 0
    rels: dict[int, list[JSON]] = defaultdict(list)
    for r in FollowRelation.objects.filter(customer_id__in=ids).values(
        "customer_id", "status", "added_at", "status_changed_at", *REMARK_FIELDS
    ):
        rels[r["customer_id"]].append(r)
    customers = list(Customer.objects.filter(id__in=ids).only("id", "name", "corp_name", "corp_full_name"))
    now = timezone.now()
    for c in customers:
        contact = {"name": c.name, "corp_name": c.corp_name, "corp_full_name": c.corp_full_name}
        for k, v in derive_customer(contact, rels.get(c.id, [])).items():
            setattr(c, k, v)
        c.updated_at = now
    Customer.objects.bulk_update(customers, ["status", "first_added_at", "lost_at", "search_text", "updated_at"])
    return len(customers)


def set_relation_status(
    external_userid: str, userid: str, status: str, at: datetime, source: str = "callback", detail: JSON | None = None
) -> bool:
    """A relation ended (del_external_contact, del_follow_user): set its status, add the timeline
    entry and update the customer. Applying the same event again changes nothing; an event older
    than the relation's last status change (a late retry) is ignored."""
    customer_id = _set_relation_status(external_userid, userid, status, at, source, detail)
    if customer_id is None:
        return False
    refresh_customers([customer_id])
    return True


def set_relation_statuses(rows: Iterable[tuple[str, str, str, datetime]], source: str = "history") -> int:
    """``set_relation_status`` for many ``(external_userid, userid, status, at)`` (an import of past
    events), the customers refreshed once at the end. Returns how many relations changed."""
    with transaction.atomic():
        changed = [_set_relation_status(ext, uid, status, at, source, None) for ext, uid, status, at in rows]
        ids = [c for c in changed if c is not None]
        refresh_customers(ids)
    return len(ids)


def _set_relation_status(
    external_userid: str, userid: str, status: str, at: datetime, source: str, detail: JSON | None
) -> int | None:
    """The relation's new status and its timeline entry; returns the customer's id to refresh
    (None: nothing changed)."""
    rel = (
        FollowRelation.objects.filter(customer__external_userid=external_userid, employee__userid=userid)
        .only("id", "customer_id", "employee_id", "status", "status_changed_at", "added_at")
        .first()
    )
    if rel is None or rel.status == status:
        return None
    last = rel.status_changed_at or rel.added_at
    if last and at < last:
        return None
    FollowRelation.objects.filter(id=rel.id).update(status=status, status_changed_at=at, updated_at=timezone.now())
    who: dict[str, str] = {
        FollowRelation.LOST_BY_CUSTOMER: "customer",
        FollowRelation.LOST_BY_EMPLOYEE: "employee",
        FollowRelation.TRANSFERRED: "transfer",
        FollowRelation.GONE: "sync",
    }
    by = who.get(status, status)
    kind = CustomerEvent.TRANSFERRED if status == FollowRelation.TRANSFERRED else CustomerEvent.LOST
    CustomerEvent.objects.create(
        customer_id=rel.customer_id,
        kind=kind,
        employee_id=rel.employee_id,
        at=at,
        detail={"by": by, **(detail or {})},
        source=source,
    )
    return int(rel.customer_id)


def record_transfer_failure(external_userid: str, takeover_userid: str, reason: str, at: datetime) -> bool:
    """transfer_fail: the takeover member did not get the customer (customer_refused /
    customer_limit_exceed). Kept on the timeline with the takeover member, which is what the
    transfer records will be matched on."""
    customer_id = Customer.objects.filter(external_userid=external_userid).values_list("id", flat=True).first()
    if customer_id is None:
        return False
    employee_id = org_services.ensure_employees([takeover_userid])[takeover_userid]
    _, created = CustomerEvent.objects.get_or_create(
        customer_id=customer_id,
        kind=CustomerEvent.TRANSFER_FAILED,
        employee_id=employee_id,
        at=at,
        defaults={"detail": {"reason": reason, "takeover_userid": takeover_userid}, "source": "callback"},
    )
    return created


@dataclass(frozen=True)
class CarryOver:
    """One customer handed over: from ``handover_userid``'s relation to the takeover's."""

    external_userid: str
    handover_userid: str
    takeover_id: int
    at: datetime
    detail: JSON  # the timeline entry's detail (who handed to whom, and why)


def carry_over_relations(moves: list[CarryOver]) -> set[str]:  # noqa: C901 - a few bulk statements in order, one per carried field set
    """The customers are the takeovers' now, in our records too (inside the caller's transaction):
    the handover's relation ends as transferred; the takeover's relation exists, active, with the
    old remark, description, company, mobiles and corp tags and add way 202 (管理员/负责人分配);
    the timeline says who handed to whom (the timeline is the customer's, so the history stays
    with them). Returns the external_userids carried over (the others are not customers here).

    A few bulk statements whatever the number of moves (bench/transfers.py hands over 1,000)."""
    if not moves:
        return set()
    cust = dict(
        Customer.objects.filter(external_userid__in=[m.external_userid for m in moves]).values_list(
            "external_userid", "id"
        )
    )
    moves = [m for m in moves if m.external_userid in cust]
    if not moves:
        return set()
    cids = [cust[m.external_userid] for m in moves]
    rels: dict[tuple[int, int | None], FollowRelation] = {
        (r.customer_id, r.employee_id): r for r in FollowRelation.objects.filter(customer_id__in=cids)
    }
    emp_ids = org_selectors.employee_ids({m.handover_userid for m in moves})
    now = timezone.now()
    create, update, transferred, tag_rows, events = [], [], [], [], []
    for m in moves:
        cid = cust[m.external_userid]
        at = m.at or now
        old = rels.get((cid, emp_ids.get(m.handover_userid)))
        new = rels.get((cid, m.takeover_id))
        fields = dict(
            status=FollowRelation.ACTIVE,
            status_changed_at=at,
            add_way=202,
            oper_userid=m.handover_userid,
            state="",
            added_at=at,
        )
        if old is not None:
            fields.update(
                remark=old.remark,
                description=old.description,
                remark_corp_name=old.remark_corp_name,
                remark_mobiles=list(old.remark_mobiles or []),
            )
        if new is None:
            new = FollowRelation(customer_id=cid, employee_id=m.takeover_id, **fields)
            create.append(new)
            rels[(cid, m.takeover_id)] = new
        elif new.status != FollowRelation.ACTIVE:
            for k, v in fields.items():
                setattr(new, k, v)
            update.append(new)
        elif old is not None and not new.remark and old.remark:
            new.remark = old.remark
            update.append(new)
        if old is not None:
            tag_rows.append((old.id, (cid, m.takeover_id)))
            if old.status == FollowRelation.ACTIVE:
                transferred.append(old.id)
        events.append(
            CustomerEvent(
                customer_id=cid,
                kind=CustomerEvent.TRANSFERRED,
                employee_id=m.takeover_id,
                at=at,
                source="callback",
                detail=m.detail,
            )
        )
    FollowRelation.objects.bulk_create(create, batch_size=500)
    if create:  # ids (SQLite and PostgreSQL return them; re-read to be backend-neutral)
        for r in FollowRelation.objects.filter(customer_id__in=[r.customer_id for r in create]):
            rels[(r.customer_id, r.employee_id)] = r
    for r in update:
        r.updated_at = now
    FollowRelation.objects.bulk_update(
        update,
        [
            "status",
            "status_changed_at",
            "add_way",
            "oper_userid",
            "state",
            "added_at",
            "remark",
            "description",
            "remark_corp_name",
            "remark_mobiles",
            "updated_at",
        ],
        batch_size=500,
    )
    old_tags: dict[int, list[int]] = defaultdict(list)
    for rel_id, tag_id in FollowTag.objects.filter(relation_id__in=[o for o, _k in tag_rows]).values_list(
        "relation_id", "tag_id"
    ):
        old_tags[rel_id].append(tag_id)
    FollowTag.objects.bulk_create(
        [
            FollowTag(relation_id=rels[key].id, tag_id=t, customer_id=key[0], employee_id=key[1])
            for o, key in tag_rows
            for t in old_tags.get(o, [])
        ],
        ignore_conflicts=True,
        batch_size=500,
    )
    FollowRelation.objects.filter(id__in=transferred).update(
        status=FollowRelation.TRANSFERRED, status_changed_at=now, updated_at=now
    )
    CustomerEvent.objects.bulk_create(events, batch_size=500)
    # A handed-over customer keeps an active relation, the same first add and the same remarks, so
    # its derived fields only need recomputing when it was not active (unusual: a stale record).
    Customer.objects.filter(id__in=cids).update(updated_at=now)
    refresh_customers(Customer.objects.filter(id__in=cids).exclude(status=Customer.ACTIVE).values_list("id", flat=True))
    return {m.external_userid for m in moves}


# Timeline entry kinds other apps write through ``record_events`` (groups: joins and leaves).
EVENT_GROUP_JOINED, EVENT_GROUP_LEFT = CustomerEvent.GROUP_JOINED, CustomerEvent.GROUP_LEFT


def record_events(events: Iterable[JSON]) -> int:
    """Add timeline entries written by other apps (groups): dicts of CustomerEvent fields."""
    now = timezone.now()
    rows = [
        {
            "customer_id": e["customer_id"],
            "kind": e["kind"],
            "employee_id": e.get("employee_id"),
            "at": e["at"],
            "detail": e.get("detail") or {},
            "source": e.get("source", "callback"),
            "created_at": now,
        }
        for e in events
    ]
    bulk.insert(CustomerEvent, rows)
    return len(rows)


def reconcile_relations(employee_ids: Iterable[int], before: datetime, chunk: int = 500) -> int:
    """After a complete full sync: relations of the synced followers that are active here but were
    not in WeCom's answers (not written since ``before``, the run's start) are gone."""
    now = timezone.now()
    rows = list(
        FollowRelation.objects.filter(
            status=FollowRelation.ACTIVE, employee_id__in=list(employee_ids), updated_at__lt=before
        )
        .order_by("id")
        .values_list("id", "customer_id", "employee_id")
    )
    for i in range(0, len(rows), chunk):
        part = rows[i : i + chunk]
        with transaction.atomic():
            FollowRelation.objects.filter(id__in=[r[0] for r in part], status=FollowRelation.ACTIVE).update(
                status=FollowRelation.GONE, status_changed_at=now, updated_at=now
            )
            CustomerEvent.objects.bulk_create(
                [
                    CustomerEvent(
                        customer_id=c,
                        kind=CustomerEvent.LOST,
                        employee_id=e,
                        at=now,
                        detail={"by": "sync"},
                        source="sync",
                    )
                    for _, c, e in part
                ]
            )
            refresh_customers(r[1] for r in part)
    return len(rows)


# --- console: bulk tag / untag -------------------------------------------------------------------
BULK_TAG_LIMIT = 500  # customers per bulk action: each relation is one mark_tag call, made in the request


@dataclass
class TagFailure:
    customer_id: int
    customer_name: str
    userid: str
    errcode: int | None
    errmsg: str


@dataclass
class BulkTagResult:
    relations: int = 0
    succeeded: int = 0
    customers: int = 0
    truncated: bool = False
    failures: list[TagFailure] = field(default_factory=list)


def bulk_mark_tags(
    relations: Iterable[FollowRelation],
    *,
    add_tag_pks: Iterable[int],
    remove_tag_pks: Iterable[int],
    operator: str = "",
) -> BulkTagResult:
    """Add / remove corp tags on follow relations: each (employee, customer) pair is written to
    WeCom with ``externalcontact/mark_tag`` (outside any transaction), then — because WeCom sends no
    callback for tag changes made through the API (part 1 §3.5) — recorded here with its timeline
    entry. A pair WeCom refuses is reported and left unchanged locally.

    ``relations``: FollowRelation rows (with ``customer`` and ``employee``) the caller has already
    scoped to the viewer."""
    tags = {t.id: t for t in Tag.objects.filter(id__in=set(add_tag_pks) | set(remove_tag_pks), deleted=False)}
    add = [tags[p] for p in dict.fromkeys(add_tag_pks) if p in tags]
    remove = [tags[p] for p in dict.fromkeys(remove_tag_pks) if p in tags and p not in {t.id for t in add}]
    result = BulkTagResult()
    if not add and not remove:
        return result
    client = gateway.contact()
    done: list[FollowRelation] = []
    for rel in relations:
        result.relations += 1
        try:
            client.external_contact.mark_tag(
                rel.employee.userid,
                rel.customer.external_userid,
                add_tag=[t.tag_id for t in add],
                remove_tag=[t.tag_id for t in remove],
            )
        except gateway.WeComAPIError as e:  # WeComUnavailable too: its text holds no URL or token
            result.failures.append(
                TagFailure(
                    rel.customer_id,
                    rel.customer.name,
                    rel.employee.userid,
                    e.errcode,
                    e.errmsg or "",
                )
            )
            continue
        done.append(rel)
    result.succeeded = len(done)
    result.customers = len({r.customer_id for r in done})
    if done:
        record_tag_changes(done, add, remove, operator=operator)
    return result


# More customers than BULK_TAG_LIMIT: a BulkTagJob the worker runs in batches of this many.
BULK_TAG_BATCH = 500
BULK_TAG_KEPT_FAILURES = 200  # failures listed on the page (all are counted)


def start_bulk_tag_job(
    scope: DataScope,
    filters: selectors.CustomerFilters,
    *,
    add_tag_pks: list[int],
    remove_tag_pks: list[int],
    total: int,
    user_id: int | None,
    operator: str = "",
) -> BulkTagJob:
    """Queue tagging every customer matching ``filters`` within ``scope`` (the worker runs it)."""
    job = BulkTagJob.objects.create(
        created_by_id=user_id,
        operator=operator,
        scope=selectors.scope_to_json(scope),
        filters=selectors.filters_to_json(filters),
        add_tags=list(add_tag_pks),
        remove_tags=list(remove_tag_pks),
        total=total,
    )
    # lazy: tasks.py imports this module (its task runs the job): a cycle inside the app
    from siyu.customers.tasks import run_bulk_tag_job as task

    transaction.on_commit(lambda: task.enqueue(job.id))
    return job


BULK_TAG_STALE_S = 600  # an unfinished job untouched this long lost its worker


def resume_bulk_tag_jobs() -> int:
    """At worker start: queue again the unfinished jobs nobody has advanced for a while (their
    worker was killed); each resumes after its cursor. Returns how many."""
    stale = timezone.now() - timedelta(seconds=BULK_TAG_STALE_S)
    ids = list(
        BulkTagJob.objects.filter(
            status__in=(BulkTagJob.Status.QUEUED, BulkTagJob.Status.RUNNING), updated_at__lt=stale
        ).values_list("id", flat=True)
    )
    # lazy: tasks.py imports this module (its task runs the job): a cycle inside the app
    from siyu.customers.tasks import run_bulk_tag_job as task

    for job_id in ids:
        BulkTagJob.objects.filter(id=job_id).update(updated_at=timezone.now())
        task.enqueue(job_id)
    return len(ids)


def run_bulk_tag_job(job_id: int) -> BulkTagJob | None:
    """Run (or resume after ``cursor``) a bulk-tag job: batch by batch, each written to WeCom
    (outside any transaction) and its progress saved."""
    job = BulkTagJob.objects.filter(id=job_id).first()
    if job is None or job.finished:
        return job
    scope = selectors.scope_from_json(job.scope)
    filters = selectors.filters_from_json(job.filters)
    BulkTagJob.objects.filter(id=job.id).update(status=BulkTagJob.Status.RUNNING)
    try:
        while True:
            ids = selectors.next_matching_ids(scope, filters, before=job.cursor, limit=BULK_TAG_BATCH)
            if not ids:
                break
            result = bulk_mark_tags(
                selectors.relations_for_tagging(scope, ids),
                add_tag_pks=job.add_tags,
                remove_tag_pks=job.remove_tags,
                operator=job.operator,
            )
            job.cursor = ids[-1]
            job.processed += len(ids)
            job.relations += result.relations
            job.succeeded += result.succeeded
            job.failure_count += len(result.failures)
            room = BULK_TAG_KEPT_FAILURES - len(job.failures)
            job.failures += [
                {"customer_name": f.customer_name, "userid": f.userid, "errcode": f.errcode, "errmsg": f.errmsg}
                for f in result.failures[: max(0, room)]
            ]
            job.total = max(job.total, job.processed)
            job.save(
                update_fields=[
                    "cursor",
                    "processed",
                    "relations",
                    "succeeded",
                    "failure_count",
                    "failures",
                    "total",
                    "updated_at",
                ]
            )
    except Exception as e:
        logger.exception("bulk tag job %s failed", job.id)
        BulkTagJob.objects.filter(id=job.id).update(
            status=BulkTagJob.Status.FAILED, error=type(e).__name__, finished_at=timezone.now()
        )
        raise
    job.status, job.finished_at, job.total = BulkTagJob.Status.DONE, timezone.now(), job.processed
    job.save(update_fields=["status", "finished_at", "total", "updated_at"])
    return job


def record_add_decoration(
    userid: str,
    external_userid: str,
    *,
    tag_ids: list[str],
    remark: str | None = None,
    description: str | None = None,
    operator: str = "",
) -> bool:
    """An add's tags and remark that WeCom accepted (channels' auto tags and remark templates),
    on our relation: the tags with their timeline entries, the remark / description when not
    None. False when the relation is not here (yet)."""
    rel = FollowRelation.objects.filter(employee__userid=userid, customer__external_userid=external_userid).first()
    if rel is None:
        return False
    if tag_ids:
        record_tag_changes([rel], list(Tag.objects.filter(tag_id__in=tag_ids, deleted=False)), [], operator=operator)
    fields = {k: v for k, v in (("remark", remark), ("description", description)) if v is not None}
    if fields:
        FollowRelation.objects.filter(id=rel.id).update(**fields)
    return True


def record_tag_changes(
    relations: Iterable[FollowRelation], add: list[Tag], remove: list[Tag], operator: str = "", chunk: int = 200
) -> None:
    """Apply tag changes WeCom accepted to the local rows, with ``tagged`` / ``untagged`` timeline
    entries for what actually changed (idempotent: re-applying changes nothing)."""
    now = timezone.now()
    add_ids = {t.id: t.name for t in add}
    remove_ids = {t.id: t.name for t in remove}
    rel_list = list(relations)
    for i in range(0, len(rel_list), chunk):
        part = rel_list[i : i + chunk]
        with transaction.atomic():
            have: dict[int, set[int]] = defaultdict(set)
            for rel_id, tag_id in FollowTag.objects.filter(
                relation_id__in=[r.id for r in part],
                tag_id__in=list(add_ids) + list(remove_ids),
            ).values_list("relation_id", "tag_id"):
                have[rel_id].add(tag_id)
            new_rows: list[FollowTag] = []
            events: list[CustomerEvent] = []
            touched: set[int] = set()
            for r in part:
                added = [t for t in add_ids if t not in have[r.id]]
                removed = [t for t in remove_ids if t in have[r.id]]
                new_rows.extend(
                    FollowTag(relation_id=r.id, tag_id=t, customer_id=r.customer_id, employee_id=r.employee_id)
                    for t in added
                )
                detail = {
                    "source": "console",
                    **({"operator": operator} if operator else {}),
                }
                for kind, changed, ids in (
                    (CustomerEvent.TAGGED, added, add_ids),
                    (CustomerEvent.UNTAGGED, removed, remove_ids),
                ):
                    if changed:
                        events.append(
                            CustomerEvent(
                                customer_id=r.customer_id,
                                kind=kind,
                                employee_id=r.employee_id,
                                at=now,
                                detail={"tags": sorted(ids[t] for t in changed), **detail},
                                source="console",
                            )
                        )
                if added or removed:
                    touched.add(r.customer_id)
            FollowTag.objects.bulk_create(new_rows, ignore_conflicts=True)
            if remove_ids:
                FollowTag.objects.filter(relation_id__in=[r.id for r in part], tag_id__in=list(remove_ids)).delete()
            CustomerEvent.objects.bulk_create(events)
            if touched:
                Customer.objects.filter(id__in=touched).update(updated_at=now)


REMARK_MAX = 20  # externalcontact/remark: remark at most 20 characters (part 1 §3.3)
DESCRIPTION_MAX = 150


def edit_remark(relation: FollowRelation, *, remark: str, description: str, operator: str = "") -> None:
    """Write the employee's remark and description of the customer to WeCom, then here, with a
    ``remark_changed`` timeline entry. ``ValueError`` for text over WeCom's limits; WeCom's own
    refusal is raised as ``gateway.WeComAPIError`` and nothing is changed here."""
    remark, description = remark.strip(), description.strip()
    if len(remark) > REMARK_MAX or len(description) > DESCRIPTION_MAX:
        raise ValueError("remark or description too long")
    diff = {
        k: [old, new]
        for k, old, new in (("remark", relation.remark, remark), ("description", relation.description, description))
        if old != new
    }
    if not diff:
        return
    gateway.contact().external_contact.remark(
        relation.employee.userid, relation.customer.external_userid, remark=remark, description=description
    )
    now = timezone.now()
    with transaction.atomic():
        FollowRelation.objects.filter(pk=relation.pk).update(remark=remark, description=description)
        CustomerEvent.objects.create(
            customer_id=relation.customer_id,
            kind=CustomerEvent.REMARK_CHANGED,
            employee_id=relation.employee_id,
            at=now,
            detail={**diff, **({"operator": operator} if operator else {})},
            source="console",
        )
        Customer.objects.filter(id=relation.customer_id).update(updated_at=now)
    relation.remark, relation.description = remark, description
