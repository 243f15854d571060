"""App messages (应用消息, part 2 §5): message/send and message/recall.

Each delivered message is stored per recipient (AppMessage), as the employee would see it in the
app; ``/sim/app_messages`` lists them. Per app and member at most 30 a minute and 1,000 an hour
reach the member: the excess is silently dropped (doc 90454), stored with ``dropped``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.conf import settings

from siyu.wecom_sim import rules, schemas
from siyu.wecom_sim.control import action
from siyu.wecom_sim.endpoints.media import check_media
from siyu.wecom_sim.endpoints.org import dept_subtree
from siyu.wecom_sim.framework import SimRequest, WeComError, check_bytes, endpoint, new_id
from siyu.wecom_sim.models import AppMessage, Department, User

MSGTYPES = (
    "text",
    "image",
    "voice",
    "video",
    "file",
    "textcard",
    "news",
    "mpnews",
    "markdown",
    "miniprogram_notice",
    "template_card",
)


def _split(value: Any, what: str) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, list):
        return [str(v) for v in value if str(v)]
    if isinstance(value, (int, str)):
        return [p for p in str(value).split("|") if p]
    raise WeComError(40058, f"invalid {what}")


def _validate_payload(msgtype: str, body: dict, now: int) -> dict:  # noqa: C901 - one branch per message type, as the doc lists them
    """The per-type object (doc 90236); returns what the recipient sees."""
    r = rules.get()
    obj = body.get(msgtype)
    if msgtype == "template_card":
        if not isinstance(obj, dict) or not obj.get("card_type"):
            raise WeComError(40058, "template_card.card_type missing")
        return obj
    if not isinstance(obj, dict):
        if msgtype in ("text", "markdown"):
            raise WeComError(44004)
        raise WeComError(40058, f"{msgtype} missing")
    if msgtype in ("text", "markdown"):
        content = obj.get("content")
        if not content or not isinstance(content, str):
            raise WeComError(44004)
        check_bytes(content, r.app_msg_text_max_bytes, "content")
    elif msgtype in ("image", "voice", "file", "video"):
        if not obj.get("media_id"):
            raise WeComError(41006)
        check_media(obj["media_id"], now, kind=msgtype)
    elif msgtype == "textcard":
        if not obj.get("title"):
            raise WeComError(41016)
        if not obj.get("description"):
            raise WeComError(41033)
        if not obj.get("url"):
            raise WeComError(41010)
        check_bytes(obj["title"], 128, "textcard.title")
        check_bytes(obj["description"], 512, "textcard.description")
    elif msgtype in ("news", "mpnews"):
        articles = obj.get("articles")
        if not isinstance(articles, list) or not 1 <= len(articles) <= r.app_msg_max_articles:
            raise WeComError(45008)
        for a in articles:
            if not isinstance(a, dict) or not a.get("title"):
                raise WeComError(41016)
            if msgtype == "mpnews":
                if not a.get("thumb_media_id"):
                    raise WeComError(41006)
                check_media(a["thumb_media_id"], now, kind="image")
                if not a.get("content"):
                    raise WeComError(44004)
    elif msgtype == "miniprogram_notice":
        if not obj.get("appid"):
            raise WeComError(90200)
        if not obj.get("title"):
            raise WeComError(41016)
        items = obj.get("content_item") or []
        if not isinstance(items, list) or len(items) > r.app_msg_max_content_items:
            raise WeComError(90201)
    return obj


def _rate_ok(userid: str, agentid: int, now: int, pending: dict[str, list[int]]) -> bool:
    """Per app and member: ≤ 30 a minute, ≤ 1,000 an hour (on the emulator clock)."""
    r = rules.get()
    times = pending.get(userid)
    if times is None:
        times = list(
            AppMessage.objects.filter(
                touser=userid, agentid=agentid, dropped=False, sent_at__gt=now - 3600
            ).values_list("sent_at", flat=True)
        )
        pending[userid] = times
    last_min = sum(1 for t in times if t > now - 60)
    if r.app_msg_per_member_min and last_min >= r.app_msg_per_member_min:
        return False
    return not (r.app_msg_per_member_hour and len(times) >= r.app_msg_per_member_hour)


@endpoint("message/send", methods=("POST",))
def message_send(req: SimRequest) -> dict:  # noqa: C901 - one check per WeCom rule, in the order WeCom reports them
    """发送应用消息 (doc 90236, R16)."""
    b = req.body
    r = rules.get()
    if b.get("agentid") in (None, ""):
        raise WeComError(41011)
    try:
        agentid = int(b["agentid"])
    except (TypeError, ValueError):
        raise WeComError(40056) from None
    if agentid != settings.SIM_AGENT_ID:
        raise WeComError(40056)
    msgtype = b.get("msgtype")
    if msgtype not in MSGTYPES:
        raise WeComError(40008)
    touser_raw = b.get("touser")
    users_req = _split(touser_raw, "touser")
    parties_req = _split(b.get("toparty"), "toparty")
    tags_req = _split(b.get("totag"), "totag")
    to_all = users_req == ["@all"]
    if not to_all:
        if len(users_req) > r.app_msg_max_users:
            raise WeComError(40032)
        if len(parties_req) > r.app_msg_max_parties:
            raise WeComError(82002)
        if len(tags_req) > r.app_msg_max_tags:
            raise WeComError(82003)
        if not users_req and not parties_req and not tags_req:
            raise WeComError(82001)
    payload = _validate_payload(msgtype, b, req.now)

    active = {u.userid.lower(): u for u in User.objects.filter(status=User.STATUS_ACTIVE)}
    recipients: list[str] = []
    invalid_users: list[str] = []
    invalid_parties: list[str] = []
    invalid_tags: list[str] = []
    if to_all:
        # toparty and totag are ignored with @all.
        recipients = sorted(u.userid for u in active.values())
    else:
        for uid in users_req:
            u = active.get(uid.lower())
            if u is None:
                invalid_users.append(uid.lower())  # the doc: invalid userids come back lower-cased
            else:
                recipients.append(u.userid)
        if parties_req:
            known = set(Department.objects.values_list("id", flat=True))
            valid = []
            for p in parties_req:
                try:
                    pid = int(p)
                except ValueError:
                    pid = None
                if pid is None or pid not in known:
                    invalid_parties.append(p)
                else:
                    valid.append(pid)
            if valid:
                depts = dept_subtree(valid)
                recipients += sorted(u.userid for u in active.values() if depts.intersection(u.department))
        # Contact tags (通讯录标签) are not part of the simulated directory: every tagid is invalid.
        invalid_tags = list(tags_req)
    recipients = list(dict.fromkeys(recipients))
    if not recipients:
        raise WeComError(81013)

    msgid = new_id("", 40)
    stored = {"msgtype": msgtype, msgtype: payload}
    for k in ("safe", "enable_id_trans", "enable_duplicate_check", "duplicate_check_interval"):
        if k in b:
            stored[k] = b[k]
    dup_hash = hashlib.sha1(json.dumps(stored.get(msgtype), sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    stored["dup_hash"] = dup_hash
    check_dup = bool(b.get("enable_duplicate_check"))
    interval = int(b.get("duplicate_check_interval") or r.app_msg_duplicate_interval_s)
    pending: dict[str, list[int]] = {}
    rows = []
    for uid in recipients:
        dropped = False
        if (
            check_dup
            and AppMessage.objects.filter(
                touser=uid, agentid=agentid, dropped=False, sent_at__gt=req.now - interval, payload__dup_hash=dup_hash
            ).exists()
        ):
            dropped = True  # the same content within the interval is not sent again
        elif not _rate_ok(uid, agentid, req.now, pending):
            dropped = True  # over the per-member limit: silently dropped
        else:
            pending[uid].append(req.now)
        rows.append(
            AppMessage(
                msgid=msgid,
                agentid=agentid,
                touser=uid,
                msgtype=msgtype,
                payload=stored,
                sent_at=req.now,
                dropped=dropped,
            )
        )
    AppMessage.objects.bulk_create(rows, batch_size=500)
    out: dict[str, Any] = {}
    if invalid_users:
        out["invaliduser"] = "|".join(invalid_users)
    if invalid_parties:
        out["invalidparty"] = "|".join(invalid_parties)
    if invalid_tags:
        out["invalidtag"] = "|".join(invalid_tags)
    out["msgid"] = msgid
    return out


@endpoint("message/recall", methods=("POST",))
def message_recall(req: SimRequest) -> dict:
    """撤回应用消息: only within 24 h of sending (doc 94867)."""
    msgid = req.body.get("msgid")
    if not msgid:
        raise WeComError(40058, "msgid missing")
    qs = AppMessage.objects.filter(msgid=msgid)
    first = qs.first()
    if first is None:
        raise WeComError(40058, "invalid msgid")
    if first.sent_at + rules.get().app_msg_recall_window_s <= req.now:
        raise WeComError(40058, "invalid msgid: only messages of the last 24 hours can be recalled")
    qs.update(recalled=True)
    return {}


@action("app_messages", schemas.AppMessages)
def app_messages(body: dict) -> dict:
    """What employees received in the app: {touser?, since? (emulator time), since_id?, msgtype?,
    include_dropped?}. Dropped (rate-limited or duplicate) messages are left out unless asked."""
    qs = AppMessage.objects.order_by("id")
    if body.get("touser"):
        qs = qs.filter(touser=body["touser"])
    if body.get("since") not in (None, ""):
        qs = qs.filter(sent_at__gte=int(body["since"]))
    if body.get("since_id") not in (None, ""):
        qs = qs.filter(id__gt=int(body["since_id"]))
    if body.get("msgtype"):
        qs = qs.filter(msgtype=body["msgtype"])
    if not body.get("include_dropped"):
        qs = qs.filter(dropped=False)
    out = []
    for m in qs[: int(body.get("limit", 1000))]:
        payload = {k: v for k, v in m.payload.items() if k != "dup_hash"}
        out.append(
            {
                "id": m.id,
                "msgid": m.msgid,
                "agentid": m.agentid,
                "touser": m.touser,
                "msgtype": m.msgtype,
                "content": payload.get(m.msgtype),
                "payload": payload,
                "sent_at": m.sent_at,
                "dropped": m.dropped,
                "recalled": m.recalled,
            }
        )
    return {"messages": out}
