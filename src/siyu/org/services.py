"""Keeping the org in step with WeCom.

``fetch_*`` functions call WeCom and never write; the others write and never call WeCom, so a
caller can read first and then write in one short transaction (the gateway rule).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from siyu.org.models import Department, Employee, EmployeeDepartment
from siyu.wecom import gateway

logger = logging.getLogger("siyu.org")

WeComRow = dict[str, Any]  # a department or member as WeCom's JSON gives it

# errcodes of user/get that mean "no such member (any more)": 60111 not found, 40003 bad userid.
USER_GONE = {60111, 40003}
EMPLOYEE_FIELDS = [
    "name",
    "alias",
    "position",
    "mobile",
    "email",
    "gender",
    "avatar",
    "status",
    "main_department",
    "is_leader",
    "direct_leaders",
    "placeholder",
    "updated_at",
]


# --- reading WeCom ------------------------------------------------------------------------------
def fetch_departments(client: gateway.WeComClient | None = None) -> list[WeComRow]:
    """Every department in the app's visibility (department/list without id)."""
    client = client or gateway.contact()
    rows: list[WeComRow] = client.department.list()
    return rows


def fetch_follow_userids(client: gateway.WeComClient | None = None) -> list[str]:
    """Members with the customer-contact function (get_follow_user_list)."""
    client = client or gateway.contact()
    return list(client.external_contact.get_follow_user_list().get("follow_user", []))


def fetch_users(departments: list[WeComRow], client: gateway.WeComClient | None = None) -> list[WeComRow]:
    """Every visible member, with details.

    ``user/list`` of each top department with ``fetch_child=1``; WeCom refuses user/list to apps
    created after 2022-08-15 calling from new IPs (part 1 §1.5), so on an error the members are
    listed with ``user/list_id`` and read one by one with ``user/get``.
    """
    client = client or gateway.contact()
    ids = {d["id"] for d in departments}
    roots = sorted(d["id"] for d in departments if d.get("parentid") not in ids) or [1]
    try:
        users: dict[str, WeComRow] = {}
        for root in roots:
            for u in client.user.list(root, fetch_child=True):
                users[u["userid"]] = u
        return list(users.values())
    except gateway.WeComAPIError as e:
        logger.info("user/list refused (%s); listing members with user/list_id", e)
    userids: list[str] = []
    cursor = ""
    while True:
        res = client.post("user/list_id", data={"cursor": cursor, "limit": 10000})
        for row in res.get("dept_user", []):
            if row["userid"] not in userids:
                userids.append(row["userid"])
        cursor = res.get("next_cursor") or ""
        if not cursor:
            break
    return [u for u in (fetch_user(uid, client) for uid in userids) if u]


def fetch_user(userid: str, client: gateway.WeComClient | None = None) -> WeComRow | None:
    """One member (user/get), or None when WeCom no longer knows them."""
    client = client or gateway.contact()
    try:
        user: WeComRow = client.user.get(userid)
        return user
    except gateway.WeComAPIError as e:
        if e.errcode in USER_GONE:
            return None
        raise


# --- departments --------------------------------------------------------------------------------
def _with_paths(rows: dict[int, Department]) -> None:
    """Set parent, path and depth of every department in ``rows`` from the parentid links."""
    for dept in rows.values():
        chain: list[int] = []
        seen: set[int] = set()
        node: Department | None = dept
        while node is not None and node.id not in seen:
            seen.add(node.id)
            chain.append(node.id)
            node = rows.get(node.parentid)
        dept.parent_id = dept.parentid if dept.parentid in rows else None
        dept.path = "/" + "/".join(str(i) for i in reversed(chain)) + "/"
        dept.depth = len(chain) - 1


def apply_departments(data: list[WeComRow], full: bool = True) -> dict[str, int]:
    """Upsert departments from department/list. ``full``: ``data`` is the whole tree, so departments
    missing from it are deleted (WeCom only deletes empty departments). Paths are recomputed."""
    rows = {
        int(d["id"]): Department(
            id=int(d["id"]),
            name=d.get("name", "")[:64],
            name_en=(d.get("name_en") or "")[:64],
            parentid=int(d.get("parentid") or 0),
            order=int(d.get("order") or 0),
            leader_userids=list(d.get("department_leader") or []),
        )
        for d in data
    }
    if not full:
        for dept in Department.objects.exclude(id__in=rows):
            rows[dept.id] = dept
    _with_paths(rows)
    now = timezone.now()
    for dept in rows.values():
        dept.updated_at = now
    with transaction.atomic():
        Department.objects.bulk_create(
            list(rows.values()),
            update_conflicts=True,
            unique_fields=["id"],
            update_fields=[
                "name",
                "name_en",
                "parentid",
                "parent",
                "order",
                "path",
                "depth",
                "leader_userids",
                "updated_at",
            ],
        )
        deleted = 0
        if full:
            deleted, _ = Department.objects.exclude(id__in=list(rows)).delete()
    return {"departments": len(rows), "deleted": deleted}


