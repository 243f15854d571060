"""Control actions that change the org and the population, with the callbacks WeCom sends.

Org changes made in the WeCom admin console reach apps as ``change_contact`` events
(通讯录回调通知; part 3 §2.4): ``create_user`` / ``update_user`` (only the changed fields, plus
``NewUserID`` when the userid changed) / ``delete_user``, and ``create_party`` /
``update_party`` / ``delete_party``. The actions here play the admin:

- ``employee/create|update|delete|resign|set`` and ``department/create|update|delete``;
- ``seed`` (rebuild the world), ``world/sample`` (real ids for tests and benchmarks) and
  ``customer/new`` (WeChat users who are nobody's customer yet, ready to scan a contact way).
"""

from __future__ import annotations

import random
import secrets
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Count

from siyu.wecom_sim import callbacks, clock, schemas, world
from siyu.wecom_sim.control import ControlError, action
from siyu.wecom_sim.endpoints.org import dept_subtree
from siyu.wecom_sim.models import (
    Department,
    ExternalContact,
    Follow,
    GroupChat,
    GroupMember,
    SimState,
    Tag,
    TagGroup,
    User,
)

# Member fields of change_contact/create_user and update_user, in the sample's order (part 3 §2.4),
# with the model attribute each comes from.
USER_EVENT_FIELDS = (
    ("Name", "name"),
    ("Department", "department"),
    ("MainDepartment", "main_department"),
    ("IsLeaderInDept", "is_leader_in_dept"),
    ("Position", "position"),
    ("Mobile", "mobile"),
    ("Gender", "gender"),
    ("Email", "email"),
    ("Status", "status"),
    ("Avatar", "avatar"),
    ("Alias", "alias"),
)
EDITABLE = (
    "name",
    "department",
    "main_department",
    "is_leader_in_dept",
    "direct_leader",
    "position",
    "mobile",
    "gender",
    "email",
    "avatar",
    "alias",
    "status",
)


def _event_value(attr: str, value: Any) -> Any:
    if attr in ("department", "is_leader_in_dept"):
        return ",".join(str(int(v)) for v in value)  # "1,2,3" / "1,0,0"
    if attr in ("main_department", "status"):
        return int(value)
    if attr == "gender":
        return int(value or 0)
    return value or ""


def _get_user(userid: Any, allow_left: bool = False) -> User:
    if not userid or not isinstance(userid, str):
        raise ControlError("userid is required")
    user = User.objects.filter(userid__iexact=userid).first()
    if user is None or (user.status == User.STATUS_LEFT and not allow_left):
        raise ControlError(f"60111 userid not found: {userid}")
    return user


def _check_departments(ids: Any) -> list[int]:
    if not isinstance(ids, list) or not ids:
        raise ControlError("department must be a non-empty list of department ids")
    try:
        ids = [int(i) for i in ids]
    except (TypeError, ValueError):
        raise ControlError("department must be a list of integers") from None
    if len(ids) > 100:  # user/create doc: at most 100 departments
        raise ControlError("60123 at most 100 departments")
    known = set(Department.objects.filter(id__in=ids).values_list("id", flat=True))
    missing = [i for i in ids if i not in known]
    if missing:
        raise ControlError(f"60123 invalid party id: {missing}")
    return ids


