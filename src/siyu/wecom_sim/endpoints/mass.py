"""Mass messages (企业群发): tasks the employees confirm, per-recipient results, receive quotas.

An API call only creates a task (part 2 §1, R2): nothing reaches a customer until the sender
confirms it in the client. Here the simulated employees confirm through the control API
(``/sim/mass/confirm``) or automatically (``/sim/mass/auto``, handled by an ``@on_tick`` job).
When an employee confirms, each recipient already at its receive quota gets status 3, one who is no
longer a friend status 2, the rest status 1 (R3). ``quota_left_many`` is the one quota check, used
for customer and group sends alike.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import Count

from siyu.wecom_sim import clock, rules, schemas
from siyu.wecom_sim.control import ControlError, action, on_tick
from siyu.wecom_sim.endpoints._paging import page_limit, paginate
from siyu.wecom_sim.endpoints.media import check_media
from siyu.wecom_sim.framework import SimRequest, WeComError, check_bytes, endpoint, new_id
from siyu.wecom_sim.models import (
    ExternalContact,
    Follow,
    GroupChat,
    GroupMsg,
    GroupMsgResult,
    GroupMsgTask,
    SimState,
    Tag,
    TagGroup,
    User,
)

CHUNK = 500
ATTACHMENT_TYPES = ("image", "link", "miniprogram", "video", "file")


def chunks(items: list, n: int = CHUNK) -> Iterable[list]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def dedup(items: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for x in items:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


def str_list(value: Any, what: str) -> list[str]:
    if value in (None, ""):
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise WeComError(40058, f"invalid {what}: must be a list of strings")
    return value


def int_field(value: Any, what: str, required: bool = True) -> int | None:
    if value in (None, ""):
        if required:
            raise WeComError(40058, f"{what} missing")
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise WeComError(40058, f"invalid {what}") from None


def active_user(userid: Any) -> User:
    """An employee who can act (not departed, not disabled): else 40003 invalid userid."""
    if not userid or not isinstance(userid, str):
        raise WeComError(40003)
    u = User.objects.filter(userid=userid).first()
    if u is None or u.status != User.STATUS_ACTIVE:
        raise WeComError(40003)
    return u


def active_userids() -> set[str]:
    return set(User.objects.filter(status=User.STATUS_ACTIVE).values_list("userid", flat=True))


def active_friends(userid: str, external_userids: list[str]) -> set[str]:
    """Those of ``external_userids`` who are still the employee's customers (an ACTIVE relation)."""
    out: set[str] = set()
    for part in chunks(external_userids):
        out.update(
            Follow.objects.filter(userid=userid, external_userid__in=part, status=Follow.ACTIVE).values_list(
                "external_userid", flat=True
            )
        )
    return out


def list_window(b: dict, max_span_days: int, too_long: str) -> tuple[int, int, int]:
    """(start_time, end_time, filter_type) of a list call (get_groupmsg_list_v2, get_moment_list):
    end not before start and at most ``max_span_days`` after it (else 40058 ``too_long``);
    filter_type 0 corp-created, 1 employee-created, 2 (default) both."""
    start = int_field(b.get("start_time"), "start_time")
    end = int_field(b.get("end_time"), "end_time")
    if end < start:
        raise WeComError(40058, "invalid time range: end_time is before start_time")
    if end - start > max_span_days * 86400:
        raise WeComError(40058, too_long)
    filter_type = int_field(b.get("filter_type"), "filter_type", required=False)
    filter_type = 2 if filter_type is None else filter_type
    if filter_type not in (0, 1, 2):
        raise WeComError(40058, "invalid filter_type")
    return start, end, filter_type


def by_creator(qs, b: dict, filter_type: int):
    """``qs`` narrowed to the posts of ``creator`` (employee-created ones) and to ``filter_type``."""
    if b.get("creator"):
        qs = qs.filter(creator=b["creator"], create_type=1)
    if filter_type in (0, 1):
        qs = qs.filter(create_type=filter_type)
    return qs


