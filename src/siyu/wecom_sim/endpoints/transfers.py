"""Customer and group transfers (在职继承 / 离职继承, part 2 §3).

A customer transfer only *starts* with the API call (per-customer ``errcode`` 0): the customer is
notified and the takeover happens automatically 24 h later unless the customer refuses (R10).
The ``@on_tick`` job ``settle_due_transfers`` does the takeover: status 1, or status 4 with a
``transfer_fail`` callback (customer_limit_exceed) when the takeover employee is at capacity.
``/sim/transfer/refuse`` is the customer tapping refuse: status 3 and ``transfer_fail``
(customer_refused). Group transfers are immediate and emit ``change_external_chat`` /
``update`` / ``change_owner``.

Employees leave through ``/sim/employee/resign`` (org area): User.status 5, dimission_time, their
groups GroupChat.status 1, their relations kept ACTIVE as unassigned (待分配).
"""

from __future__ import annotations

from typing import Any

from siyu.wecom_sim import clock, rules, schemas
from siyu.wecom_sim.callbacks import emit
from siyu.wecom_sim.control import ControlError, action, on_tick
from siyu.wecom_sim.endpoints._paging import (
    decode_cursor,
    encode_cursor,
    page_limit,
    paginate,
)
from siyu.wecom_sim.endpoints.mass import dedup, str_list
from siyu.wecom_sim.framework import SimRequest, WeComError, endpoint
from siyu.wecom_sim.models import (
    ExternalContact,
    Follow,
    GroupChat,
    GroupMember,
    GroupTransfer,
    Transfer,
    User,
)

# Who the takeover employee's new relation says added the customer: 202 = 管理员/负责人分配
# (assigned by an admin or supervisor), oper_userid = the handover employee (unverified which
# userid WeCom puts there for an API transfer).
TRANSFER_ADD_WAY = 202


def _takeover_user(userid: Any) -> User:
    """The takeover employee: active, with the customer-contact function (else 40003)."""
    if not userid:
        raise WeComError(41009)
    u = User.objects.filter(userid=userid).first() if isinstance(userid, str) else None
    if u is None or u.status != User.STATUS_ACTIVE or not u.contact_enabled:
        raise WeComError(40003, "invalid takeover_userid: not an active member with the customer-contact function")
    return u


def _handover_user(userid: Any) -> User:
    if not userid:
        raise WeComError(41009)
    u = User.objects.filter(userid=userid).first() if isinstance(userid, str) else None
    if u is None:
        raise WeComError(40003, "invalid handover_userid")
    return u


def _success_msg(b: dict) -> str:
    """transfer_success_msg: a string of at most rules.transfer_success_msg_max_len characters."""
    r = rules.get()
    msg = b.get("transfer_success_msg") or ""
    if not isinstance(msg, str) or len(msg) > r.transfer_success_msg_max_len:
        raise WeComError(40058, f"invalid transfer_success_msg: at most {r.transfer_success_msg_max_len} characters")
    return msg


def _resigned_too_long_ago(u: User, now: int) -> bool:
    max_age = rules.get().resigned_max_age_days
    return bool(max_age and u.dimission_time and u.dimission_time < now - max_age * 86400)


