"""Customers (客户管理): list, get, batch/get_by_user, remark.

Also the world changes that create and end follow relations the way WeChat users and employees
do in the WeCom client (``/sim/add_friend``, ``/sim/delete``, ``/sim/chat``, ``/sim/confirm_add``,
``/sim/customer/edit``), and helpers shared by the other part-1 modules (contact ways, tags,
groups): cursors, member checks, the add flow with its welcome code.

Which follows are visible (part 1 §2, part 3 §2.1):
- ACTIVE relations.
- HALF relations (add_half_external_contact: the customer added a skip-verify employee who has not
  added back yet). The customer is already in the employee's contacts and can chat, and WeCom
  pushes the event precisely so the app can read the customer and send the welcome message, so
  ``get``/``list`` return them (judgement; no doc says otherwise).
- DELETED_BY_CUSTOMER relations (del_follow_user): the break is one-way; the employee still holds
  the customer, shown as "deleted me", so WeCom keeps listing them for the employee (rule
  ``deleted_by_customer_still_listed``, default True).
- Not DELETED_BY_USER (the employee deleted the customer) nor TRANSFERRED relations.
Relations of resigned employees (status 5) are outside the app's visibility and not returned by
``get`` (the customers are then "unassigned", see get_unassigned_list).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any

from siyu.wecom_sim import clock, rules, schemas
from siyu.wecom_sim.callbacks import emit
from siyu.wecom_sim.control import ControlError, action
from siyu.wecom_sim.endpoints.media import check_media
from siyu.wecom_sim.endpoints.org import get_user
from siyu.wecom_sim.framework import SimRequest, WeComError, check_len, endpoint, new_id
from siyu.wecom_sim.models import ExternalContact, Follow, Tag, User, WelcomeCode

# --- shared helpers ---------------------------------------------------------------------------


def encode_cursor(data: Any) -> str:
    """Cursors are opaque strings, as WeCom's are."""
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: Any) -> Any:
    if cursor in (None, ""):
        return None
    if not isinstance(cursor, str):
        raise WeComError(40058, "invalid cursor")
    try:
        pad = "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(cursor + pad))
    except (ValueError, UnicodeDecodeError):
        raise WeComError(40058, "invalid cursor") from None


def str_list(value: Any, what: str, errcode: int = 40058) -> list[str]:
    """A JSON array of strings (None → []). WeCom's typed JSON parsing rejects other shapes."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise WeComError(errcode, f"invalid {what}: must be an array of strings")
    return value


def int_param(value: Any, what: str, default: Any = None, errcode: int = 40058) -> Any:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise WeComError(errcode, f"invalid {what}")
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    if not isinstance(value, int):
        raise WeComError(errcode, f"invalid {what}")
    return value


def pic_url_for(media_id: str) -> str:
    """What WeCom returns in place of an image media_id (images come back as pic_url)."""
    return f"https://wework.qpic.cn/wwpic/sim/{media_id}/0"


def contact_user(userid: Any) -> User:
    """An employee the customer-contact API may name: exists, not resigned, contact enabled.

    Unknown or resigned → 60111; no customer-contact function → 84074 (mapping unverified,
    part 1 §0).
    """
    if not isinstance(userid, str):
        raise WeComError(40003)
    user = get_user(userid)
    if user.status == User.STATUS_LEFT:
        raise WeComError(60111)
    if not user.contact_enabled:
        raise WeComError(84074)
    return user


def visible_statuses() -> list[int]:
    statuses = [Follow.ACTIVE, Follow.HALF]
    if rules.get().deleted_by_customer_still_listed:
        statuses.append(Follow.DELETED_BY_CUSTOMER)
    return statuses


def left_userids() -> set[str]:
    return set(User.objects.filter(status=User.STATUS_LEFT).values_list("userid", flat=True))


def visible_follow(userid: str, external_userid: str) -> Follow:
    """The pair's relation if the employee holds the customer, else 84061 (not external contact)."""
    f = Follow.objects.filter(userid=userid, external_userid=external_userid, status__in=visible_statuses()).first()
    if f is None:
        raise WeComError(84061)
    return f


def get_customer(external_userid: Any) -> ExternalContact:
    if not external_userid:
        raise WeComError(41035)
    if not isinstance(external_userid, str):
        raise WeComError(40096)
    ext = ExternalContact.objects.filter(external_userid=external_userid).first()
    if ext is None:
        raise WeComError(40096)
    return ext