# --- message content --------------------------------------------------------------------------
def validate_text(text: Any, max_bytes: int) -> dict | None:
    if text in (None, "", {}):
        return None
    if not isinstance(text, dict):
        raise WeComError(40058, "invalid text")
    content = text.get("content")
    if content in (None, ""):
        return None
    if not isinstance(content, str):
        raise WeComError(40058, "invalid text.content")
    check_bytes(content, max_bytes, "text.content")
    return {"content": content}


def validate_attachments(attachments: Any, now: int, max_count: int) -> list[dict]:  # noqa: C901 - one check per attachment type, as the doc lists them
    """Attachments of a mass message (doc 92135): ≤ 9; each ``{"msgtype": t, t: {...}}`` with t in
    image / link / miniprogram / video / file; the object must match its msgtype."""
    if attachments in (None, ""):
        return []
    if not isinstance(attachments, list):
        raise WeComError(40058, "invalid attachments")
    if len(attachments) > max_count:
        raise WeComError(40058, f"invalid attachments: at most {max_count}")
    out = []
    for a in attachments:
        if not isinstance(a, dict):
            raise WeComError(40058, "invalid attachments")
        t = a.get("msgtype")
        if t not in ATTACHMENT_TYPES:
            raise WeComError(41065)
        obj = a.get(t)
        if not isinstance(obj, dict) or not obj:
            raise WeComError(40058, f"invalid attachment: msgtype {t} needs a {t} object")
        if t == "image":
            if obj.get("media_id"):
                check_media(obj["media_id"], now, kind="image")  # media_id wins over pic_url
            elif not obj.get("pic_url"):
                raise WeComError(41006)
        elif t == "link":
            if not obj.get("title"):
                raise WeComError(41016)
            if not obj.get("url"):
                raise WeComError(41010)
            check_bytes(obj.get("title"), 128, "link.title")
            check_bytes(obj.get("desc"), 512, "link.desc")
        elif t == "miniprogram":
            if not obj.get("title"):
                raise WeComError(41016)
            check_bytes(obj.get("title"), 64, "miniprogram.title")
            if not obj.get("appid"):
                raise WeComError(90200)
            if not obj.get("page"):
                raise WeComError(40058, "miniprogram.page missing")
            if not obj.get("pic_media_id"):
                raise WeComError(41006)
            check_media(obj["pic_media_id"], now, kind="image")
        elif t in ("video", "file"):
            if not obj.get("media_id"):
                raise WeComError(41006)
            check_media(obj["media_id"], now, kind=t)
        out.append({"msgtype": t, t: obj})
    return out


def legacy_attachments(body: dict) -> list[dict]:
    """The pre-2021 add_msg_template shape (wechatpy's docstring) put one ``image``, ``link`` and
    ``miniprogram`` at the top level; they are read as attachments (compatibility: unverified)."""
    out = []
    for t in ("image", "link", "miniprogram"):
        if isinstance(body.get(t), dict) and body[t]:
            out.append({"msgtype": t, t: body[t]})
    return out


def validate_tag_filter(tag_filter: Any) -> list[set[str]]:
    """tag_filter ``{"group_list": [{"tag_list": [...]}, ...]}`` → one set per entry.

    A customer matches when it has at least one tag of every entry (OR inside an entry, AND
    across entries; doc 92135). Unknown or deleted tags → 40068; > 100 tags in an entry → 40058."""
    if tag_filter in (None, "", {}):
        return []
    if not isinstance(tag_filter, dict) or not isinstance(tag_filter.get("group_list", []), list):
        raise WeComError(40058, "invalid tag_filter")
    groups = []
    limit = rules.get().msg_template_max_tags_per_group
    for entry in tag_filter.get("group_list") or []:
        tags = str_list((entry or {}).get("tag_list") if isinstance(entry, dict) else None, "tag_filter.tag_list")
        if len(tags) > limit:
            raise WeComError(40058, f"invalid tag_filter: at most {limit} tags per group_list entry")
        if tags:
            groups.append(set(tags))
    wanted = set().union(*groups) if groups else set()
    if wanted:
        live = set(Tag.objects.filter(id__in=wanted, deleted=False).values_list("id", flat=True))
        deleted_groups = set(TagGroup.objects.filter(deleted=True).values_list("group_id", flat=True))
        if deleted_groups:
            live -= set(Tag.objects.filter(id__in=live, group_id__in=deleted_groups).values_list("id", flat=True))
        if wanted - live:
            raise WeComError(40068, f"invalid tagid: {min(wanted - live)}")
    return groups