def check_customer(kind: str, handover: User, takeover: User, external_userid: Any, now: int) -> int:
    """The per-customer errcode of a transfer request (0 = the transfer can start)."""
    r = rules.get()
    if (
        not isinstance(external_userid, str)
        or not ExternalContact.objects.filter(external_userid=external_userid).exists()
    ):
        return 40096
    if kind == Transfer.RESIGNED and handover.status != User.STATUS_LEFT:
        return 40097
    if handover.userid == takeover.userid:
        return 40130
    if not Follow.objects.filter(
        userid=handover.userid, external_userid=external_userid, status=Follow.ACTIVE
    ).exists():
        return 40131
    if kind == Transfer.RESIGNED and _resigned_too_long_ago(handover, now):
        # Resigned transfers need the member to have left within the last year (doc 94081). No
        # errcode is documented for that; past a year the relations are no longer the departed
        # member's to hand over, so the emulator answers 40131 (unverified).
        return 40131
    if Transfer.objects.filter(external_userid=external_userid, status=2).exists():
        return 40129
    if kind == Transfer.ONJOB:
        # doc 96325 (2023-12-01): "each customer of an on-job member can be transferred at most 2
        # times within 90 natural days"; the errmsg of 40128 words it "once per 90 days, at most
        # twice". Read: count the on-job transfers of this customer started within the window that
        # moved it or are moving it (accepted or waiting); a refused transfer (3) or one that hit
        # the takeover's capacity (4) left the customer where it was and does not count.
        since = now - r.transfer_window_days * 86400
        recent = Transfer.objects.filter(
            external_userid=external_userid, kind=Transfer.ONJOB, start_time__gt=since, status__in=(1, 2)
        ).count()
        if recent >= r.onjob_transfers_per_90d:
            return 40128
    return 0


def _start(req: SimRequest, kind: str) -> dict:
    b = req.body
    r = rules.get()
    handover = _handover_user(b.get("handover_userid"))
    takeover = _takeover_user(b.get("takeover_userid"))
    if kind == Transfer.ONJOB and handover.status == User.STATUS_LEFT:
        raise WeComError(40003, "invalid handover_userid: the member has resigned, use resigned/transfer_customer")
    ext_ids = str_list(b.get("external_userid"), "external_userid")
    if not ext_ids:
        raise WeComError(41035)
    if len(ext_ids) > r.transfer_max_per_call:
        raise WeComError(40058, f"invalid external_userid: at most {r.transfer_max_per_call} per call")
    msg = _success_msg(b) if kind == Transfer.ONJOB else ""
    # 40099 (takeover at its customer cap) is not checked here: the takeover happens 24 h later and
    # a takeover at capacity then shows as status 4 with a transfer_fail callback (transfer_result
    # doc; part 2 §3.7). Only the immediate legacy externalcontact/transfer answers 40099.
    out = []
    for x in ext_ids:
        code = check_customer(kind, handover, takeover, x, req.now)
        if code == 0:
            Transfer.objects.create(
                kind=kind,
                handover_userid=handover.userid,
                takeover_userid=takeover.userid,
                external_userid=x,
                status=2,
                start_time=req.now,
                takeover_time=req.now + r.transfer_accept_after_s,
                transfer_success_msg=msg,
            )
        out.append({"external_userid": x, "errcode": code})
    return {"customer": out}


@endpoint("externalcontact/transfer_customer", methods=("POST",))
def transfer_customer(req: SimRequest) -> dict:
    """分配在职成员的客户 (doc 96325, R10/R11)."""
    return _start(req, Transfer.ONJOB)


@endpoint("externalcontact/resigned/transfer_customer", methods=("POST",))
def resigned_transfer_customer(req: SimRequest) -> dict:
    """分配离职成员的客户 (doc 94081, R12): no transfer_success_msg, handover must have resigned."""
    return _start(req, Transfer.RESIGNED)


# --- the takeover -----------------------------------------------------------------------------
def at_capacity(takeover: str) -> bool:
    u = User.objects.filter(userid=takeover).first()
    cap = u.customer_cap if u else 0
    return Follow.objects.filter(userid=takeover, status=Follow.ACTIVE).count() >= cap