def live_tags(tag_ids: Iterable[str]) -> dict[str, Tag]:
    ids = set(tag_ids)
    if not ids:
        return {}
    qs = Tag.objects.filter(id__in=ids, deleted=False, group__deleted=False).select_related("group")
    return {t.id: t for t in qs}


def customer_json(ext: ExternalContact) -> dict:
    """external_contact as WeCom returns it (doc 92114): corp fields only for WeCom users (type 2),
    unionid only for WeChat users (type 1) when the corp bound a developer account."""
    d: dict[str, Any] = {
        "external_userid": ext.external_userid,
        "name": ext.name,
        "avatar": ext.avatar,
        "type": ext.type,
        "gender": ext.gender,
    }
    if ext.type == 1 and ext.unionid:
        d["unionid"] = ext.unionid
    if ext.type == 2:
        d["position"] = ext.position
        d["corp_name"] = ext.corp_name
        d["corp_full_name"] = ext.corp_full_name
        d["external_profile"] = {"external_attr": []}
    return d


def _common_follow_fields(f: Follow, d: dict) -> dict:
    if f.remark_corp_name:
        d["remark_corp_name"] = f.remark_corp_name
    if f.remark_mobiles:
        d["remark_mobiles"] = [str(m) for m in f.remark_mobiles]
    if f.oper_userid:
        d["oper_userid"] = f.oper_userid
    d["add_way"] = f.add_way
    if f.state:  # only when the customer came through a contact way that had a state
        d["state"] = f.state
    return d


def follow_user_json(f: Follow, tags: dict[str, Tag]) -> dict:
    """One follow_user entry of externalcontact/get: corp tags (type 1) with ids, personal tags
    (type 2) without tag_id (doc 92114)."""
    tag_rows = []
    for tid in f.tag_ids:
        t = tags.get(tid)
        if t is not None:
            tag_rows.append({"group_name": t.group.group_name, "tag_name": t.name, "tag_id": t.id, "type": 1})
    for p in f.personal_tags or []:
        tag_rows.append({"group_name": p.get("group_name", ""), "tag_name": p.get("tag_name", ""), "type": 2})
    d = {
        "userid": f.userid,
        "remark": f.remark,
        "description": f.description,
        "createtime": f.createtime,
        "tags": tag_rows,
    }
    return _common_follow_fields(f, d)


def follow_info_json(f: Follow, tags: dict[str, Tag]) -> dict:
    """follow_info of batch/get_by_user: only corp-tag ids, no personal tags (doc 92994)."""
    d = {
        "userid": f.userid,
        "remark": f.remark,
        "description": f.description,
        "createtime": f.createtime,
        "tag_id": [tid for tid in f.tag_ids if tid in tags],
    }
    return _common_follow_fields(f, d)


# --- endpoints ---------------------------------------------------------------------------------


@endpoint("externalcontact/list", methods=("GET",))
def customer_list(req: SimRequest) -> dict:
    """externalcontact/list: every customer the employee holds, no paging (part 1 §2.2)."""
    user = contact_user(req.query.get("userid"))
    ids = list(
        Follow.objects.filter(userid=user.userid, status__in=visible_statuses())
        .order_by("id")
        .values_list("external_userid", flat=True)
    )
    if not ids and rules.get().empty_customer_list_84061:
        raise WeComError(84061, external_userid=[])
    return {"external_userid": ids}


@endpoint("externalcontact/get", methods=("GET",))
def customer_get(req: SimRequest) -> dict:
    """externalcontact/get (doc 92114): the customer and the visible employees following them;
    follow_user is paged by ``cursor`` beyond ``follow_user_page_size`` (500) followers."""
    ext = get_customer(req.query.get("external_userid"))
    after = decode_cursor(req.query.get("cursor"))
    if after is not None and (isinstance(after, bool) or not isinstance(after, int)):
        raise WeComError(40058, "invalid cursor")
    after_id = after or 0
    left = left_userids()
    qs = Follow.objects.filter(external_userid=ext.external_userid, status__in=visible_statuses()).order_by("id")
    if left:
        qs = qs.exclude(userid__in=left)
    if after_id == 0 and not qs.exists():
        raise WeComError(84061)
    size = rules.get().follow_user_page_size
    page = list(qs.filter(id__gt=after_id)[: size + 1])
    more = len(page) > size
    page = page[:size]
    tags = live_tags(t for f in page for t in f.tag_ids)
    out: dict[str, Any] = {
        "external_contact": customer_json(ext),
        "follow_user": [follow_user_json(f, tags) for f in page],
    }
    if more:
        out["next_cursor"] = encode_cursor(page[-1].id)
    return out