def tags_match(tag_ids: Iterable[str], groups: list[set[str]]) -> bool:
    have = set(tag_ids)
    return all(have & g for g in groups)


# --- simulated employees' responses -----------------------------------------------------------
AUTO_KEY = "reach_auto"


def auto_config() -> dict:
    row = SimState.objects.filter(key=AUTO_KEY).first()
    return row.value if row else {"probability": 0.0, "delay_s": 0, "seed": 0}


def auto_confirm_at(cfg: dict, key: str, userid: str, created: int) -> int | None:
    """When a simulated employee confirms a new mass message or Moment task, or None for never.

    Deterministic per (seed, message, employee): with probability ``probability`` the employee
    confirms ``delay_s`` × U(0.5, 1.5) after creation."""
    p = float(cfg.get("probability") or 0)
    if p <= 0:
        return None
    rng = random.Random(f"{cfg.get('seed', 0)}:{key}:{userid}")
    if rng.random() >= p:
        return None
    delay = float(cfg.get("delay_s") or 0)
    return created + round(delay * rng.uniform(0.5, 1.5)) if delay > 0 else created


# --- receive quotas (R3) ----------------------------------------------------------------------
def _norm_kind(kind: str) -> str:
    if kind in ("single", "customer", "external_userid"):
        return "single"
    if kind in ("group", "chat", "chat_id"):
        return "group"
    raise ValueError(f"unknown quota kind {kind!r}")


def quota_period(kind: str, at: int) -> tuple[int, int, int, str]:
    """(period start, period end, cap, mode) of the receive quota in force at ``at`` (China time).

    Modes (rules customer_msg_quota_mode / group_msg_quota_mode, doc 92135): days_in_month (as many
    per natural month as the month has days), weekly_7 (7 per natural week), daily_1 (1 per day),
    monthly_4 (the legacy 4 per natural month)."""
    r = rules.get()
    mode = r.customer_msg_quota_mode if _norm_kind(kind) == "single" else r.group_msg_quota_mode
    if mode == "days_in_month":
        start = clock.month_start(at)
        return start, start + clock.days_in_month(at) * 86400, clock.days_in_month(at), mode
    if mode == "monthly_4":
        start = clock.month_start(at)
        return start, start + clock.days_in_month(at) * 86400, 4, mode
    if mode == "weekly_7":
        start = clock.week_start(at)
        return start, start + 7 * 86400, 7, mode
    if mode == "daily_1":
        start = clock.day_start(at)
        return start, start + 86400, 1, mode
    raise ValueError(f"unknown mass-message quota mode {mode!r}")


def quota_left_many(kind: str, recipient_ids: list[str], at: int) -> dict[str, int]:
    """Remaining receives in the current period for each recipient: the cap minus the mass messages
    (corp- and employee-created) delivered to it (status 1) in the period."""
    kind = _norm_kind(kind)
    start, end, cap, _ = quota_period(kind, at)
    field = "external_userid" if kind == "single" else "chat_id"
    counts: dict[str, int] = {}
    ids = dedup(recipient_ids)
    for part in chunks(ids):
        rows = (
            GroupMsgResult.objects.filter(**{f"{field}__in": part}, status=1, send_time__gte=start, send_time__lt=end)
            .values(field)
            .annotate(n=Count("id"))
        )
        for row in rows:
            counts[row[field]] = row["n"]
    return {i: max(0, cap - counts.get(i, 0)) for i in ids}


def receive_quota_left(kind: str, recipient_id: str, now: int) -> int:
    return quota_left_many(kind, [recipient_id], now)[recipient_id]