def take_over(t: Transfer, at: int) -> None:
    """Move the customer: the old relation ends (TRANSFERRED), the takeover employee gets an ACTIVE
    one. Callbacks: del_external_contact with Source DELETE_BY_TRANSFER for an on-job handover
    only (part 3 §2.1 describes that Source for 在职继承; a departed member's relations end with the
    member and WeCom sends no delete for them), and add_external_contact for the takeover unless
    they were already friends or the customer returns to an employee who once transferred it away
    (part 2 §3.1)."""
    old = Follow.objects.filter(userid=t.handover_userid, external_userid=t.external_userid).first()
    mine = Follow.objects.filter(userid=t.takeover_userid, external_userid=t.external_userid).first()
    already_friend = mine is not None and mine.status == Follow.ACTIVE
    returning = mine is not None and mine.status == Follow.TRANSFERRED
    if old is not None and old.status == Follow.ACTIVE:
        old.status, old.status_time = Follow.TRANSFERRED, at
        old.save(update_fields=["status", "status_time"])
        if t.kind == Transfer.ONJOB:
            emit(
                "change_external_contact",
                "del_external_contact",
                UserID=t.handover_userid,
                ExternalUserID=t.external_userid,
                Source="DELETE_BY_TRANSFER",
            )
    if not already_friend:
        # WeCom keeps the remark, description, company, mobiles and corp tags of the relation when it
        # moves to the takeover (the product docs say the customer's "资料" carry over; unverified
        # field by field). Personal tags belong to the handover and stay behind; state is the
        # channel of the original add, which an inherited relation did not use.
        carried = {
            "remark": old.remark if old else "",
            "description": old.description if old else "",
            "remark_corp_name": old.remark_corp_name if old else "",
            "remark_mobiles": list(old.remark_mobiles) if old else [],
            "tag_ids": list(old.tag_ids) if old else [],
        }
        fields = dict(
            carried,
            createtime=at,
            oper_userid=t.handover_userid,
            add_way=TRANSFER_ADD_WAY,
            state="",
            personal_tags=[],
            status=Follow.ACTIVE,
            status_time=at,
            chatted=False,
        )
        if mine is None:
            Follow.objects.create(userid=t.takeover_userid, external_userid=t.external_userid, **fields)
        else:
            for k, v in fields.items():
                setattr(mine, k, v)
            mine.save()
        if not returning:
            emit(
                "change_external_contact",
                "add_external_contact",
                UserID=t.takeover_userid,
                ExternalUserID=t.external_userid,
            )
    t.status, t.takeover_time = 1, at
    t.save(update_fields=["status", "takeover_time"])


def fail_transfer(t: Transfer, status: int, reason: str) -> None:
    """The transfer ends without a takeover: ``status`` (3 refused, 4 takeover at capacity) and a
    transfer_fail callback with FailReason ``reason`` for the takeover employee."""
    t.status, t.takeover_time = status, 0
    t.save(update_fields=["status", "takeover_time"])
    emit(
        "change_external_contact",
        "transfer_fail",
        FailReason=reason,
        UserID=t.takeover_userid,
        ExternalUserID=t.external_userid,
    )


def settle(t: Transfer, at: int) -> None:
    """The 24 h are over: take over, or status 4 when the takeover employee is at capacity."""
    if not Follow.objects.filter(
        userid=t.handover_userid, external_userid=t.external_userid, status=Follow.ACTIVE
    ).exists():
        # The customer deleted the handover employee (or was otherwise removed) during the 24 h:
        # there is no relation left to hand over. Read as the customer declining (status 3 and
        # customer_refused; unverified — the docs do not cover this case).
        fail_transfer(t, 3, "customer_refused")
        return
    already_friend = Follow.objects.filter(
        userid=t.takeover_userid, external_userid=t.external_userid, status=Follow.ACTIVE
    ).exists()
    if not already_friend and at_capacity(t.takeover_userid):
        fail_transfer(t, 4, "customer_limit_exceed")
        return
    take_over(t, at)


@on_tick
def settle_due_transfers(now: int) -> None:
    after = rules.get().transfer_accept_after_s
    for t in Transfer.objects.filter(status=2, start_time__lte=now - after).order_by("start_time", "id")[:500]:
        settle(t, t.start_time + after)