def _apply_fields(user: User, body: dict) -> None:  # noqa: C901 - one branch per editable member field
    """Validate and set the editable member fields present in ``body``."""
    if "department" in body:
        user.department = _check_departments(body["department"])
        if "is_leader_in_dept" not in body:
            user.is_leader_in_dept = [0] * len(user.department)
        if "main_department" not in body and user.main_department not in user.department:
            user.main_department = user.department[0]
    if "is_leader_in_dept" in body:
        flags = body["is_leader_in_dept"]
        if not isinstance(flags, list) or len(flags) != len(user.department) or any(f not in (0, 1) for f in flags):
            raise ControlError("is_leader_in_dept must be 0/1 flags parallel to department")
        user.is_leader_in_dept = [int(f) for f in flags]
    if "main_department" in body:
        main = int(body["main_department"])
        if main not in user.department:
            raise ControlError("main_department must be one of department")
        user.main_department = main
    if "name" in body:
        name = body["name"]
        if not isinstance(name, str) or not 1 <= len(name) <= 64:  # user/create: 1..64 characters
            raise ControlError("name must be 1..64 characters")
        user.name = name
    if "gender" in body:
        g = str(body["gender"])
        if g not in ("0", "1", "2"):
            raise ControlError('gender must be "0", "1" or "2"')
        user.gender = g
    if "status" in body:
        s = int(body["status"])
        if s not in (User.STATUS_ACTIVE, User.STATUS_DISABLED, User.STATUS_INACTIVE):
            raise ControlError("status must be 1 (active), 2 (disabled) or 4 (not activated); use employee/resign")
        user.status = s
    if "direct_leader" in body:
        leaders = body["direct_leader"] or []
        if not isinstance(leaders, list) or len(leaders) > 1:  # user/create: at most 1 direct leader
            raise ControlError("direct_leader must be a list of at most one userid")
        user.direct_leader = leaders
    for attr, limit in (("position", 128), ("mobile", 32), ("email", 64), ("avatar", 255), ("alias", 64)):
        if attr in body:
            value = body[attr] or ""
            if not isinstance(value, str) or len(value) > limit:
                raise ControlError(f"{attr} must be a string of at most {limit} characters")
            setattr(user, attr, value)
    if "contact_enabled" in body:
        user.contact_enabled = bool(body["contact_enabled"])


def _sync_leaders(user: User, old_userid: str | None = None) -> None:
    """Keep Department.department_leader in step with the member's is_leader_in_dept flags."""
    lead = (
        {d for d, f in zip(user.department, user.is_leader_in_dept, strict=False) if f}
        if user.status != User.STATUS_LEFT
        else set()
    )
    names = {user.userid} | ({old_userid} if old_userid else set())
    for dept in Department.objects.all():
        leaders = [u for u in dept.department_leader if u not in names]
        if dept.id in lead:
            leaders.append(user.userid)
        if leaders != dept.department_leader:
            dept.department_leader = leaders
            dept.save(update_fields=["department_leader"])


def _userid_from_name(name: str) -> str:
    pinyin = {c: p for c, p in world.SURNAMES + world.GIVEN_F + world.GIVEN_M}
    if name and all(c in pinyin for c in name):
        base = "".join(pinyin[c] for c in name)
    else:
        base = f"user{secrets.randbelow(10**6):06d}"
    uid, k = base, 1
    while User.objects.filter(userid__iexact=uid).exists():
        k += 1
        uid = f"{base}{k}"
    return uid


# --- employees ---------------------------------------------------------------------------------------
@action("employee/create", schemas.EmployeeCreate)
def employee_create(body: dict) -> dict:
    """Add a member as the admin would: {userid?, name, department?, position?, mobile?, gender?, ...}."""
    name = body.get("name")
    if not name:
        raise ControlError("name is required")
    userid = body.get("userid") or _userid_from_name(name)
    if not isinstance(userid, str) or not 1 <= len(userid.encode()) <= 64:
        raise ControlError("40003 userid must be 1..64 bytes")
    if User.objects.filter(userid__iexact=userid).exists():
        raise ControlError(f"60102 userid existed: {userid}")
    rng = random.Random(secrets.randbits(64))
    user = User(
        userid=userid,
        name=name,
        department=[1],
        main_department=1,
        is_leader_in_dept=[0],
        avatar=world._employee_avatar(rng),
    )
    body = dict(body)
    body.setdefault("department", [1])
    _apply_fields(user, body)
    for attr in ("customer_cap", "console_welcome"):
        if attr in body:
            setattr(user, attr, int(body[attr]) if attr == "customer_cap" else bool(body[attr]))
    user.save(force_insert=True)
    _sync_leaders(user)
    fields = {"UserID": user.userid}
    for tag, attr in USER_EVENT_FIELDS:
        fields[tag] = _event_value(attr, getattr(user, attr))
    callbacks.emit("change_contact", "create_user", **fields)
    return {"user": _user_out(user)}