# --- confirming a task ------------------------------------------------------------------------
def confirm_task(task: GroupMsgTask, at: int) -> dict:
    """The employee sends: settle every recipient of the task (R3) and mark the task sent."""
    msg = task.msg
    results = list(GroupMsgResult.objects.filter(msg=msg, userid=task.userid, status=0).order_by("id"))
    if msg.chat_type == "single":
        ids = [r.external_userid for r in results]
        reachable = active_friends(task.userid, ids)
        key = "external_userid"
    else:
        ids = [r.chat_id for r in results]
        reachable = set()
        for part in chunks(ids):
            reachable.update(
                GroupChat.objects.filter(chat_id__in=part, dismissed=False).values_list("chat_id", flat=True)
            )
        key = "chat_id"
    left = quota_left_many(msg.chat_type, [i for i in ids if i in reachable], at)
    counts = {1: 0, 2: 0, 3: 0}
    for r in results:
        rid = getattr(r, key)
        if rid not in reachable:
            r.status = 2  # no longer a friend (or the group is gone)
        elif left.get(rid, 0) <= 0:
            r.status = 3  # already received its quota of mass messages this period
        else:
            r.status, r.send_time = 1, at
            left[rid] -= 1
        counts[r.status] += 1
    GroupMsgResult.objects.bulk_update(results, ["status", "send_time"], batch_size=CHUNK)
    task.status, task.send_time, task.confirm_at = 2, at, None
    task.save(update_fields=["status", "send_time", "confirm_at"])
    return {"sent": counts[1], "not_friend": counts[2], "over_quota": counts[3]}


@on_tick
def confirm_due_tasks(now: int) -> None:
    due = (
        GroupMsgTask.objects.filter(
            status=0, ignored=False, confirm_at__isnull=False, confirm_at__lte=now, msg__cancelled=False
        )
        .select_related("msg")
        .order_by("confirm_at", "id")[:200]
    )
    for task in due:
        confirm_task(task, task.confirm_at)


# --- endpoints --------------------------------------------------------------------------------
def get_msg(msgid: Any) -> GroupMsg:
    if not msgid:
        raise WeComError(41046)
    msg = GroupMsg.objects.filter(msgid=msgid).first() if isinstance(msgid, str) else None
    if msg is None:
        raise WeComError(41047)
    return msg


def _resolve_single(body: dict, sender: str, tag_groups: list[set[str]]) -> tuple[dict[str, list[str]], list[str]]:  # noqa: C901 - one check per WeCom rule, in the order WeCom reports them
    """(customers per sending employee, fail_list) for a customer mass message."""
    r = rules.get()
    # The limit counts the list as sent: the doc (92135) caps the parameter at 10,000 ids and says
    # nothing of repeats, so 10,001 entries are refused even when some repeat (unverified).
    raw_ids = str_list(body.get("external_userid"), "external_userid")
    if len(raw_ids) > r.msg_template_max_recipients:
        raise WeComError(40058, f"invalid external_userid: at most {r.msg_template_max_recipients}")
    ext_ids = dedup(raw_ids)
    if not ext_ids and not sender:
        raise WeComError(40058, "external_userid and sender cannot both be empty")
    per_sender: dict[str, list[str]] = defaultdict(list)
    fail: list[str] = []
    if sender:
        follows: dict[str, Follow] = {}
        if ext_ids:
            for part in chunks(ext_ids):
                for f in Follow.objects.filter(userid=sender, external_userid__in=part, status=Follow.ACTIVE):
                    follows[f.external_userid] = f
            fail = [x for x in ext_ids if x not in follows]
            order = [x for x in ext_ids if x in follows]
        else:  # only sender: every customer of that employee
            for f in Follow.objects.filter(userid=sender, status=Follow.ACTIVE).order_by("id"):
                follows[f.external_userid] = f
            order = list(follows)
        for x in order:
            if tags_match(follows[x].tag_ids, tag_groups):
                per_sender[sender].append(x)
        return per_sender, fail
    # No sender: each customer's task goes to the employee who last interacted with it (doc 92135,
    # 仅会推送给最后跟客户进行聊天互动的企业成员). The emulator has no chat log, so "last
    # interacted" is the most recently added active follower. A tag filter then looks at the
    # customer's corp tags from all its active relations.
    active = active_userids()
    best: dict[str, Follow] = {}
    tags: dict[str, set[str]] = defaultdict(set)
    for part in chunks(ext_ids):
        for f in Follow.objects.filter(external_userid__in=part, status=Follow.ACTIVE):
            if f.userid not in active:
                continue
            tags[f.external_userid].update(f.tag_ids)
            cur = best.get(f.external_userid)
            if cur is None or (f.createtime, f.id) > (cur.createtime, cur.id):
                best[f.external_userid] = f
    fail = [x for x in ext_ids if x not in best]
    for x in ext_ids:
        if x in best and tags_match(tags[x], tag_groups):
            per_sender[best[x].userid].append(x)
    return per_sender, fail