# --- results ----------------------------------------------------------------------------------
def _result(req: SimRequest, kind: str) -> dict:
    b = req.body
    handover, takeover = b.get("handover_userid"), b.get("takeover_userid")
    if not handover or not takeover:
        raise WeComError(41009)
    latest: dict[str, Transfer] = {}
    for t in Transfer.objects.filter(kind=kind, handover_userid=handover, takeover_userid=takeover).order_by("id"):
        latest.pop(t.external_userid, None)  # keep the latest transfer of each customer, in order
        latest[t.external_userid] = t
    page, nxt = paginate(list(latest.values()), b.get("cursor"), rules.get().transfer_result_page_size)
    customers = []
    for t in page:
        # status 2: the takeover_time is the future automatic takeover (start + 24 h); 0 when refused
        # or at capacity.
        customers.append(
            {
                "external_userid": t.external_userid,
                "status": t.status,
                "takeover_time": t.takeover_time if t.status in (1, 2) else 0,
            }
        )
    return {"customer": customers, "next_cursor": nxt}


@endpoint("externalcontact/transfer_result", methods=("POST",))
def transfer_result(req: SimRequest) -> dict:
    """查询客户接替状态 (on-job): 1 accepted, 2 waiting, 3 refused, 4 takeover at capacity."""
    return _result(req, Transfer.ONJOB)


@endpoint("externalcontact/resigned/transfer_result", methods=("POST",))
def resigned_transfer_result(req: SimRequest) -> dict:
    return _result(req, Transfer.RESIGNED)


@endpoint("externalcontact/get_unassigned_list", methods=("POST",))
def get_unassigned_list(req: SimRequest) -> dict:
    """获取待分配的离职成员列表: customers of departed members not yet reassigned.

    A customer leaves the list once a resigned transfer is under way or done (unverified; part 2
    §3.4). Members who left more than a year ago are no longer listed (doc 94081)."""
    b = req.body
    r = rules.get()
    size = page_limit(b.get("page_size"), r.unassigned_max_page_size, r.unassigned_max_page_size)
    if b.get("cursor"):
        offset = decode_cursor(b.get("cursor"))
    else:
        try:
            page_id = int(b.get("page_id") or 0)
        except (TypeError, ValueError):
            raise WeComError(40058, "invalid page_id") from None
        if page_id < 0:
            raise WeComError(40058, "invalid page_id")
        offset = page_id * size
        if offset >= r.unassigned_max_offset:
            raise WeComError(40058, f"invalid page_id: page_id * page_size must be under {r.unassigned_max_offset}")
    now = req.now
    departed = [
        u
        for u in User.objects.filter(status=User.STATUS_LEFT).order_by("dimission_time", "userid")
        if not _resigned_too_long_ago(u, now)
    ]
    rows: list[tuple[str, str, int]] = []
    for u in departed:
        pending = set(
            Transfer.objects.filter(handover_userid=u.userid, status=2).values_list("external_userid", flat=True)
        )
        for x in (
            Follow.objects.filter(userid=u.userid, status=Follow.ACTIVE)
            .order_by("id")
            .values_list("external_userid", flat=True)
        ):
            if x not in pending:
                rows.append((u.userid, x, u.dimission_time or 0))
    page = rows[offset : offset + size]
    is_last = offset + size >= len(rows)
    return {
        "info": [{"handover_userid": h, "external_userid": x, "dimission_time": d} for h, x, d in page],
        "is_last": is_last,
        "next_cursor": "" if is_last else encode_cursor(offset + size),
    }