def _rename(old: str, new: str) -> None:
    """Carry a userid change through every table that refers to the member (WeCom keeps the person)."""
    qn = connection.ops.quote_name
    from django.apps import apps

    refs = {
        "follow": ("userid", "oper_userid"),
        "groupchat": ("owner",),
        "groupmember": ("userid", "invitor"),
        "welcomecode": ("userid",),
        "transfer": ("handover_userid", "takeover_userid"),
        "grouptransfer": ("handover_userid", "takeover_userid"),
        "groupmsg": ("creator",),
        "groupmsgtask": ("userid",),
        "groupmsgresult": ("userid",),
        "moment": ("creator",),
        "momenttask": ("userid",),
        "momentvisibility": ("userid",),
        "tempchat": ("userid",),
        "appmessage": ("touser",),
    }
    existing = set(connection.introspection.table_names())
    with connection.cursor() as cur:
        cur.execute(f"UPDATE {qn(User._meta.db_table)} SET userid = %s WHERE userid = %s", [new, old])
        for model_name, cols in refs.items():
            try:
                model = apps.get_model("wecom_sim", model_name)
            except LookupError:
                continue
            table = model._meta.db_table
            if table not in existing:
                continue
            have = {f.column for f in model._meta.concrete_fields}
            for col in cols:
                if col in have:
                    cur.execute(f"UPDATE {qn(table)} SET {qn(col)} = %s WHERE {qn(col)} = %s", [new, old])
    for chat in GroupChat.objects.filter(admin_list__icontains=old).only("chat_id", "admin_list"):
        if old in chat.admin_list:
            chat.admin_list = [new if u == old else u for u in chat.admin_list]
            chat.save(update_fields=["admin_list"])
    for u in User.objects.filter(direct_leader__icontains=old):
        if old in u.direct_leader:
            u.direct_leader = [new if x == old else x for x in u.direct_leader]
            u.save(update_fields=["direct_leader"])
    from siyu.wecom_sim.models import ContactWay

    for way in ContactWay.objects.filter(config__icontains=old).only("config_id", "config"):
        users = way.config.get("user")
        if isinstance(users, list) and old in users:
            way.config["user"] = [new if x == old else x for x in users]
            way.save(update_fields=["config"])


@action("employee/update", schemas.EmployeeUpdate)
def employee_update(body: dict) -> dict:
    """Edit a member: {userid, new_userid?, name?, department?, ...}; the event has only what changed."""
    user = _get_user(body.get("userid"))
    old_userid = user.userid
    before = {attr: getattr(user, attr) for attr in EDITABLE}
    _apply_fields(user, body)
    for attr in ("customer_cap", "console_welcome"):
        if attr in body:
            setattr(user, attr, int(body[attr]) if attr == "customer_cap" else bool(body[attr]))
    new_userid = body.get("new_userid")
    if new_userid and new_userid != old_userid:
        if not isinstance(new_userid, str) or not 1 <= len(new_userid.encode()) <= 64:
            raise ControlError("40003 new_userid must be 1..64 bytes")
        if User.objects.filter(userid__iexact=new_userid).exclude(userid=old_userid).exists():
            raise ControlError(f"60102 userid existed: {new_userid}")
    else:
        new_userid = None
    user.save()
    if new_userid:
        _rename(old_userid, new_userid)
        user = User.objects.get(userid=new_userid)
    _sync_leaders(user, old_userid if new_userid else None)
    fields: dict[str, Any] = {"UserID": old_userid}
    if new_userid:
        fields["NewUserID"] = new_userid
    changed = []
    for tag, attr in USER_EVENT_FIELDS:
        if getattr(user, attr) != before[attr]:
            fields[tag] = _event_value(attr, getattr(user, attr))
            changed.append(attr)
    # IsLeaderInDept is aligned with Department: when one changes, WeCom sends both.
    if "Department" in fields and "IsLeaderInDept" not in fields:
        fields["IsLeaderInDept"] = _event_value("is_leader_in_dept", user.is_leader_in_dept)
    if len(fields) > 1:
        callbacks.emit("change_contact", "update_user", **fields)
    return {"user": _user_out(user), "changed": changed, "event": len(fields) > 1}


