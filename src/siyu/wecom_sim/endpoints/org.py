"""Org (通讯录): departments, members, and the members with customer-contact permission."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from siyu.wecom_sim.endpoints._paging import decode_cursor, encode_cursor
from siyu.wecom_sim.framework import SimRequest, WeComError, endpoint
from siyu.wecom_sim.models import Department, User


def dept_subtree(roots: Iterable[int]) -> set[int]:
    """The ids of the departments ``roots`` and all their descendants."""
    children: dict[int, list[int]] = defaultdict(list)
    for d in Department.objects.all().only("id", "parentid"):
        children[d.parentid].append(d.id)
    out: set[int] = set()
    stack = list(roots)
    while stack:
        d = stack.pop()
        if d not in out:
            out.add(d)
            stack.extend(children.get(d, []))
    return out


def _subtree(root_id: int) -> list[Department]:
    """Department ``root_id`` and all below it, by id; 60123 when it does not exist."""
    ids = dept_subtree([root_id])
    depts = [d for d in Department.objects.order_by("id") if d.id in ids]
    if all(d.id != root_id for d in depts):
        raise WeComError(60123)
    return depts


def _dept_json(d: Department) -> dict:
    return {
        "id": d.id,
        "name": d.name,
        "name_en": d.name_en,
        "department_leader": d.department_leader,
        "parentid": d.parentid,
        "order": d.order,
    }


@endpoint("department/list", methods=("GET",))
def department_list(req: SimRequest) -> dict:
    """department/list (doc 90208): ``id`` and its descendants; no id = the whole tree."""
    raw = req.query.get("id")
    if raw in (None, ""):
        depts = sorted(Department.objects.all(), key=lambda d: d.id)
    else:
        try:
            depts = _subtree(int(raw))
        except ValueError:
            raise WeComError(60123) from None
    return {"department": [_dept_json(d) for d in depts]}


@endpoint("department/get", methods=("GET",))
def department_get(req: SimRequest) -> dict:
    """department/get (doc 95351): one department's details."""
    raw = req.query.get("id")
    try:
        dept = Department.objects.filter(id=int(raw)).first() if raw not in (None, "") else None
    except ValueError:
        dept = None
    if dept is None:
        raise WeComError(60123)
    return {"department": _dept_json(dept)}


@endpoint("department/simplelist", methods=("GET",))
def department_simplelist(req: SimRequest) -> dict:
    data = department_list(req)["department"]
    return {"department_id": [{"id": d["id"], "parentid": d["parentid"], "order": d["order"]} for d in data]}


def _corp_name() -> str:
    root = Department.objects.filter(parentid=0).only("name").first()
    return root.name if root else ""


def user_json(u: User, simple: bool = False, corp_name: str | None = None) -> dict:
    if simple:
        return {"userid": u.userid, "name": u.name, "department": u.department, "open_userid": u.userid}
    return {
        "userid": u.userid,
        "name": u.name,
        "department": u.department,
        "order": [0] * len(u.department),
        "position": u.position,
        "mobile": u.mobile,
        "gender": u.gender,
        "email": u.email,
        "is_leader_in_dept": u.is_leader_in_dept,
        "direct_leader": u.direct_leader,
        "avatar": u.avatar,
        "thumb_avatar": u.avatar,
        "telephone": "",
        "biz_mail": "",
        "address": "",
        "alias": u.alias,
        "status": u.status,
        "main_department": u.main_department,
        "open_userid": u.userid,
        "qr_code": f"https://open.work.weixin.qq.com/wwopen/userQRCode?vcode={u.userid}",
        "extattr": {"attrs": []},
        "external_position": u.position,
        "external_profile": {
            "external_corp_name": _corp_name() if corp_name is None else corp_name,
            "external_attr": [],
        },
        "enable": 1 if u.status == User.STATUS_ACTIVE else 0,
        "isleader": 1 if any(u.is_leader_in_dept) else 0,
        "hide_mobile": 0,
        "english_name": u.alias,
    }


def get_user(userid: str | None) -> User:
    if not userid:
        raise WeComError(40003)
    # userids are case-insensitive in WeCom; the exact match (an index lookup) first, since the
    # case-insensitive one scans every member
    user = User.objects.filter(userid=userid).first() or User.objects.filter(userid__iexact=userid).first()
    if user is None:
        raise WeComError(60111)
    return user


@endpoint("user/get", methods=("GET",))
def user_get(req: SimRequest) -> dict:
    user = get_user(req.query.get("userid"))
    if user.status == User.STATUS_LEFT:
        raise WeComError(60111)
    return user_json(user)


def _users_in(req: SimRequest) -> list[User]:
    """Members of ``department_id`` (and its sub-departments with fetch_child=1), by userid."""
    try:
        dept = int(req.query.get("department_id", "1"))
    except ValueError:
        raise WeComError(60123) from None
    ids = {d.id for d in _subtree(dept)} if req.query.get("fetch_child") == "1" else {dept}
    if dept not in ids or not Department.objects.filter(id=dept).exists():
        raise WeComError(60123)
    users = User.objects.exclude(status=User.STATUS_LEFT).order_by("userid")
    return [u for u in users if not ids.isdisjoint(u.department)]


@endpoint("user/simplelist", methods=("GET",))
def user_simplelist(req: SimRequest) -> dict:
    return {"userlist": [user_json(u, simple=True) for u in _users_in(req)]}


@endpoint("user/list", methods=("GET",))
def user_list(req: SimRequest) -> dict:
    corp = _corp_name()
    return {"userlist": [user_json(u, corp_name=corp) for u in _users_in(req)]}


@endpoint("user/list_id", methods=("POST",))
def user_list_id(req: SimRequest) -> dict:
    """user/list_id (doc 96067): one row per (user, department), cursor paging, limit 1..10000."""
    limit = req.body.get("limit", 10000)
    if not isinstance(limit, int) or not 1 <= limit <= 10000:
        raise WeComError(40058, "invalid limit")
    start = decode_cursor(req.body.get("cursor"))
    rows = [
        {"userid": uid, "department": d}
        for uid, depts in User.objects.exclude(status=User.STATUS_LEFT)
        .order_by("userid")
        .values_list("userid", "department")
        for d in depts
    ]
    page = rows[start : start + limit]
    nxt = encode_cursor(start + limit) if start + limit < len(rows) else ""
    return {"next_cursor": nxt, "dept_user": page}


@endpoint("externalcontact/get_follow_user_list", methods=("GET",))
def get_follow_user_list(req: SimRequest) -> dict:
    """get_follow_user_list (doc 92571): active members with the customer-contact function."""
    users = User.objects.filter(contact_enabled=True, status=User.STATUS_ACTIVE).order_by("userid")
    return {"follow_user": list(users.values_list("userid", flat=True))}