def _resolve_group(body: dict, sender: str) -> dict[str, list[str]]:
    r = rules.get()
    raw_chats = str_list(body.get("chat_id_list"), "chat_id_list")  # counted as sent, like external_userid
    chat_ids = dedup(raw_chats)
    if len(raw_chats) > r.msg_template_max_chats:
        raise WeComError(40058, f"invalid chat_id_list: at most {r.msg_template_max_chats}")
    qs = GroupChat.objects.filter(owner=sender, dismissed=False)
    if chat_ids:
        # Only the sender's own groups can be sent to (群主发送); others are left out.
        owned = set(qs.filter(chat_id__in=chat_ids).values_list("chat_id", flat=True))
        chats = [c for c in chat_ids if c in owned]
    else:
        chats = list(qs.order_by("create_time", "chat_id").values_list("chat_id", flat=True))
    return {sender: chats} if chats else {}


# One transaction: the ticker (confirm_due_tasks) must never see a task before its results, or an
# employee who confirms at once (delay 0) would settle only the rows written so far.
@transaction.atomic
def create_group_msg(
    chat_type: str,
    per_sender: dict[str, list[str]],
    now: int,
    text: dict | None,
    attachments: list[dict],
    creator: str = "",
    create_type: int = 0,
    request: dict | None = None,
    auto: bool = True,
) -> GroupMsg:
    msg = GroupMsg.objects.create(
        msgid=new_id("msg", 27),
        chat_type=chat_type,
        creator=creator,
        create_type=create_type,
        create_time=now,
        text=text,
        attachments=attachments,
        request=request or {},
    )
    cfg = auto_config() if auto else {}
    GroupMsgTask.objects.bulk_create(
        [
            GroupMsgTask(
                msg=msg, userid=u, status=0, confirm_at=auto_confirm_at(cfg, msg.msgid, u, now) if auto else None
            )
            for u in per_sender
        ]
    )
    key = "external_userid" if chat_type == "single" else "chat_id"
    GroupMsgResult.objects.bulk_create(
        [GroupMsgResult(msg=msg, userid=u, status=0, **{key: rid}) for u, rids in per_sender.items() for rid in rids],
        batch_size=CHUNK,
    )
    return msg


@endpoint("externalcontact/add_msg_template", methods=("POST",))
def add_msg_template(req: SimRequest) -> dict:
    """创建企业群发 (doc 92135, R1)."""
    b = req.body
    r = rules.get()
    chat_type = b.get("chat_type") or "single"
    if chat_type not in ("single", "group"):
        raise WeComError(86214)
    text = validate_text(b.get("text"), r.msg_template_text_max_bytes)
    raw_attachments = b.get("attachments")
    if raw_attachments in (None, "", []):
        raw_attachments = legacy_attachments(b)
    attachments = validate_attachments(raw_attachments, req.now, r.msg_template_max_attachments)
    if text is None and not attachments:
        raise WeComError(44004)
    sender = b.get("sender") or ""
    if sender:
        active_user(sender)
    if chat_type == "group":
        if not sender:
            raise WeComError(40058, "sender is required when chat_type is group")
        per_sender = _resolve_group(b, sender)
        fail: list[str] = []
    else:
        tag_groups = validate_tag_filter(b.get("tag_filter"))
        per_sender, fail = _resolve_single(b, sender, tag_groups)
    per_sender = {u: ids for u, ids in per_sender.items() if ids}
    if not per_sender:
        raise WeComError(41048)
    request = {k: b[k] for k in ("sender", "tag_filter", "allow_select") if k in b}
    msg = create_group_msg(chat_type, per_sender, req.now, text, attachments, request=request)
    return {"fail_list": fail, "msgid": msg.msgid}