@endpoint("externalcontact/transfer", methods=("POST",))
def legacy_transfer(req: SimRequest) -> dict:
    """分配在职或离职成员的客户 (legacy, part 2 §3.6; wechatpy's ``transfer``): one customer, taken
    over at once. The same per-customer rules apply, answered as the call's errcode; a takeover
    at its customer cap is refused now with 40099."""
    b = req.body
    x = b.get("external_userid")
    if not x:
        raise WeComError(41035)
    handover = _handover_user(b.get("handover_userid"))
    takeover = _takeover_user(b.get("takeover_userid"))
    msg = _success_msg(b)
    kind = Transfer.RESIGNED if handover.status == User.STATUS_LEFT else Transfer.ONJOB
    code = check_customer(kind, handover, takeover, x, req.now)
    if code:
        raise WeComError(code)
    already_friend = Follow.objects.filter(userid=takeover.userid, external_userid=x, status=Follow.ACTIVE).exists()
    if not already_friend and at_capacity(takeover.userid):
        raise WeComError(40099)
    t = Transfer.objects.create(
        kind=kind,
        handover_userid=handover.userid,
        takeover_userid=takeover.userid,
        external_userid=x,
        status=2,
        start_time=req.now,
        takeover_time=req.now,
        transfer_success_msg=msg if kind == Transfer.ONJOB else "",
    )
    take_over(t, req.now)
    return {}


# --- group transfers --------------------------------------------------------------------------
def _group_request(req: SimRequest) -> tuple[list[str], User]:
    b = req.body
    r = rules.get()
    chat_ids = str_list(b.get("chat_id_list"), "chat_id_list")
    if not chat_ids:
        raise WeComError(40058, "chat_id_list missing")
    if len(chat_ids) > r.group_transfer_max_per_call:
        raise WeComError(40058, f"invalid chat_id_list: at most {r.group_transfer_max_per_call}")
    owner = b.get("new_owner")
    if not owner:
        raise WeComError(40058, "new_owner missing")
    return dedup(chat_ids), _takeover_user(owner)


def _daily_cap_reached(handover: str, takeover: str, now: int) -> bool:
    """≤ 300 groups a day from one owner to one new owner (part 2 §3.5, R13)."""
    cap = rules.get().group_transfer_daily_cap
    return (
        bool(cap)
        and GroupTransfer.objects.filter(
            handover_userid=handover, takeover_userid=takeover, at__gte=clock.day_start(now)
        ).count()
        >= cap
    )


def _change_owner(chat: GroupChat, new_owner: User, kind: str, now: int) -> None:
    old = chat.owner
    GroupTransfer.objects.create(
        kind=kind, chat_id=chat.chat_id, handover_userid=old, takeover_userid=new_owner.userid, at=now
    )
    chat.owner = new_owner.userid
    chat.admin_list = [u for u in chat.admin_list if u != new_owner.userid]
    if kind == GroupTransfer.ONJOB:
        chat.transfer_times = [t for t in chat.transfer_times if t > now - rules.get().transfer_window_days * 86400] + [
            now
        ]
    else:
        chat.status = 3  # 离职继承完成
    chat.save(update_fields=["owner", "admin_list", "transfer_times", "status"])
    if not GroupMember.objects.filter(chat=chat, userid=new_owner.userid).exists():
        # The new owner is brought into the group (a group is led from inside). No add_member event
        # is sent for it (unverified); the member version changes, so an app comparing versions on
        # the next member event re-reads the group.
        GroupMember.objects.create(
            chat=chat,
            userid=new_owner.userid,
            type=GroupMember.EMPLOYEE,
            join_time=now,
            join_scene=1,
            invitor=old,
            name=new_owner.name,
        )
        from siyu.wecom_sim.endpoints.groups import refresh_version

        refresh_version(chat)
    emit("change_external_chat", "update", ChatId=chat.chat_id, UpdateDetail="change_owner")


def _failed(chat_id: str, code: int) -> dict:
    err = WeComError(code)
    return {"chat_id": chat_id, "errcode": code, "errmsg": err.errmsg}