# --- employees ----------------------------------------------------------------------------------
def _employee(u: WeComRow) -> Employee:
    leader_flags = list(u.get("is_leader_in_dept") or [])
    main = u.get("main_department") or (u.get("department") or [None])[0]
    return Employee(
        userid=u["userid"],
        name=(u.get("name") or "")[:64],
        alias=(u.get("alias") or "")[:64],
        position=(u.get("position") or "")[:128],
        mobile=(u.get("mobile") or "")[:32],
        email=(u.get("email") or "")[:128],
        gender=str(u.get("gender") or "0")[:1],
        avatar=(u.get("avatar") or "")[:512],
        status=int(u.get("status") or Employee.STATUS_ACTIVE),
        main_department_id=int(main) if main else None,
        is_leader=any(int(f or 0) for f in leader_flags) or bool(u.get("isleader")),
        direct_leaders=list(u.get("direct_leader") or []),
        placeholder=False,
        updated_at=timezone.now(),
    )


def apply_users(
    users: list[WeComRow], follow_userids: Iterable[str] | None = None, full: bool = False
) -> dict[str, int]:
    """Upsert members from user/list or user/get, with their departments.

    ``follow_userids``: the customer-contact members (None leaves ``contact_enabled`` as it is).
    ``full``: ``users`` is every visible member, so earlier members missing from it have left.
    """
    follow = set(follow_userids) if follow_userids is not None else None
    objs = [_employee(u) for u in users]
    fields = list(EMPLOYEE_FIELDS)
    if follow is not None:
        for e in objs:
            e.contact_enabled = e.userid in follow
        fields.append("contact_enabled")
    now = timezone.now()
    with transaction.atomic():
        Employee.objects.bulk_create(objs, update_conflicts=True, unique_fields=["userid"], update_fields=fields)
        ids = dict(Employee.objects.filter(userid__in=[e.userid for e in objs]).values_list("userid", "id"))
        # a member listed again is not resigned (any more)
        Employee.objects.filter(id__in=ids.values(), resigned_at__isnull=False).exclude(
            status=Employee.STATUS_LEFT
        ).update(resigned_at=None)
        EmployeeDepartment.objects.filter(employee_id__in=ids.values()).delete()
        memberships = []
        for u in users:
            depts = list(u.get("department") or [])
            leaders = list(u.get("is_leader_in_dept") or [])
            orders = list(u.get("order") or [])
            for i, dept in enumerate(depts):
                memberships.append(
                    EmployeeDepartment(
                        employee_id=ids[u["userid"]],
                        department_id=int(dept),
                        is_leader=bool(int(leaders[i] or 0)) if i < len(leaders) else False,
                        order=int(orders[i] or 0) if i < len(orders) else 0,
                    )
                )
        EmployeeDepartment.objects.bulk_create(memberships, ignore_conflicts=True)
        left = 0
        if full:
            left = (
                Employee.objects.exclude(id__in=ids.values())
                .exclude(status=Employee.STATUS_LEFT)
                .filter(placeholder=False)
                .update(status=Employee.STATUS_LEFT, resigned_at=now, contact_enabled=False, updated_at=now)
            )
        if follow is not None and full:
            Employee.objects.exclude(userid__in=follow).filter(contact_enabled=True).update(contact_enabled=False)
    return {"employees": len(objs), "left": left}


def ensure_employees(userids: Iterable[str], known: dict[str, int] | None = None) -> dict[str, int]:
    """Employee ids by userid, creating placeholder rows for userids not seen yet (a follower or a
    group owner read before the member was). ``known`` is a cache that is updated in place."""
    known = {} if known is None else known
    wanted = {u for u in userids if u}
    missing = [u for u in wanted if u not in known]
    if missing:
        found = dict(Employee.objects.filter(userid__in=missing).values_list("userid", "id"))
        new = [u for u in missing if u not in found]
        if new:
            Employee.objects.bulk_create(
                [Employee(userid=u, name=u, placeholder=True) for u in new], ignore_conflicts=True
            )
            found.update(Employee.objects.filter(userid__in=new).values_list("userid", "id"))
        known.update(found)
    return {u: known[u] for u in wanted}


def rename_employee(old_userid: str, new_userid: str) -> bool:
    """update_user with NewUserID: the member's userid changed; their history follows them.
    If a row for the new userid already exists (seen before this event), both stay and the old
    one is marked left by the next full sync."""
    if old_userid == new_userid or Employee.objects.filter(userid=new_userid).exists():
        return False
    return Employee.objects.filter(userid=old_userid).update(userid=new_userid, updated_at=timezone.now()) > 0


def resign_employee(userid: str, at: datetime | None = None) -> bool:
    """delete_user: the member left the corp. Their relations and groups are kept (they await a
    resigned transfer)."""
    at = at or timezone.now()
    return (
        Employee.objects.filter(userid=userid)
        .exclude(status=Employee.STATUS_LEFT)
        .update(status=Employee.STATUS_LEFT, resigned_at=at, contact_enabled=False, updated_at=timezone.now())
        > 0
    )