def _leave(user: User, now: int) -> dict:
    """The member leaves the corp (WeCom: deleted from the directory).

    Their follow relations are deliberately kept ACTIVE: in WeCom a departed member's customers
    stay attached to them as 待分配 (unassigned) until a resigned transfer moves them, and
    externalcontact/get_unassigned_list reads exactly that — users with ``dimission_time`` set and
    their ACTIVE follows. Their customer groups become 离职待继承 (GroupChat.status 1).
    """
    user.status = User.STATUS_LEFT
    user.dimission_time = now
    user.contact_enabled = False
    user.save(update_fields=["status", "dimission_time", "contact_enabled"])
    _sync_leaders(user)
    for u in User.objects.filter(direct_leader__icontains=user.userid):
        if user.userid in u.direct_leader:
            u.direct_leader = [x for x in u.direct_leader if x != user.userid]
            u.save(update_fields=["direct_leader"])
    groups = GroupChat.objects.filter(owner=user.userid, dismissed=False, status=0).update(status=1)
    follows = Follow.objects.filter(userid=user.userid, status=Follow.ACTIVE).count()
    callbacks.emit("change_contact", "delete_user", UserID=user.userid)
    return {"userid": user.userid, "dimission_time": now, "unassigned_customers": follows, "groups_to_inherit": groups}


@action("employee/resign", schemas.EmployeeRef)
def employee_resign(body: dict) -> dict:
    """The member leaves: status 5, dimission_time now, customers become unassigned (待分配)."""
    user = _get_user(body.get("userid"))
    return _leave(user, clock.now())


@action("employee/delete", schemas.EmployeeDelete)
def employee_delete(body: dict) -> dict:
    """The admin deletes the member: {userid, purge?}.

    In WeCom deleting a member *is* how they leave, so this does what ``employee/resign`` does.
    With ``purge: true`` the member and their relations are removed outright (no unassigned
    customers, their groups leave the list) — a scenario set-up shortcut, not a WeCom behaviour.
    """
    user = _get_user(body.get("userid"), allow_left=bool(body.get("purge")))
    if not body.get("purge"):
        return _leave(user, clock.now())
    userid = user.userid
    was_active = user.status != User.STATUS_LEFT
    user.status = User.STATUS_LEFT
    _sync_leaders(user)
    follows = Follow.objects.filter(userid=userid).delete()[0]
    members = GroupMember.objects.filter(userid=userid, type=GroupMember.EMPLOYEE).delete()[0]
    groups = GroupChat.objects.filter(owner=userid).update(dismissed=True)
    User.objects.filter(userid=userid).delete()
    if was_active:
        callbacks.emit("change_contact", "delete_user", UserID=userid)
    return {
        "userid": userid,
        "purged": True,
        "follows": follows,
        "group_memberships": members,
        "groups_dismissed": groups,
    }


@action("employee/set", schemas.EmployeeSet)
def employee_set(body: dict) -> dict:
    """Scenario set-up without callbacks: {userid, customer_cap?, console_welcome?, contact_enabled?}."""
    user = _get_user(body.get("userid"), allow_left=True)
    update = []
    if "customer_cap" in body:
        user.customer_cap = int(body["customer_cap"])
        update.append("customer_cap")
    if "console_welcome" in body:
        user.console_welcome = bool(body["console_welcome"])
        update.append("console_welcome")
    if "contact_enabled" in body:
        user.contact_enabled = bool(body["contact_enabled"])
        update.append("contact_enabled")
    if not update:
        raise ControlError("nothing to set: customer_cap, console_welcome or contact_enabled")
    user.save(update_fields=update)
    return {"user": _user_out(user)}


def _user_out(u: User) -> dict:
    return {
        "userid": u.userid,
        "name": u.name,
        "department": u.department,
        "main_department": u.main_department,
        "is_leader_in_dept": u.is_leader_in_dept,
        "position": u.position,
        "status": u.status,
        "contact_enabled": u.contact_enabled,
        "customer_cap": u.customer_cap,
        "console_welcome": u.console_welcome,
        "dimission_time": u.dimission_time,
    }