def _transfer_groups(req: SimRequest, kind: str, refusal) -> dict:
    """Give each group of the call to ``new_owner``, or list it in failed_chat_list with the errcode
    of the first rule it breaks: unknown 90501, dismissed 49008, then the rules of the transfer kind
    (``refusal(chat, new_owner, now)``: an errcode or 0), then the daily cap."""
    chat_ids, new_owner = _group_request(req)
    failed = []
    for cid in chat_ids:
        chat = GroupChat.objects.filter(chat_id=cid).first()
        if chat is None:
            code = 90501
        elif chat.dismissed:
            code = 49008
        else:
            code = refusal(chat, new_owner, req.now)
            if not code and _daily_cap_reached(chat.owner, new_owner.userid, req.now):
                # No errcode is documented for the daily cap; it is a frequency limit → 45009 (unverified).
                code = 45009
        if code:
            failed.append(_failed(cid, code))
        else:
            _change_owner(chat, new_owner, kind, req.now)
    return {"failed_chat_list": failed}


def _resigned_group_refusal(chat: GroupChat, new_owner: User, now: int) -> int:
    owner = User.objects.filter(userid=chat.owner).first()
    if owner is not None and owner.status != User.STATUS_LEFT:
        return 90500
    if chat.status == 2:
        return 90507
    return 0


def _onjob_group_refusal(chat: GroupChat, new_owner: User, now: int) -> int:
    r = rules.get()
    owner = User.objects.filter(userid=chat.owner).first()
    if owner is None or owner.status == User.STATUS_LEFT:
        return 90502
    if chat.owner == new_owner.userid:
        return 90504
    recent = [t for t in chat.transfer_times if t > now - r.transfer_window_days * 86400]
    if len(recent) >= r.group_onjob_transfers_per_90d:
        # No group-specific errcode is documented; 40128 "transfer too frequently (at most twice
        # in 90 days)" states this very rule for customers (unverified for groups).
        return 40128
    return 0


@endpoint("externalcontact/groupchat/transfer", methods=("POST",))
def groupchat_transfer(req: SimRequest) -> dict:
    """分配离职成员的客户群: only groups whose owner resigned (else 90500); done at once (status 3)."""
    return _transfer_groups(req, GroupTransfer.RESIGNED, _resigned_group_refusal)


@endpoint("externalcontact/groupchat/onjob_transfer", methods=("POST",))
def groupchat_onjob_transfer(req: SimRequest) -> dict:
    """分配在职成员的客户群: owner resigned → 90502; same owner → 90504; each group at most 2 times in
    90 days; ≤ 300 a day from one owner to one new owner."""
    return _transfer_groups(req, GroupTransfer.ONJOB, _onjob_group_refusal)


# --- control actions --------------------------------------------------------------------------
@action("transfer/refuse", schemas.TransferRefuse)
def transfer_refuse(body: dict) -> dict:
    """The customer taps refuse (暂不添加) within the 24 h: status 3 and transfer_fail
    (customer_refused, UserID = the takeover employee; part 2 §3.7)."""
    x = body.get("external_userid")
    t = Transfer.objects.filter(external_userid=x, status=2).order_by("-id").first()
    if t is None:
        raise ControlError(f"no transfer of {x!r} is waiting")
    now = clock.now()
    if t.start_time + rules.get().transfer_accept_after_s <= now:
        raise ControlError("the 24 hours have passed: the transfer is taken over on the next tick")
    fail_transfer(t, 3, "customer_refused")
    return {"external_userid": x, "takeover_userid": t.takeover_userid, "status": 3}


@action("transfer/list", schemas.TransferList)
def transfer_list(body: dict) -> dict:
    qs = Transfer.objects.order_by("id")
    for k in ("external_userid", "handover_userid", "takeover_userid", "kind", "status"):
        if body.get(k) not in (None, ""):
            qs = qs.filter(**{k: body[k]})
    return {
        "transfers": [
            {
                "id": t.id,
                "kind": t.kind,
                "handover_userid": t.handover_userid,
                "takeover_userid": t.takeover_userid,
                "external_userid": t.external_userid,
                "status": t.status,
                "start_time": t.start_time,
                "takeover_time": t.takeover_time,
                "transfer_success_msg": t.transfer_success_msg,
            }
            for t in qs[: int(body.get("limit", 1000))]
        ]
    }