@endpoint("externalcontact/batch/get_by_user", methods=("POST",))
def batch_get_by_user(req: SimRequest) -> dict:  # noqa: C901 - one check per WeCom rule, in the order WeCom reports them
    """batch/get_by_user (doc 92994): one row per (customer, follower) of the listed employees.

    ``userid_list`` is required (≤ 100). The legacy single ``userid`` string that older SDKs
    (wechatpy 2.0) send is still accepted (whether WeCom still does is unverified, part 1 §2.4).
    ``limit`` defaults to 50 and is clamped to 100.
    """
    r = rules.get()
    body = req.body
    if "userid_list" in body:
        userids = str_list(body.get("userid_list"), "userid_list")
    elif isinstance(body.get("userid"), str) and body.get("userid"):
        userids = [body["userid"]]
    else:
        userids = []
    if not userids:
        raise WeComError(40058, "userid_list is required")
    if len(userids) > r.batch_get_by_user_max_users:
        raise WeComError(40058, f"userid_list at most {r.batch_get_by_user_max_users}")
    users: list[str] = []
    for uid in userids:
        u = contact_user(uid).userid
        if u not in users:
            users.append(u)
    limit = int_param(body.get("limit"), "limit", default=0)
    if limit < 0:
        raise WeComError(40058, "invalid limit")
    limit = min(limit or r.batch_get_by_user_default_limit, r.batch_get_by_user_max_limit)
    pos = decode_cursor(body.get("cursor"))
    if pos is None:
        ui, last_id = 0, 0
    elif isinstance(pos, list) and len(pos) == 2 and all(isinstance(v, int) for v in pos):
        ui, last_id = pos
    else:
        raise WeComError(40058, "invalid cursor")
    statuses = visible_statuses()
    rows: list[Follow] = []
    next_pos = None
    while ui < len(users):
        need = limit - len(rows)
        chunk = list(
            Follow.objects.filter(userid=users[ui], status__in=statuses, id__gt=last_id).order_by("id")[: need + 1]
        )
        if len(chunk) > need:
            rows.extend(chunk[:need])
            next_pos = [ui, rows[-1].id]
            break
        rows.extend(chunk)
        ui, last_id = ui + 1, 0
        if len(rows) == limit:
            # the page is full exactly at a user boundary: more follows only if a later user has any
            if any(Follow.objects.filter(userid=u, status__in=statuses).exists() for u in users[ui:]):
                next_pos = [ui, 0]
            break
    customers = ExternalContact.objects.in_bulk([f.external_userid for f in rows])
    tags = live_tags(t for f in rows for t in f.tag_ids)
    out = []
    for f in rows:
        ext = customers.get(f.external_userid)
        if ext is None:
            continue
        out.append({"external_contact": customer_json(ext), "follow_info": follow_info_json(f, tags)})
    return {"external_contact_list": out, "next_cursor": encode_cursor(next_pos) if next_pos else ""}