# --- departments -------------------------------------------------------------------------------------
def _dept_name_ok(name: Any, parentid: int, exclude: int | None = None) -> str:
    # department/create doc: name 1..64 characters, none of \:*?"<>| ; unique among siblings (60008)
    if not isinstance(name, str) or not 1 <= len(name) <= 64 or any(c in name for c in '\\:*?"<>|'):
        raise ControlError('60001 department name must be 1..64 characters without \\:*?"<>|')
    qs = Department.objects.filter(parentid=parentid, name=name)
    if exclude is not None:
        qs = qs.exclude(id=exclude)
    if qs.exists():
        raise ControlError(f"60008 department name existed: {name}")
    return name


@action("department/create", schemas.DepartmentCreate)
def department_create(body: dict) -> dict:
    """{name, parentid?, order?, id?, name_en?} → create_party (Id, Name, ParentId, Order)."""
    parentid = int(body.get("parentid", 1))
    if not Department.objects.filter(id=parentid).exists():
        raise ControlError(f"60004 parent department not found: {parentid}")
    name = _dept_name_ok(body.get("name"), parentid)
    if body.get("id") is not None:
        dept_id = int(body["id"])
        if dept_id < 2 or Department.objects.filter(id=dept_id).exists():
            raise ControlError(f"60123 department id unavailable: {dept_id}")
    else:
        last = Department.objects.order_by("-id").first()
        dept_id = (last.id if last else 0) + 1
    if body.get("order") is not None:
        order = int(body["order"])
        if not 0 <= order < 2**32:
            raise ControlError("order must be in [0, 2^32)")
    else:
        # WeCom puts a new department after its siblings (larger order sorts first)
        sibling = Department.objects.filter(parentid=parentid).order_by("order").first()
        order = max(0, sibling.order - 1000) if sibling else 100000000
    dept = Department.objects.create(
        id=dept_id, name=name, name_en=body.get("name_en") or "", parentid=parentid, order=order
    )
    callbacks.emit(
        "change_contact", "create_party", Id=dept.id, Name=dept.name, ParentId=str(dept.parentid), Order=dept.order
    )
    return {"department": {"id": dept.id, "name": dept.name, "parentid": dept.parentid, "order": dept.order}}


@action("department/update", schemas.DepartmentUpdate)
def department_update(body: dict) -> dict:  # noqa: C901 - one branch per editable department field
    """{id, name?, parentid?, order?, name_en?} → update_party with Name / ParentId only when changed."""
    dept = Department.objects.filter(id=int(body.get("id", 0))).first()
    if dept is None:
        raise ControlError("60003 department not found")
    fields: dict[str, Any] = {"Id": dept.id}
    parentid = dept.parentid
    if "parentid" in body and int(body["parentid"]) != dept.parentid:
        if dept.id == 1:
            raise ControlError("the root department cannot move")
        parentid = int(body["parentid"])
        if not Department.objects.filter(id=parentid).exists():
            raise ControlError(f"60004 parent department not found: {parentid}")
        if parentid in dept_subtree([dept.id]):  # itself or below itself
            raise ControlError("60010 a department cannot move under itself")
    if ("name" in body and body["name"] != dept.name) or parentid != dept.parentid:
        name = body.get("name", dept.name)
        _dept_name_ok(name, parentid, exclude=dept.id)
        if name != dept.name:
            dept.name = name
            fields["Name"] = name
    if parentid != dept.parentid:
        dept.parentid = parentid
        fields["ParentId"] = str(parentid)
    if "order" in body:
        order = int(body["order"])
        if not 0 <= order < 2**32:
            raise ControlError("order must be in [0, 2^32)")
        dept.order = order
    if "name_en" in body:
        dept.name_en = body["name_en"] or ""
    dept.save()
    if len(fields) > 1:
        callbacks.emit("change_contact", "update_party", **fields)
    return {
        "department": {"id": dept.id, "name": dept.name, "parentid": dept.parentid, "order": dept.order},
        "event": len(fields) > 1,
    }