def _msg_json(m: GroupMsg) -> dict:
    out: dict[str, Any] = {"msgid": m.msgid}
    if m.creator and m.create_type == 1:
        out["creator"] = m.creator  # omitted for messages created through the API
    # The doc's sample shows create_time as a string; peers read it as a Unix time (unverified).
    out["create_time"] = str(m.create_time)
    out["create_type"] = m.create_type
    if m.text:
        out["text"] = m.text
    if m.attachments:
        out["attachments"] = m.attachments
    return out


@endpoint("externalcontact/get_groupmsg_list_v2", methods=("POST",))
def get_groupmsg_list_v2(req: SimRequest) -> dict:
    """获取群发记录列表 (doc 93338, R5): span ≤ 1 month, limit default 50, max 100."""
    b = req.body
    r = rules.get()
    chat_type = b.get("chat_type")
    if not chat_type:
        raise WeComError(40058, "chat_type missing")
    if chat_type not in ("single", "group"):
        raise WeComError(86214)
    start, end, filter_type = list_window(
        b, r.groupmsg_list_max_span_days, "invalid time range: start_time and end_time at most one month apart"
    )
    limit = page_limit(b.get("limit"), r.groupmsg_list_default_limit, r.groupmsg_list_max_limit, over="default")
    qs = by_creator(
        GroupMsg.objects.filter(chat_type=chat_type, create_time__gte=start, create_time__lte=end), b, filter_type
    )
    page, nxt = paginate(qs.order_by("create_time", "msgid"), b.get("cursor"), limit)
    return {"next_cursor": nxt, "group_msg_list": [_msg_json(m) for m in page]}


@endpoint("externalcontact/get_groupmsg_task", methods=("POST",))
def get_groupmsg_task(req: SimRequest) -> dict:
    """获取群发成员发送任务列表: status 0 not sent / 2 sent; limit default 500, max 1000."""
    b = req.body
    r = rules.get()
    msg = get_msg(b.get("msgid"))
    limit = page_limit(b.get("limit"), r.groupmsg_page_default_limit, r.groupmsg_page_max_limit)
    page, nxt = paginate(msg.tasks.order_by("id"), b.get("cursor"), limit)
    task_list = []
    for t in page:
        item: dict[str, Any] = {"userid": t.userid, "status": t.status}
        if t.status == 2 and t.send_time:
            item["send_time"] = t.send_time
        task_list.append(item)
    return {"next_cursor": nxt, "task_list": task_list}


def _result_json(res: GroupMsgResult, chat_type: str) -> dict:
    item: dict[str, Any] = {}
    if chat_type == "single":
        item["external_userid"] = res.external_userid  # chat_id omitted for customer sends
    else:
        item["chat_id"] = res.chat_id  # external_userid omitted for group sends
    item["userid"] = res.userid
    item["status"] = res.status
    if res.status == 1 and res.send_time:
        item["send_time"] = res.send_time
    return item


@endpoint("externalcontact/get_groupmsg_send_result", methods=("POST",))
def get_groupmsg_send_result(req: SimRequest) -> dict:
    """获取企业群发成员执行结果: status 0 not sent / 1 sent / 2 not a friend / 3 over quota."""
    b = req.body
    r = rules.get()
    msg = get_msg(b.get("msgid"))
    userid = b.get("userid")
    if not userid:
        raise WeComError(41009)
    limit = page_limit(b.get("limit"), r.groupmsg_page_default_limit, r.groupmsg_page_max_limit)
    qs = GroupMsgResult.objects.filter(msg=msg, userid=userid).order_by("id")
    page, nxt = paginate(qs, b.get("cursor"), limit)
    return {"next_cursor": nxt, "send_list": [_result_json(x, msg.chat_type) for x in page]}