@endpoint("externalcontact/remark", methods=("POST",))
def remark(req: SimRequest) -> dict:  # noqa: C901 - one check per WeCom rule, in the order WeCom reports them
    """externalcontact/remark (doc 92115, rules R7).

    A field that is absent (or an empty string) is left unchanged; ``remark_mobiles`` overwrites
    and ``[""]`` clears. The five fields must not all be empty (40058, errcode unverified).
    ``remark_company`` only takes effect for WeChat customers (type 1); for others it is ignored.
    No callback fires unless rule ``customer_api_edits_callback`` is on: the doc names only edits
    made by the employee in the client (edit_external_contact), and part 1 §3.5 says current
    docs describe no callback for API-made changes (unverified).
    """
    r = rules.get()
    body = req.body
    if not body.get("userid"):
        raise WeComError(40003)
    user = contact_user(body.get("userid"))
    ext = get_customer(body.get("external_userid"))
    for name in ("remark", "description", "remark_company", "remark_pic_mediaid"):
        if body.get(name) is not None and not isinstance(body.get(name), str):
            raise WeComError(40058, f"invalid {name}")
    rm = body.get("remark") or None
    desc = body.get("description") or None
    company = body.get("remark_company") or None
    pic = body.get("remark_pic_mediaid") or None
    mobiles = body.get("remark_mobiles")
    if mobiles is not None:
        mobiles = str_list(mobiles, "remark_mobiles")
    if rm is None and desc is None and company is None and pic is None and not mobiles:
        raise WeComError(40058, "remark, description, remark_company, remark_mobiles, remark_pic_mediaid are all empty")
    check_len(rm, r.remark_max_len, "remark")
    check_len(desc, r.description_max_len, "description")
    check_len(company, r.remark_company_max_len, "remark_company")
    if mobiles:
        if len(mobiles) > r.remark_mobiles_max:
            raise WeComError(40058, f"remark_mobiles at most {r.remark_mobiles_max}")
        for m in mobiles:
            check_len(m, 32, "remark_mobiles")
    if pic is not None:
        check_media(pic, req.now)
    f = visible_follow(user.userid, ext.external_userid)
    if rm is not None:
        f.remark = rm
    if desc is not None:
        f.description = desc
    if company is not None and ext.type == 1:
        f.remark_corp_name = company
    if mobiles:
        f.remark_mobiles = [m for m in mobiles if m]  # [""] clears every remark mobile
    f.save(update_fields=["remark", "description", "remark_corp_name", "remark_mobiles"])
    if r.customer_api_edits_callback:
        emit("change_external_contact", "edit_external_contact", UserID=f.userid, ExternalUserID=f.external_userid)
    return {}


# --- the add flow (shared with contact_ways.scan) ----------------------------------------------


def new_wechat_user(name: str | None = None) -> ExternalContact:
    """A WeChat user (type 1) the corp has never seen, e.g. someone scanning a poster: the world
    generator's person (realistic nickname, avatar, unionid, ids with the corp's stem)."""
    from siyu.wecom_sim import world

    return world.new_customer(**({"name": name} if name else {}))


def resolve_customer(body: dict) -> ExternalContact:
    xid = body.get("external_userid")
    if xid:
        ext = ExternalContact.objects.filter(external_userid=xid).first()
        if ext is None:
            raise ControlError(f"unknown external_userid {xid}")
        return ext
    return new_wechat_user(body.get("name"))


def active_employee(userid: Any) -> User:
    user = User.objects.filter(userid=userid).first() if isinstance(userid, str) else None
    if user is None:
        raise ControlError(f"unknown userid {userid}")
    if user.status != User.STATUS_ACTIVE or not user.contact_enabled:
        raise ControlError(f"{userid} is not an active employee with the customer-contact function")
    return user


def establish_follow(
    user: User, ext: ExternalContact, *, add_way: int, state: str, oper_userid: str, createtime: int, status: int
) -> Follow | None:
    """Create or re-activate the relation. None when the employee already holds the customer.

    A customer who had deleted the employee (DELETED_BY_CUSTOMER) re-adding keeps the employee's
    remarks and tags (the employee never removed them); after the employee deleted the customer or
    a transfer moved them away, the re-add starts a fresh relation.
    """
    now = clock.now()
    f = Follow.objects.filter(userid=user.userid, external_userid=ext.external_userid).first()
    if f is not None and f.status in (Follow.ACTIVE, Follow.HALF):
        return None
    if f is None:
        f = Follow(userid=user.userid, external_userid=ext.external_userid)
    elif f.status != Follow.DELETED_BY_CUSTOMER:
        f.remark = f.description = f.remark_corp_name = ""
        f.remark_mobiles, f.tag_ids, f.personal_tags = [], [], []
    f.createtime = createtime
    f.add_way = add_way
    f.state = state or ""
    f.oper_userid = oper_userid
    f.status = status
    f.status_time = now
    f.save()
    # a new add: codes of earlier adds of this pair are void
    WelcomeCode.objects.filter(userid=user.userid, external_userid=ext.external_userid, revoked=False).update(
        revoked=True
    )
    return f