@action("department/delete", schemas.DepartmentRef)
def department_delete(body: dict) -> dict:
    """{id} → delete_party. Like WeCom: not the root, not with sub-departments or members."""
    dept = Department.objects.filter(id=int(body.get("id", 0))).first()
    if dept is None:
        raise ControlError("60003 department not found")
    if dept.id == 1 or dept.parentid == 0:
        raise ControlError("60007 the root department cannot be deleted")
    if Department.objects.filter(parentid=dept.id).exists():
        raise ControlError("60006 department has sub-departments")
    members = [
        u for u in User.objects.exclude(status=User.STATUS_LEFT).values_list("department", flat=True) if dept.id in u
    ]
    if members:
        raise ControlError("60005 department has members")
    dept.delete()
    callbacks.emit("change_contact", "delete_party", Id=int(body["id"]))
    return {"deleted": int(body["id"])}


# --- the world ----------------------------------------------------------------------------------------
@action("seed", schemas.Seed)
def seed_world(body: dict) -> dict:
    """Rebuild the world: {customers?, seed?, demo?} (wipes everything but tokens, clock, callbacks)."""
    customers = int(body.get("customers", 5000))
    if not 0 <= customers <= 5_000_000:
        raise ControlError("customers must be in 0..5,000,000")
    stats = world.seed(
        customers=customers, seed=int(body.get("seed", 1)), demo=bool(body.get("demo", True)), reset=True
    )
    return {"stats": stats}


@action("customer/new", schemas.CustomerNew)
def customer_new(body: dict) -> dict:
    """{n?, seed?} → n WeChat users who are nobody's customer yet (they can scan a contact way)."""
    n = int(body.get("n", 1))
    if not 1 <= n <= 10000:
        raise ControlError("n must be in 1..10000")
    rng = random.Random(body["seed"]) if body.get("seed") is not None else None
    try:
        with transaction.atomic():
            made = [world.new_customer(rng) for _ in range(n)]
    except IntegrityError:
        raise ControlError("these people already exist (same seed used twice?)") from None
    return {
        "external_userid": [c.external_userid for c in made],
        "customers": [{"external_userid": c.external_userid, "name": c.name, "unionid": c.unionid} for c in made],
    }