@endpoint("externalcontact/get_group_msg_result", methods=("POST",))
def get_group_msg_result(req: SimRequest) -> dict:
    """The legacy result call wechatpy makes (part 2 §1.6): check_status 1 and every recipient."""
    msg = get_msg(req.body.get("msgid"))
    results = GroupMsgResult.objects.filter(msg=msg).order_by("id")
    return {"check_status": 1, "detail_list": [_result_json(x, msg.chat_type) for x in results]}


@endpoint("externalcontact/remind_groupmsg_send", methods=("POST",))
def remind_groupmsg_send(req: SimRequest) -> dict:
    """提醒成员群发: at most rules.remind_max_per_24h reminders per msgid in 24 h (R4).

    The doc names no errcode for the refusal; it is a frequency limit, so the emulator answers
    45009 "api freq out of limit" (unverified)."""
    msg = get_msg(req.body.get("msgid"))
    cap = rules.get().remind_max_per_24h
    recent = [t for t in msg.remind_times if t > req.now - 86400]
    if len(recent) >= cap:
        raise WeComError(45009, f"api freq out of limit: at most {cap} reminders per message in 24 hours")
    msg.remind_times = [*recent, req.now]
    msg.save(update_fields=["remind_times"])
    return {}


@endpoint("externalcontact/cancel_groupmsg_send", methods=("POST",))
def cancel_groupmsg_send(req: SimRequest) -> dict:
    """停止企业群发: employees who have not sent never will; sent results stay (R8)."""
    msg = get_msg(req.body.get("msgid"))
    if not msg.cancelled:
        msg.cancelled = True
        msg.save(update_fields=["cancelled"])
        msg.tasks.filter(status=0).update(confirm_at=None)
    return {}


# --- control actions (also used by Moments) -----------------------------------------------------
def employee_task(model, parent: str, key: str, body: dict):
    """The task (``model``: GroupMsgTask or MomentTask) of employee ``body["userid"]`` in the mass
    message or Moment ``body[key]``, which the task's foreign key ``parent`` points to."""
    parent_id, userid = body.get(key), body.get("userid")
    if not parent_id or not userid:
        raise ControlError(f"{key} and userid are required")
    task = model.objects.select_related(parent).filter(**{f"{parent}_id": parent_id}, userid=userid).first()
    if task is None:
        raise ControlError(f"no task of {userid} in {parent_id}")
    return task


def own_send_audience(body: dict) -> tuple[str, list[str]]:
    """Who an employee's own send from the client reaches (个人群发, 个人发表): the active employee
    ``userid`` and the known customers among ``external_userids`` (default: every customer of the
    employee), without repeats, in order."""
    userid = body.get("userid")
    if not userid or not User.objects.filter(userid=userid, status=User.STATUS_ACTIVE).exists():
        raise ControlError(f"unknown or inactive employee {userid!r}")
    ids = body.get("external_userids")
    if ids is None:
        ids = list(
            Follow.objects.filter(userid=userid, status=Follow.ACTIVE)
            .order_by("id")
            .values_list("external_userid", flat=True)
        )
    ids = dedup(ids)
    known = (
        set(ExternalContact.objects.filter(external_userid__in=ids).values_list("external_userid", flat=True))
        if ids
        else set()
    )
    return userid, [x for x in ids if x in known]


def _task(body: dict) -> GroupMsgTask:
    return employee_task(GroupMsgTask, "msg", "msgid", body)


@action("mass/confirm", schemas.MassTask)
def mass_confirm(body: dict) -> dict:
    """The employee taps send in 群发助手."""
    task = _task(body)
    if task.msg.cancelled:
        raise ControlError("the mass message was cancelled (cancel_groupmsg_send)")
    if task.ignored:
        raise ControlError("the employee chose not to send this message")
    if task.status == 2:
        raise ControlError("the employee already sent this message")
    return confirm_task(task, clock.now())


