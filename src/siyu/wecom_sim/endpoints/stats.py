"""Statistics (统计管理, part 2 §4): 联系客户统计 and 群聊数据统计.

Counts that the world records are derived from it: new customers from Follow.createtime, customers
who deleted the employee from Follow.status/status_time, new groups and members from
GroupChat.create_time and GroupMember.join_time. Chat activity (chats, messages, replies, group
messages) is not simulated message by message; it is a deterministic pseudo-random figure per
employee (or group) and day, scaled by how many customers (members) there were that day, so the
same query always answers the same numbers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from bisect import bisect_left
from collections import defaultdict
from typing import Any

from siyu.wecom_sim import clock, rules
from siyu.wecom_sim.endpoints.mass import int_field, str_list
from siyu.wecom_sim.endpoints.org import dept_subtree
from siyu.wecom_sim.framework import SimRequest, WeComError, endpoint
from siyu.wecom_sim.models import Department, Follow, GroupChat, GroupMember, User

DAY = 86400


def _h(*parts: Any) -> int:
    return int(hashlib.sha1(":".join(map(str, parts)).encode()).hexdigest()[:15], 16)


def _window(begin: int, end: int, now: int) -> list[int]:
    """Day starts (China time) of the closed range [begin, end], floored to midnight (R15):
    span ≤ 30 days, only the last 180 days; days after today have no data yet."""
    r = rules.get()
    b, e = clock.day_start(begin), clock.day_start(end)
    if e < b:
        raise WeComError(40058, "invalid time range: end before start")
    if e - b > r.stats_max_span_days * DAY:
        raise WeComError(40058, f"invalid time range: at most {r.stats_max_span_days} days")
    today = clock.day_start(now)
    if b < today - r.stats_history_days * DAY:
        raise WeComError(40058, f"invalid time range: only the last {r.stats_history_days} days")
    days = []
    d = b
    while d <= e and d <= today:
        days.append(d)
        d = clock.day_start(d + DAY + 3600)  # China has no DST; the +3600 guards any clock oddity
    return days


def _weekday_factor(day: int) -> float:
    return 0.45 if dt.datetime.fromtimestamp(day, clock.CST).weekday() >= 5 else 1.0


@endpoint("externalcontact/get_user_behavior_data", methods=("POST",))
def get_user_behavior_data(req: SimRequest) -> dict:  # noqa: C901 - one check per WeCom rule, then one aggregation loop
    """获取「联系客户统计」数据 (doc 92132, R15): one item per day, aggregated over the members."""
    b = req.body
    r = rules.get()
    userids = str_list(b.get("userid"), "userid")
    raw_parties = b.get("partyid") or []
    if not isinstance(raw_parties, list):
        raise WeComError(40058, "invalid partyid")
    try:
        parties = [int(p) for p in raw_parties]
    except (TypeError, ValueError):
        raise WeComError(60123) from None
    if not userids and not parties:
        raise WeComError(40058, "userid and partyid cannot both be empty")
    if len(userids) > r.stats_max_ids or len(parties) > r.stats_max_ids:
        raise WeComError(40058, f"invalid userid/partyid: at most {r.stats_max_ids} each")
    days = _window(int_field(b.get("start_time"), "start_time"), int_field(b.get("end_time"), "end_time"), req.now)
    users = {u.userid: u for u in User.objects.filter(userid__in=userids)} if userids else {}
    unknown = [u for u in userids if u not in users]
    if unknown:
        raise WeComError(60111, f"userid not found: {unknown[0]}")
    if parties:
        known = set(Department.objects.filter(id__in=parties).values_list("id", flat=True))
        if len(known) != len(set(parties)):
            raise WeComError(60123)
        depts = dept_subtree(parties)
        for u in User.objects.all():
            if depts.intersection(u.department):
                users.setdefault(u.userid, u)

    follows: dict[str, list[tuple[int, int, int | None, str]]] = defaultdict(list)
    if users:
        for f in (
            Follow.objects.filter(userid__in=list(users))
            .exclude(status=Follow.HALF)
            .values_list("userid", "createtime", "status", "status_time", "oper_userid")
        ):
            follows[f[0]].append(f[1:])

    out = []
    for day in days:
        end = day + DAY
        tot = defaultdict(int)
        initiated = replied = reply_minutes = 0
        for uid, u in users.items():
            if u.dimission_time and u.dimission_time < day:
                continue  # gone before that day
            active = 0
            for createtime, status, status_time, oper in follows.get(uid, ()):
                if day <= createtime < end:
                    tot["new_contact_cnt"] += 1
                    if oper == uid:
                        tot["new_apply_cnt"] += 1  # the member sent the friend request
                if status == Follow.DELETED_BY_CUSTOMER and status_time is not None and day <= status_time < end:
                    tot["negative_feedback_cnt"] += 1
                if createtime < end and (status == Follow.ACTIVE or (status_time is not None and status_time >= end)):
                    active += 1
            h = _h("behavior", uid, day)
            tot["new_apply_cnt"] += h % 3 if active else 0  # requests still awaiting the customer
            rate = (0.03 + (h >> 4) % 1000 / 1000 * 0.09) * _weekday_factor(day)
            chats = round(active * rate)
            tot["chat_cnt"] += chats
            tot["message_cnt"] += chats * (2 + (h >> 14) % 5) + (h >> 20) % 3 * (1 if chats else 0)
            inits = round(chats * (0.3 + (h >> 24) % 40 / 100))
            reps = round(inits * (0.6 + (h >> 30) % 40 / 100))
            initiated += inits
            replied += reps
            reply_minutes += reps * (1 + (h >> 36) % 30)
        item: dict[str, Any] = {"stat_time": day, "chat_cnt": tot["chat_cnt"], "message_cnt": tot["message_cnt"]}
        # reply_percentage and avg_reply_time only when customers started chats (doc 92132).
        if initiated:
            item["reply_percentage"] = round(100.0 * replied / initiated, 2)
            if replied:
                item["avg_reply_time"] = round(reply_minutes / replied)
        item["negative_feedback_cnt"] = tot["negative_feedback_cnt"]
        item["new_apply_cnt"] = tot["new_apply_cnt"]
        item["new_contact_cnt"] = tot["new_contact_cnt"]
        out.append(item)
    return {"behavior_data": out}


# --- customer groups ----------------------------------------------------------------------------
FIELDS = (
    "new_chat_cnt",
    "chat_total",
    "chat_has_msg",
    "new_member_cnt",
    "member_total",
    "member_has_msg",
    "msg_total",
    "migrate_trainee_chat_cnt",
)
ORDER_FIELDS = {1: "new_chat_cnt", 2: "chat_total", 3: "new_member_cnt", 4: "member_total"}


def _group_request(b: dict, now: int) -> tuple[list[int], list[str] | None]:
    r = rules.get()
    begin = int_field(b.get("day_begin_time"), "day_begin_time")
    end = int_field(b.get("day_end_time"), "day_end_time", required=False) or begin
    days = _window(begin, end, now)
    owners = None
    of = b.get("owner_filter")
    if of not in (None, "", {}):
        if not isinstance(of, dict):
            raise WeComError(40058, "invalid owner_filter")
        owners = str_list(of.get("userid_list"), "owner_filter.userid_list") or None
        if owners and len(owners) > r.stats_max_ids:
            raise WeComError(40058, f"invalid owner_filter.userid_list: at most {r.stats_max_ids}")
    return days, owners


def _chat_day_activity(chat_id: str, day: int, members: int) -> tuple[int, int, int]:
    """(has_msg, messages, members who spoke) of one group on one day — pseudo-random."""
    if members <= 0:
        return 0, 0, 0
    h = _h("groupday", chat_id, day)
    if (h % 100) >= 35 * _weekday_factor(day):
        return 0, 0, 0
    speakers = min(members, 1 + (h >> 8) % max(1, members // 3 + 1))
    return 1, speakers * (1 + (h >> 20) % 6), speakers


def _group_data(chats: list[GroupChat], days: list[int]) -> dict[str, dict[int, dict]]:
    """Per chat, per day: the stats that day (sums are taken by the callers)."""
    ids = [c.chat_id for c in chats]
    joins: dict[str, list[int]] = defaultdict(list)
    for i in range(0, len(ids), 500):
        for cid, jt in GroupMember.objects.filter(chat_id__in=ids[i : i + 500]).values_list("chat_id", "join_time"):
            joins[cid].append(jt)
    for v in joins.values():
        v.sort()
    out: dict[str, dict[int, dict]] = {}
    for c in chats:
        js = joins.get(c.chat_id, [])
        per = {}
        for day in days:
            end = day + DAY
            exists = c.create_time < end
            total = bisect_left(js, end) if exists else 0
            new = total - bisect_left(js, day) if exists else 0
            has, msgs, speakers = _chat_day_activity(c.chat_id, day, total) if exists else (0, 0, 0)
            per[day] = {
                "new_chat_cnt": int(day <= c.create_time < end),
                "chat_total": int(exists),
                "chat_has_msg": has,
                "new_member_cnt": new,
                "member_total": total,
                "member_has_msg": speakers,
                "msg_total": msgs,
                "migrate_trainee_chat_cnt": 0,
            }
        out[c.chat_id] = per
    return out


def _chats(owners: list[str] | None) -> list[GroupChat]:
    qs = GroupChat.objects.filter(dismissed=False)
    if owners is not None:
        qs = qs.filter(owner__in=owners)
    return list(qs.order_by("chat_id"))


@endpoint("externalcontact/groupchat/statistic", methods=("POST",))
def groupchat_statistic(req: SimRequest) -> dict:
    """群聊数据统计 by owner: totals as of the last day, new-* and activity summed over the range."""
    b = req.body
    r = rules.get()
    days, owners = _group_request(b, req.now)
    order_by = int_field(b.get("order_by"), "order_by", required=False) or 1
    if order_by not in ORDER_FIELDS:
        raise WeComError(40058, "invalid order_by")
    order_asc = int_field(b.get("order_asc"), "order_asc", required=False) or 0
    offset = int_field(b.get("offset"), "offset", required=False) or 0
    limit = int_field(b.get("limit"), "limit", required=False) or r.groupchat_stat_default_limit
    if offset < 0 or not 1 <= limit <= r.groupchat_stat_max_limit:
        raise WeComError(40058, f"invalid offset/limit: limit 1..{r.groupchat_stat_max_limit}")
    chats = _chats(owners)
    data = _group_data(chats, days)
    per_owner: dict[str, dict[str, int]] = {}
    last = days[-1] if days else None
    for c in chats:
        agg = per_owner.setdefault(c.owner, dict.fromkeys(FIELDS, 0))
        per = data[c.chat_id]
        for day in days:
            d = per[day]
            for k in ("new_chat_cnt", "new_member_cnt", "msg_total"):
                agg[k] += d[k]
        agg["chat_has_msg"] += int(any(per[day]["chat_has_msg"] for day in days))
        agg["member_has_msg"] += max((per[day]["member_has_msg"] for day in days), default=0)
        if last is not None:
            agg["chat_total"] += per[last]["chat_total"]
            agg["member_total"] += per[last]["member_total"]
    rows = [(o, d) for o, d in per_owner.items() if d["chat_total"] or d["new_chat_cnt"]]
    key = ORDER_FIELDS[order_by]
    rows.sort(key=lambda od: (od[1][key], od[0]) if order_asc else (-od[1][key], od[0]))
    page = rows[offset : offset + limit]
    return {
        "total": len(rows),
        "next_offset": min(len(rows), offset + len(page)),
        "items": [{"owner": o, "data": d} for o, d in page],
    }


@endpoint("externalcontact/groupchat/statistic_group_by_day", methods=("POST",))
def groupchat_statistic_group_by_day(req: SimRequest) -> dict:
    """群聊数据统计 by day: one item per natural day, over the owners' groups."""
    days, owners = _group_request(req.body, req.now)
    chats = _chats(owners)
    data = _group_data(chats, days)
    items = []
    for day in days:
        agg = dict.fromkeys(FIELDS, 0)
        for c in chats:
            for k, v in data[c.chat_id][day].items():
                agg[k] += v
        items.append({"stat_time": day, "data": agg})
    return {"items": items}