@action("world/sample", schemas.WorldSample)
def world_sample(body: dict) -> dict:
    """A few real ids of each kind, in a deterministic order, so tests need not read the DB."""
    n = max(1, min(int(body.get("n", 5)), 1000))
    qn = connection.ops.quote_name
    ft = qn(Follow._meta.db_table)
    ct = qn(ExternalContact._meta.db_table)
    state = SimState.objects.filter(key="world").first()
    info = state.value if state else {}

    users = list(User.objects.exclude(status=User.STATUS_LEFT).order_by("userid"))
    store_ids = set(world.store_department_ids())
    depts = {d.id: d for d in Department.objects.all()}
    employees = [
        {
            "userid": u.userid,
            "name": u.name,
            "department": u.department,
            "main_department": u.main_department,
            "position": u.position,
            "contact_enabled": u.contact_enabled,
            "store": u.main_department if u.main_department in store_ids else None,
        }
        for u in users
    ]
    contact = [e for e in employees if e["contact_enabled"]]
    store_staff = [e for e in contact if e["store"]]
    resigned = list(
        User.objects.filter(status=User.STATUS_LEFT).order_by("userid").values_list("userid", flat=True)[:n]
    )

    with connection.cursor() as cur:
        # customers in creation order (follow ids follow the seed), with all their active followers
        cur.execute(f"SELECT external_userid FROM {ft} WHERE status = 0 ORDER BY id LIMIT %s", [n * 3])
        seen: list[str] = []
        for (ext,) in cur.fetchall():
            if ext not in seen:
                seen.append(ext)
            if len(seen) >= n:
                break
        # customers with two or more active followers: found from the later relation, in id order
        cur.execute(
            f"SELECT f2.external_userid FROM {ft} f2 WHERE f2.status = 0 AND EXISTS (SELECT 1 FROM {ft} f1 "
            f"WHERE f1.external_userid = f2.external_userid AND f1.status = 0 AND f1.id < f2.id) "
            f"ORDER BY f2.id LIMIT %s",
            [n * 2],
        )
        multi = list(dict.fromkeys(r[0] for r in cur.fetchall()))[:n]
        cur.execute(
            f"SELECT userid, external_userid, status, status_time FROM {ft} WHERE status IN (1, 2) "
            f"ORDER BY id LIMIT %s",
            [n],
        )
        lost = [{"userid": r[0], "external_userid": r[1], "status": r[2], "status_time": r[3]} for r in cur.fetchall()]
        # nobody's customer yet (customer/new): newest first
        # (only the newest 50,000 rows are looked at: people made after seeding are appended)
        cur.execute(
            f"SELECT c.external_userid FROM {ct} c WHERE c.rowid > (SELECT MAX(rowid) FROM {ct}) - 50000 "
            f"AND NOT EXISTS (SELECT 1 FROM {ft} f WHERE f.external_userid = c.external_userid) "
            f"ORDER BY c.rowid DESC LIMIT %s",
            [n],
        )
        unfollowed = [r[0] for r in cur.fetchall()]
    wanted = list(dict.fromkeys(seen + multi))
    followers: dict[str, list[str]] = {}
    for uid, ext in (
        Follow.objects.filter(external_userid__in=wanted, status=Follow.ACTIVE)
        .order_by("id")
        .values_list("userid", "external_userid")
    ):
        followers.setdefault(ext, []).append(uid)
    names = dict(ExternalContact.objects.filter(external_userid__in=wanted).values_list("external_userid", "name"))
    customers = [{"external_userid": e, "name": names.get(e, ""), "followers": followers.get(e, [])} for e in seen]
    multi_out = [{"external_userid": e, "name": names.get(e, ""), "followers": followers.get(e, [])} for e in multi]
    with connection.cursor() as cur:
        cur.execute(f"SELECT external_userid FROM {ct} WHERE type = 2 ORDER BY rowid LIMIT %s", [n])
        wecom = [r[0] for r in cur.fetchall()]
    hostile_ids = info.get("hostile") or []
    hostile = [
        {"external_userid": e, "name": nm}
        for e, nm in ExternalContact.objects.filter(external_userid__in=hostile_ids).values_list(
            "external_userid", "name"
        )
    ]
    hostile.sort(key=lambda h: hostile_ids.index(h["external_userid"]))

    groups = list(GroupChat.objects.filter(dismissed=False).order_by("chat_id")[:n])
    counts = dict(
        GroupMember.objects.filter(chat_id__in=[g.chat_id for g in groups])
        .values("chat_id")
        .annotate(c=Count("id"))
        .values_list("chat_id", "c")
    )
    group_out = [
        {
            "chat_id": g.chat_id,
            "name": g.name,
            "owner": g.owner,
            "status": g.status,
            "admin_list": g.admin_list,
            "members": counts.get(g.chat_id, 0),
        }
        for g in groups
    ]
    tags = []
    for tg in TagGroup.objects.filter(deleted=False).order_by("-order", "create_time"):
        tags.append(
            {
                "group_id": tg.group_id,
                "group_name": tg.group_name,
                "tag": [
                    {"id": t.id, "name": t.name}
                    for t in Tag.objects.filter(group_id=tg.group_id, deleted=False).order_by("-order", "create_time")
                ],
            }
        )
    return {
        "world": {k: info.get(k) for k in ("customers", "seed", "demo", "seeded_at")},
        "stats": info.get("stats") or {},
        "departments": [
            {"id": d.id, "name": d.name, "parentid": d.parentid} for d in sorted(depts.values(), key=lambda d: d.id)
        ],
        "stores": [{"id": i, "name": depts[i].name, "parentid": depts[i].parentid} for i in sorted(store_ids)],
        "employees": employees[:n],
        "contact_employees": contact[:n],
        "store_employees": store_staff[:n],
        "resigned": resigned,
        "customers": customers,
        "multi_followed": multi_out,
        "lost": lost,
        "wecom_customers": wecom,
        "unfollowed": unfollowed,
        "hostile": hostile,
        "groups": group_out,
        "tags": tags,
    }