def current_codes(f: Follow):
    return WelcomeCode.objects.filter(userid=f.userid, external_userid=f.external_userid, revoked=False)


def welcome_code_for(f: Follow, user: User, change_type: str, config_id: str = "") -> str | None:
    """The WelcomeCode an add event carries (send_welcome_msg doc 92137, part 3 §2.1):
    none when a console welcome message applies to the employee, when they have already chatted,
    or when a welcome was already sent for this add; an unexpired unused code of this add is
    reused (add_half → add_external carry the same one); otherwise a new one is issued."""
    if user.console_welcome or f.chatted:
        return None
    codes = list(current_codes(f).order_by("-issued_at"))
    if any(c.used_at for c in codes):
        return None
    now = clock.now()
    ttl = rules.get().welcome_code_ttl_s
    for c in codes:
        if c.issued_at + ttl > now:
            return c.code
    code = WelcomeCode.objects.create(
        code=new_id("", 43),
        userid=f.userid,
        external_userid=f.external_userid,
        issued_at=now,
        state=f.state,
        config_id=config_id,
        change_type=change_type,
    )
    return code.code


def emit_add(f: Follow, user: User, change_type: str, config_id: str = "") -> str | None:
    code = welcome_code_for(f, user, change_type, config_id)
    emit(
        "change_external_contact",
        change_type,
        UserID=f.userid,
        ExternalUserID=f.external_userid,
        State=f.state or None,
        WelcomeCode=code,
    )
    return code


def confirm_half(f: Follow, user: User, config_id: str = "") -> str | None:
    """The employee adds back a customer who added them without verification."""
    f.status = Follow.ACTIVE
    f.status_time = clock.now()
    f.save(update_fields=["status", "status_time"])
    return emit_add(f, user, "add_external_contact", config_id)


def customer_adds(
    user: User,
    ext: ExternalContact,
    *,
    add_way: int,
    state: str,
    skip_verify: bool,
    createtime: int,
    config_id: str = "",
) -> dict:
    """A customer adds the employee (scanning a QR code / contact way): the event sequence of
    part 3 §2.6. skip_verify → add_half_external_contact, then add_external_contact when the
    employee adds back; otherwise the employee accepts the request → add_external_contact."""
    f = establish_follow(
        user,
        ext,
        add_way=add_way,
        state=state,
        oper_userid=ext.external_userid,
        createtime=createtime,
        status=Follow.HALF if skip_verify else Follow.ACTIVE,
    )
    if f is None:
        return {
            "userid": user.userid,
            "external_userid": ext.external_userid,
            "added": False,
            "welcome_code": None,
            "state": state or "",
        }
    if skip_verify:
        code = emit_add(f, user, "add_half_external_contact", config_id)
        if rules.get().employee_confirms_half_add_immediately:
            code = confirm_half(f, user, config_id) or code
    else:
        code = emit_add(f, user, "add_external_contact", config_id)
    return {
        "userid": user.userid,
        "external_userid": ext.external_userid,
        "added": True,
        "welcome_code": code,
        "state": state or "",
        "status": f.status,
    }


# --- control actions -----------------------------------------------------------------------------

ADD_WAYS = set(range(14)) | {201, 202}


@action("add_friend", schemas.AddFriend)
def add_friend(body: dict) -> dict:
    """An add not through a contact way (search by mobile, card share, group chat, ...).

    Body: userid, add_way (0–13, 201, 202), external_userid (optional: else a new WeChat user),
    by: "employee" (default: the employee sent the request and the customer accepted) or
    "customer", oper_userid (for 201/202: the sharing member or admin), at (createtime).
    Emits add_external_contact without State.
    """
    user = active_employee(body.get("userid"))
    add_way = body.get("add_way")
    if add_way not in ADD_WAYS:
        raise ControlError("add_way must be one of 0-13, 201, 202")
    ext = resolve_customer(body)
    by = body.get("by", "employee")
    if add_way in (201, 202):
        oper = body.get("oper_userid") or user.userid
    elif by == "customer":
        oper = ext.external_userid
    elif by == "employee":
        oper = user.userid
    else:
        raise ControlError('by must be "employee" or "customer"')
    f = establish_follow(
        user,
        ext,
        add_way=add_way,
        state="",
        oper_userid=oper,
        createtime=int(body.get("at") or clock.now()),
        status=Follow.ACTIVE,
    )
    if f is None:
        return {"userid": user.userid, "external_userid": ext.external_userid, "added": False, "welcome_code": None}
    code = emit_add(f, user, "add_external_contact")
    return {"userid": user.userid, "external_userid": ext.external_userid, "added": True, "welcome_code": code}