def _excerpt(text: Any) -> str:
    """The first characters of a stored text ({"content": ...}), for lists."""
    content = text.get("content") if isinstance(text, dict) else text
    return str(content or "")[:60]


@action("mass/pending", schemas.PendingTasks)
def mass_pending(body: dict) -> dict:
    """Mass-message tasks employees have not sent yet (newest first): {msgid, userid, create_time,
    text} for /sim/mass/confirm or /sim/mass/ignore; ``userid`` narrows to one employee."""
    qs = GroupMsgTask.objects.filter(status=0, ignored=False, msg__cancelled=False).select_related("msg")
    if body.get("userid"):
        qs = qs.filter(userid=body["userid"])
    rows = qs.order_by("-msg__create_time", "msg_id", "userid")[: int(body.get("limit") or 100)]
    return {
        "tasks": [
            {
                "msgid": t.msg_id,
                "userid": t.userid,
                "create_time": t.msg.create_time,
                "text": _excerpt(t.msg.text),
            }
            for t in rows
        ]
    }


@action("mass/ignore", schemas.MassTask)
def mass_ignore(body: dict) -> dict:
    """The employee never sends this message."""
    task = _task(body)
    if task.status == 2:
        raise ControlError("the employee already sent this message")
    task.ignored, task.confirm_at = True, None
    task.save(update_fields=["ignored", "confirm_at"])
    return {}


@action("mass/auto", schemas.MassAuto)
def mass_auto(body: dict) -> dict:
    """How simulated employees respond to NEW mass messages and Moments: each task is confirmed
    ``delay_s`` (± 50 %) after creation with ``probability``, otherwise never."""
    try:
        p = float(body.get("probability", 0))
        delay = float(body.get("delay_s", 0))
        seed = int(body.get("seed", 0))
    except (TypeError, ValueError):
        raise ControlError("probability, delay_s and seed must be numbers") from None
    if not 0 <= p <= 1 or delay < 0:
        raise ControlError("probability must be in [0, 1] and delay_s ≥ 0")
    cfg = {"probability": p, "delay_s": delay, "seed": seed}
    SimState.objects.update_or_create(key=AUTO_KEY, defaults={"value": cfg})
    return {"auto": cfg}


@action("mass/employee_send", schemas.OwnSend)
def mass_employee_send(body: dict) -> dict:
    """An employee's own mass send from the client (个人群发, create_type 1): sent at once, and it
    counts toward the customers' receive quotas."""
    userid, ids = own_send_audience(body)
    if not ids:
        raise ControlError("no customers to send to")
    now = clock.now()
    r = rules.get()
    # The client checks an own send like add_msg_template checks a corp one (doc 92135).
    text = validate_text({"content": body["text"]} if body.get("text") else None, r.msg_template_text_max_bytes)
    attachments = validate_attachments(body.get("attachments"), now, r.msg_template_max_attachments)
    msg = create_group_msg(
        "single",
        {userid: ids},
        now,
        text,
        attachments,
        creator=userid,
        create_type=1,
        auto=False,
    )
    task = msg.tasks.get()
    counts = confirm_task(task, now)
    return {"msgid": msg.msgid, **counts}


@action("quota", schemas.Quota)
def quota(body: dict) -> dict:
    """Remaining mass-message receives of a customer (external_userid) or a group (chat_id)."""
    if body.get("external_userid"):
        kind, rid = "single", body["external_userid"]
    elif body.get("chat_id"):
        kind, rid = "group", body["chat_id"]
    else:
        raise ControlError("external_userid or chat_id is required")
    now = int(body.get("at") or clock.now())
    start, end, cap, mode = quota_period(kind, now)
    return {
        "kind": kind,
        "mode": mode,
        "cap": cap,
        "period_start": start,
        "period_end": end,
        "remaining": receive_quota_left(kind, rid, now),
    }