@action("confirm_add", schemas.Pair)
def confirm_add(body: dict) -> dict:
    """The employee adds back a customer who added them through a skip-verify way (used when rule
    ``employee_confirms_half_add_immediately`` is False)."""
    user = active_employee(body.get("userid"))
    f = Follow.objects.filter(
        userid=user.userid, external_userid=body.get("external_userid"), status=Follow.HALF
    ).first()
    if f is None:
        raise ControlError("no half-added relation for this pair")
    code = confirm_half(f, user)
    return {"userid": f.userid, "external_userid": f.external_userid, "welcome_code": code}


@action("delete", schemas.Delete)
def delete(body: dict) -> dict:
    """End a relation. by "customer": the customer deleted the employee → del_follow_user
    (one-way; status DELETED_BY_CUSTOMER). by "employee": the employee deleted the customer →
    del_external_contact (status DELETED_BY_USER)."""
    by = body.get("by", "customer")
    f = Follow.objects.filter(userid=body.get("userid"), external_userid=body.get("external_userid")).first()
    if by == "customer":
        if f is None or f.status not in (Follow.ACTIVE, Follow.HALF):
            raise ControlError("the customer does not have this employee")
        f.status = Follow.DELETED_BY_CUSTOMER
        change = "del_follow_user"
    elif by == "employee":
        if f is None or f.status not in (Follow.ACTIVE, Follow.HALF, Follow.DELETED_BY_CUSTOMER):
            raise ControlError("the employee does not hold this customer")
        f.status = Follow.DELETED_BY_USER
        change = "del_external_contact"
    else:
        raise ControlError('by must be "customer" or "employee"')
    f.status_time = clock.now()
    f.save(update_fields=["status", "status_time"])
    emit("change_external_contact", change, UserID=f.userid, ExternalUserID=f.external_userid)
    return {"userid": f.userid, "external_userid": f.external_userid, "event": change}


@action("chat", schemas.Pair)
def chat(body: dict) -> dict:
    """The employee and the customer start chatting: the welcome code can no longer be used
    (41051 "externaluser has started chatting") and later adds carry none."""
    f = Follow.objects.filter(userid=body.get("userid"), external_userid=body.get("external_userid")).first()
    if f is None:
        raise ControlError("no relation for this pair")
    f.chatted = True
    f.save(update_fields=["chatted"])
    return {"userid": f.userid, "external_userid": f.external_userid}


@action("customer/edit", schemas.CustomerEdit)
def customer_edit(body: dict) -> dict:
    """An employee edits a customer in the WeCom client (remark, description, company, mobiles,
    corp tags, personal tags) → edit_external_contact (no diff; the app re-reads with get)."""
    f = Follow.objects.filter(
        userid=body.get("userid"), external_userid=body.get("external_userid"), status__in=visible_statuses()
    ).first()
    if f is None:
        raise ControlError("the employee does not hold this customer")
    fields = []
    for src, dst in (
        ("remark", "remark"),
        ("description", "description"),
        ("remark_corp_name", "remark_corp_name"),
        ("remark_company", "remark_corp_name"),
        ("remark_mobiles", "remark_mobiles"),
        ("personal_tags", "personal_tags"),
    ):
        if src in body:
            setattr(f, dst, body[src])
            fields.append(dst)
    add = body.get("add_tag") or []
    remove = set(body.get("remove_tag") or [])
    if add or remove:
        known = live_tags(add)
        missing = [t for t in add if t not in known]
        if missing:
            raise ControlError(f"unknown tags {missing}")
        tags = [t for t in f.tag_ids if t not in remove]
        tags += [t for t in add if t not in tags]
        f.tag_ids = tags
        fields.append("tag_ids")
    if not fields:
        raise ControlError("nothing to edit")
    f.save(update_fields=sorted(set(fields)))
    emit("change_external_contact", "edit_external_contact", UserID=f.userid, ExternalUserID=f.external_userid)
    return {"userid": f.userid, "external_userid": f.external_userid}
