"""Contact ways (「联系我」/ 渠道活码), temporary chats, welcome messages, group welcome templates.

Endpoints follow doc 92228 (contact ways), 92137 (send_welcome_msg) and 92366 (group welcome
templates); rules R11–R18 of part 1. Control actions: ``/sim/scan`` (a WeChat user scans a
contact way), ``/sim/welcome_log`` (the issued welcome codes and what was sent with them).

The ``qr_code`` of a scene-2 way is a URL of the emulator itself (``/sim-qr/<config_id>.png``,
served by ``siyu.wecom_sim.qr``) so the product can download a real PNG of the QR code.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.db import connection, transaction

from siyu.wecom_sim import clock, rules, schemas
from siyu.wecom_sim.control import ControlError, action
from siyu.wecom_sim.endpoints.customers import (
    contact_user,
    customer_adds,
    decode_cursor,
    encode_cursor,
    get_customer,
    int_param,
    pic_url_for,
    resolve_customer,
    str_list,
)
from siyu.wecom_sim.endpoints.media import check_media
from siyu.wecom_sim.endpoints.org import _subtree
from siyu.wecom_sim.framework import (
    SimRequest,
    WeComError,
    check_bytes,
    check_len,
    endpoint,
    new_id,
)
from siyu.wecom_sim.models import (
    ContactWay,
    Department,
    Follow,
    GroupWelcomeTemplate,
    JoinWay,
    TempChat,
    User,
    WelcomeCode,
)

# --- helpers -------------------------------------------------------------------------------------


def qr_url(req: SimRequest | None, config_id: str) -> str:
    """A URL of this emulator serving the way's QR code as a PNG."""
    base = req.http.build_absolute_uri("/").rstrip("/") if req is not None else ""
    return f"{base}/sim-qr/{config_id}.png"


def api_way_count() -> int:
    """Ways counted against the 500,000 cap: API contact ways (temporary ones excluded) and join
    ways together (doc 92228 / 92229)."""
    return (
        ContactWay.objects.filter(deleted=False, is_temp=False).count() + JoinWay.objects.filter(deleted=False).count()
    )


def check_way_cap() -> None:
    if api_way_count() >= rules.get().contact_way_cap:
        raise WeComError(41045)


def _bool(value: Any, what: str, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    raise WeComError(40058, f"invalid {what}")


def validate_link(link: Any, now: int) -> dict:
    """link attachment (doc 92137): title ≤ 128 bytes and url required, desc ≤ 512 bytes."""
    if not isinstance(link, dict):
        raise WeComError(41065)
    if not link.get("title") or not link.get("url"):
        raise WeComError(40058, "link.title and link.url are required")
    check_bytes(link.get("title"), 128, "link.title")
    check_bytes(link.get("desc"), 512, "link.desc")
    return {k: link[k] for k in ("title", "picurl", "desc", "url") if link.get(k) is not None}


def validate_miniprogram(mp: Any, now: int) -> dict:
    """miniprogram attachment: title ≤ 64 bytes, pic_media_id, appid, page all required."""
    if not isinstance(mp, dict):
        raise WeComError(41065)
    for k in ("title", "pic_media_id", "appid", "page"):
        if not mp.get(k):
            raise WeComError(40058, f"miniprogram.{k} is required")
    check_bytes(mp["title"], 64, "miniprogram.title")
    check_media(mp["pic_media_id"], now)
    return {k: mp[k] for k in ("title", "pic_media_id", "appid", "page")}


def validate_image(img: Any, now: int) -> dict:
    """image: media_id or pic_url (pic_url only from uploadimg); with both, media_id wins."""
    if not isinstance(img, dict):
        raise WeComError(41065)
    if img.get("media_id"):
        check_media(img["media_id"], now)
        return {"media_id": img["media_id"]}
    if img.get("pic_url"):
        return {"pic_url": img["pic_url"]}
    raise WeComError(40058, "image.media_id or image.pic_url is required")


def validate_media_obj(obj: Any, now: int, what: str) -> dict:
    if not isinstance(obj, dict):
        raise WeComError(41065)
    if not obj.get("media_id"):
        raise WeComError(40058, f"{what}.media_id is required")
    check_media(obj["media_id"], now)
    return {"media_id": obj["media_id"]}


VALIDATORS = {
    "image": validate_image,
    "link": validate_link,
    "miniprogram": validate_miniprogram,
    "video": lambda o, now: validate_media_obj(o, now, "video"),
    "file": lambda o, now: validate_media_obj(o, now, "file"),
}


def image_out(img: dict) -> dict:
    """Images come back as pic_url even when set by media_id (group welcome template doc)."""
    if "media_id" in img:
        return {"pic_url": pic_url_for(img["media_id"])}
    return dict(img)


def validate_conclusions(value: Any, now: int) -> dict:
    """conclusions (结束语) of a temp-chat way: text ≤ 4000 bytes, image, link, miniprogram."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise WeComError(40058, "invalid conclusions")
    out: dict[str, Any] = {}
    text = value.get("text")
    if text:
        if not isinstance(text, dict) or not isinstance(text.get("content", ""), str):
            raise WeComError(40058, "invalid conclusions.text")
        check_bytes(text.get("content"), 4000, "conclusions.text.content")
        out["text"] = {"content": text.get("content", "")}
    for key in ("image", "link", "miniprogram"):
        if value.get(key):
            out[key] = VALIDATORS[key](value[key], now)
    return out


def conclusions_out(c: dict) -> dict:
    out = dict(c)
    if "image" in out:
        out["image"] = image_out(out["image"])
    return out


# --- contact ways ----------------------------------------------------------------------------


def _check_users(users: list[str]) -> list[str]:
    out = []
    for uid in users:
        u = contact_user(uid)
        if u.status != User.STATUS_ACTIVE:
            # 配置的使用成员必须在企业微信激活 (doc 92228); errcode unverified
            raise WeComError(84074, f"{uid} is not activated")
        if u.userid not in out:
            out.append(u.userid)
    return out


def _check_parties(parties: Any) -> list[int]:
    if parties is None:
        return []
    if not isinstance(parties, list) or not all(isinstance(p, int) and not isinstance(p, bool) for p in parties):
        raise WeComError(40058, "invalid party")
    existing = set(Department.objects.filter(id__in=parties).values_list("id", flat=True))
    for p in parties:
        if p not in existing:
            raise WeComError(60123)
    return list(dict.fromkeys(parties))


def _copy_str(body: dict, cfg: dict, name: str, max_len: int | None = None) -> None:
    """Copy the optional string field ``name`` into ``cfg`` (absent or null: left alone): 40058 when
    it is not a string; at most ``max_len`` characters when given."""
    value = body.get(name)
    if value is None:
        return
    if not isinstance(value, str):
        raise WeComError(40058, f"invalid {name}")
    if max_len is not None:
        check_len(value, max_len, name)
    cfg[name] = value


def _validate_way_fields(  # noqa: C901 - one check per WeCom rule, in the order WeCom reports them
    body: dict, cfg: dict, *, way_type: int, scene: int, is_temp: bool, now: int, updating: bool
) -> dict:
    """Validate the mutable fields of a contact way into ``cfg`` (rules R11, R13, R15)."""
    r = rules.get()
    if scene == 1 and "style" in body and body["style"] is not None:
        style = body["style"]
        if isinstance(style, bool) or not isinstance(style, int) or not 1 <= style <= r.contact_way_max_style:
            raise WeComError(41042)
        cfg["style"] = style
    _copy_str(body, cfg, "remark", r.contact_way_remark_max_len)
    if "skip_verify" in body or not updating:
        cfg["skip_verify"] = _bool(body.get("skip_verify"), "skip_verify", True)
    _copy_str(body, cfg, "state", r.state_max_len)
    if "user" in body or not updating:
        users = str_list(body.get("user"), "user")
        if len(users) > r.contact_way_max_users:
            raise WeComError(41041)
        users = _check_users(users)
        if way_type == 1 and len(users) != 1:
            raise WeComError(40058, "a single-member (type 1) way needs exactly one user")
        cfg["user"] = users
    if way_type == 2 and ("party" in body or not updating):
        # party only takes effect for multi-member ways (type 2); ignored for type 1
        cfg["party"] = _check_parties(body.get("party"))
    if way_type == 2 and not cfg.get("user") and not cfg.get("party"):
        raise WeComError(40058, "user and party are both empty")
    if is_temp:
        if "expires_in" in body or not updating:
            exp = int_param(body.get("expires_in"), "expires_in", r.temp_way_expires_default_s)
            if not 0 < exp <= r.temp_way_expires_max_s:
                raise WeComError(40058, "invalid expires_in")
            cfg["expires_in"] = exp
        if "chat_expires_in" in body or not updating:
            cexp = int_param(body.get("chat_expires_in"), "chat_expires_in", r.temp_chat_expires_default_s)
            if not 0 < cexp <= r.temp_chat_expires_max_s:
                raise WeComError(40058, "invalid chat_expires_in")
            cfg["chat_expires_in"] = cexp
        _copy_str(body, cfg, "unionid")
        if "conclusions" in body:
            cfg["conclusions"] = validate_conclusions(body.get("conclusions"), now)
    return cfg


def _type_and_scene(body: dict) -> tuple[int, int]:
    if body.get("type") is None:
        raise WeComError(41037)
    t = body["type"]
    if isinstance(t, bool) or t not in (1, 2):
        raise WeComError(41039)
    if body.get("scene") is None:
        raise WeComError(41038)
    s = body["scene"]
    if isinstance(s, bool) or s not in (1, 2):
        raise WeComError(41040)
    return t, s


@endpoint("externalcontact/add_contact_way", methods=("POST",))
def add_contact_way(req: SimRequest) -> dict:
    """add_contact_way (doc 92228, rules R11–R13)."""
    body = req.body
    way_type, scene = _type_and_scene(body)
    is_temp = _bool(body.get("is_temp"), "is_temp", False)
    if is_temp and way_type != 1:
        raise WeComError(40058, "temporary-chat ways are single-member only")
    cfg: dict[str, Any] = {"type": way_type, "scene": scene, "remark": "", "state": "", "is_temp": is_temp}
    _validate_way_fields(body, cfg, way_type=way_type, scene=scene, is_temp=is_temp, now=req.now, updating=False)
    with transaction.atomic():
        if is_temp:
            today = clock.day_start(req.now)
            if (
                ContactWay.objects.filter(is_temp=True, created_at__gte=today).count()
                >= rules.get().temp_contact_way_daily_cap
            ):
                raise WeComError(41045)
        else:
            check_way_cap()
        way = ContactWay.objects.create(
            config_id=secrets.token_hex(16),
            type=way_type,
            scene=scene,
            config=cfg,
            created_at=req.now,
            is_temp=is_temp,
            expires_at=req.now + cfg["expires_in"] if is_temp else None,
        )
    out = {"config_id": way.config_id}
    if scene == 2:
        out["qr_code"] = qr_url(req, way.config_id)
    return out


def _get_way(config_id: Any) -> ContactWay:
    if not config_id:
        raise WeComError(41043)
    if not isinstance(config_id, str):
        raise WeComError(41044)
    way = ContactWay.objects.filter(config_id=config_id, deleted=False).first()
    if way is None:
        raise WeComError(41044)
    return way


def way_json(req: SimRequest | None, way: ContactWay) -> dict:
    cfg = way.config
    d: dict[str, Any] = {"config_id": way.config_id, "type": way.type, "scene": way.scene}
    if way.scene == 1:
        d["style"] = cfg.get("style", 1)
    d["remark"] = cfg.get("remark", "")
    d["skip_verify"] = cfg.get("skip_verify", True)
    d["state"] = cfg.get("state", "")
    if way.scene == 2:
        d["qr_code"] = qr_url(req, way.config_id)
    d["user"] = cfg.get("user", [])
    d["party"] = cfg.get("party", [])
    d["is_temp"] = way.is_temp
    if way.is_temp:
        d["expires_in"] = cfg.get("expires_in")
        d["chat_expires_in"] = cfg.get("chat_expires_in")
        if cfg.get("unionid"):
            d["unionid"] = cfg["unionid"]
        d["conclusions"] = conclusions_out(cfg.get("conclusions") or {})
    return d


@endpoint("externalcontact/get_contact_way", methods=("POST",))
def get_contact_way(req: SimRequest) -> dict:
    """get_contact_way: ``contact_way`` is an object (official doc; an old wechatpy fixture shows a
    one-item list)."""
    return {"contact_way": way_json(req, _get_way(req.body.get("config_id")))}


@endpoint("externalcontact/list_contact_way", methods=("POST",))
def list_contact_way(req: SimRequest) -> dict:
    """list_contact_way (rule R14): API-created, non-temporary ways created in [start_time,
    end_time] (default the last 90 days), only config_ids; limit default 100, clamped to 1000."""
    r = rules.get()
    body = req.body
    end = int_param(body.get("end_time"), "end_time", req.now)
    start = int_param(body.get("start_time"), "start_time", end - r.list_contact_way_window_s)
    if start > end:
        raise WeComError(40058, "start_time is later than end_time")
    limit = int_param(body.get("limit"), "limit", 0)
    if limit < 0:
        raise WeComError(40058, "invalid limit")
    limit = min(limit or r.list_contact_way_default_limit, r.list_contact_way_max_limit)
    qs = ContactWay.objects.filter(is_temp=False, deleted=False, created_at__gte=start, created_at__lte=end)
    pos = decode_cursor(body.get("cursor"))
    if pos is not None:
        if not (isinstance(pos, list) and len(pos) == 2):
            raise WeComError(40058, "invalid cursor")
        t, cid = pos
        from django.db.models import Q

        qs = qs.filter(Q(created_at__gt=t) | Q(created_at=t, config_id__gt=cid))
    page = list(qs.order_by("created_at", "config_id").values_list("created_at", "config_id")[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return {
        "contact_way": [{"config_id": cid} for _, cid in page],
        "next_cursor": encode_cursor(list(page[-1])) if more else "",
    }


@endpoint("externalcontact/update_contact_way", methods=("POST",))
def update_contact_way(req: SimRequest) -> dict:
    """update_contact_way (rule R15): ``user``/``party`` replace the old lists; type, scene and
    is_temp cannot change. An expired or used temporary way cannot be edited (41044, errcode
    unverified)."""
    way = _get_way(req.body.get("config_id"))
    if way.is_temp and (way.used or (way.expires_at and way.expires_at <= req.now)):
        raise WeComError(41044, "the temporary contact way has expired")
    cfg = dict(way.config)
    _validate_way_fields(
        req.body, cfg, way_type=way.type, scene=way.scene, is_temp=way.is_temp, now=req.now, updating=True
    )
    way.config = cfg
    fields = ["config"]
    if way.is_temp and "expires_in" in req.body:
        way.expires_at = req.now + cfg["expires_in"]
        fields.append("expires_at")
    way.save(update_fields=fields)
    return {}


@endpoint("externalcontact/del_contact_way", methods=("POST",))
def del_contact_way(req: SimRequest) -> dict:
    """del_contact_way: customers already added keep their state."""
    way = _get_way(req.body.get("config_id"))
    way.deleted = True
    way.save(update_fields=["deleted"])
    return {}


@endpoint("externalcontact/close_temp_chat", methods=("POST",))
def close_temp_chat(req: SimRequest) -> dict:
    """close_temp_chat: end a still-valid temporary chat, sending the way's conclusions first.
    No such relation → 84061; a relation that is not an open temporary chat → 40058 (unverified)."""
    user = contact_user(req.body.get("userid"))
    ext = get_customer(req.body.get("external_userid"))
    if not Follow.objects.filter(
        userid=user.userid, external_userid=ext.external_userid, status__in=(Follow.ACTIVE, Follow.HALF)
    ).exists():
        raise WeComError(84061)
    tc = (
        TempChat.objects.filter(
            userid=user.userid, external_userid=ext.external_userid, closed_at__isnull=True, expires_at__gt=req.now
        )
        .order_by("-started_at")
        .first()
    )
    if tc is None:
        raise WeComError(40058, "no open temporary chat with this customer")
    way = ContactWay.objects.filter(config_id=tc.config_id).first()
    tc.closed_at = req.now
    tc.conclusions_sent = (way.config.get("conclusions") if way else None) or {}
    tc.save(update_fields=["closed_at", "conclusions_sent"])
    return {}


# --- the scan (control) --------------------------------------------------------------------------


def way_members(way: ContactWay) -> list[User]:
    """The employees a way can route to: ``user`` plus members of ``party`` departments (with
    their sub-departments), active and with the customer-contact function, in a stable order."""
    cfg = way.config
    ids: list[str] = list(cfg.get("user", []))
    if way.type == 2 and cfg.get("party"):
        depts: set[int] = set()
        for p in cfg["party"]:
            try:
                depts.update(d.id for d in _subtree(p))
            except WeComError:
                continue
        for u in User.objects.filter(status=User.STATUS_ACTIVE, contact_enabled=True).order_by("userid"):
            if depts.intersection(u.department or []) and u.userid not in ids:
                ids.append(u.userid)
    users = User.objects.in_bulk(ids)
    return [users[i] for i in ids if i in users and users[i].status == User.STATUS_ACTIVE and users[i].contact_enabled]


@action("scan", schemas.Scan)
def scan(body: dict) -> dict:
    """A WeChat user scans a contact way and adds the employee it routes to.

    Body: config_id, external_userid (optional: an existing customer; else a new WeChat user),
    name (for the new user), at (createtime, default now). Type 1 → the way's one user; type 2 →
    round-robin over user + party members. add_way 1, state from the way, oper_userid = the
    customer. Events: skip_verify → add_half_external_contact (+ add_external_contact when the
    employee adds back); else add_external_contact. A temporary way is used up by one add and
    opens a temporary chat.
    """
    now = clock.now()
    way = ContactWay.objects.select_for_update().filter(config_id=body.get("config_id"), deleted=False).first()
    if way is None:
        raise ControlError("unknown or deleted contact way")
    if way.is_temp and way.used:
        raise ControlError("this temporary QR code has already been used")
    if way.is_temp and way.expires_at and way.expires_at <= now:
        raise ControlError("this temporary QR code has expired")
    members = way_members(way)
    if not members:
        raise ControlError("the contact way has no active employee to route to")
    user = members[way.rotation % len(members)]
    ext = resolve_customer(body)
    cfg = way.config
    if way.is_temp and cfg.get("unionid") and ext.unionid != cfg["unionid"]:
        raise ControlError("this temporary QR code is restricted to another WeChat user")
    out = customer_adds(
        user,
        ext,
        add_way=1,
        state=cfg.get("state", ""),
        skip_verify=cfg.get("skip_verify", True),
        createtime=int(body.get("at") or now),
        config_id=way.config_id,
    )
    if out["added"]:
        way.rotation += 1
        fields = ["rotation"]
        if way.is_temp:
            way.used = True
            fields.append("used")
            TempChat.objects.create(
                config_id=way.config_id,
                userid=user.userid,
                external_userid=ext.external_userid,
                started_at=now,
                expires_at=now + int(cfg.get("chat_expires_in") or rules.get().temp_chat_expires_default_s),
            )
        way.save(update_fields=fields)
    out["config_id"] = way.config_id
    return out


# --- welcome messages ----------------------------------------------------------------------------


@endpoint("externalcontact/send_welcome_msg", methods=("POST",))
def send_welcome_msg(req: SimRequest) -> dict:  # noqa: C901 - one check per WeCom rule, in the order WeCom reports them
    """send_welcome_msg (doc 92137, rules R16/R17).

    Code checks: missing → 41049; unknown or superseded by a later add → 41050; already used (by
    this or another app), or the employee and the customer have started chatting → 41051;
    older than ``welcome_code_ttl_s`` (20 s) → 41050. That expiry gives 41050 and not 41051 is
    inferred (part 1 §5.1, unverified).
    Content: text ≤ 4000 bytes (45002); ≤ 9 attachments (40058); each ``msgtype`` must be one of
    image/link/miniprogram/video/file with its sub-object present (41065, code unverified); media
    ids must exist and be younger than 3 days (40007); text and attachments not both empty (40058).
    """
    r = rules.get()
    body = req.body
    code_s = body.get("welcome_code")
    if not code_s:
        raise WeComError(41049)
    code = _welcome_code_state(code_s) if isinstance(code_s, str) else None
    if code is None or code["revoked"]:
        raise WeComError(41050)
    if code["used_at"] is not None:
        raise WeComError(41051)
    if code["pair_used"]:
        raise WeComError(41051)
    if code["follow_status"] is not None and code["chatted"]:
        raise WeComError(41051)
    if code["issued_at"] + r.welcome_code_ttl_s <= req.now:
        raise WeComError(41050)
    if code["follow_status"] not in (Follow.ACTIVE, Follow.HALF):
        raise WeComError(41050)
    payload: dict[str, Any] = {}
    text = body.get("text")
    if text is not None:
        if not isinstance(text, dict) or not isinstance(text.get("content", ""), str):
            raise WeComError(40058, "invalid text")
        check_bytes(text.get("content"), r.welcome_text_max_bytes, "text.content")
        if text.get("content"):
            payload["text"] = {"content": text["content"]}
    atts = body.get("attachments")
    if atts is not None:
        if not isinstance(atts, list):
            raise WeComError(40058, "invalid attachments")
        if len(atts) > r.welcome_max_attachments:
            raise WeComError(40058, f"attachments at most {r.welcome_max_attachments}")
        out_atts = []
        for a in atts:
            if not isinstance(a, dict):
                raise WeComError(41065)
            mt = a.get("msgtype")
            if mt not in VALIDATORS or not isinstance(a.get(mt), dict):
                raise WeComError(41065)
            out_atts.append({"msgtype": mt, mt: VALIDATORS[mt](a[mt], req.now)})
        if out_atts:
            payload["attachments"] = out_atts
    if not payload:
        raise WeComError(40058, "text and attachments are both empty")
    # single use: of two concurrent callers only the one whose update lands wins
    if not _use_welcome_code(code_s, req.now, payload):
        raise WeComError(41051)
    return {}


# send_welcome_msg is the call a burst of adds makes most (one per add, within 20 s): its checks
# read in one statement and its single use is one conditional UPDATE, in plain SQL (the ORM's query
# building cost this endpoint more CPU than the database did).
def _welcome_code_state(code: str) -> dict | None:
    """The code, whether a code of the same pair was already used, and the pair's follow (the
    first by id, as ``Follow.objects.filter(...).first()``; status None when there is none)."""
    w, f = WelcomeCode._meta.db_table, Follow._meta.db_table
    sql = (
        f"SELECT w.issued_at, w.used_at, w.revoked, "
        f"EXISTS (SELECT 1 FROM {w} u WHERE u.userid = w.userid AND u.external_userid = w.external_userid "
        f"AND u.revoked = %s AND u.used_at IS NOT NULL), fo.chatted, fo.status "
        f"FROM {w} w LEFT JOIN {f} fo ON fo.id = "
        f"(SELECT MIN(x.id) FROM {f} x WHERE x.userid = w.userid AND x.external_userid = w.external_userid) "
        f"WHERE w.code = %s"
    )
    with connection.cursor() as cur:
        cur.execute(sql, [False, code])
        row = cur.fetchone()
    if row is None:
        return None
    issued_at, used_at, revoked, pair_used, chatted, status = row
    return {
        "issued_at": issued_at,
        "used_at": used_at,
        "revoked": bool(revoked),
        "pair_used": bool(pair_used),
        "chatted": bool(chatted),
        "follow_status": status,
    }


def _use_welcome_code(code: str, now: int, payload: dict) -> bool:
    """Mark the code used with what was sent; False when another caller used it first."""
    field = WelcomeCode._meta.get_field("sent_payload")
    with connection.cursor() as cur:
        cur.execute(
            f"UPDATE {WelcomeCode._meta.db_table} SET used_at = %s, sent_payload = %s"
            " WHERE code = %s AND used_at IS NULL",
            [now, field.get_db_prep_save(payload, connection), code],
        )
        return cur.rowcount == 1


@action("welcome_log", schemas.WelcomeLog)
def welcome_log(body: dict) -> dict:
    """Issued welcome codes with issued_at, used_at and the payload sent (welcome latency)."""
    qs = WelcomeCode.objects.order_by("issued_at", "code")
    for k in ("userid", "external_userid", "config_id", "state"):
        if body.get(k):
            qs = qs.filter(**{k: body[k]})
    if body.get("since"):
        qs = qs.filter(issued_at__gte=int(body["since"]))
    if str(body.get("used", "")).lower() in ("1", "true"):
        qs = qs.filter(used_at__isnull=False)
    rows = list(qs[: int(body.get("limit", 1000))])
    return {
        "welcome_codes": [
            {
                "code": c.code,
                "userid": c.userid,
                "external_userid": c.external_userid,
                "change_type": c.change_type,
                "state": c.state,
                "config_id": c.config_id,
                "issued_at": c.issued_at,
                "used_at": c.used_at,
                "latency_s": (c.used_at - c.issued_at) if c.used_at is not None else None,
                "revoked": c.revoked,
                "sent_payload": c.sent_payload,
            }
            for c in rows
        ]
    }


# --- group welcome templates (doc 92366, rule R18) ----------------------------------------------

# If several attachment kinds are filled, one is kept, in this precedence (unverified, part 1 §5.2).
TEMPLATE_ATTACHMENTS = ("image", "link", "miniprogram", "file", "video")


def _template_content(body: dict, now: int, base: dict | None = None) -> dict:
    content = dict(base or {})
    if "text" in body and body["text"] is not None:
        text = body["text"]
        if not isinstance(text, dict) or not isinstance(text.get("content", ""), str):
            raise WeComError(40058, "invalid text")
        check_bytes(text.get("content"), rules.get().group_welcome_text_max_bytes, "text.content")
        if text.get("content"):
            content["text"] = {"content": text["content"]}
        else:
            content.pop("text", None)
    present = [k for k in TEMPLATE_ATTACHMENTS if body.get(k)]
    if present:
        for k in TEMPLATE_ATTACHMENTS:
            content.pop(k, None)
        kind = present[0]
        content[kind] = VALIDATORS[kind](body[kind], now)
    if not content:
        raise WeComError(40058, "text, image, link, miniprogram, file and video are all empty")
    return content


def _get_template(req: SimRequest, for_write: bool) -> GroupWelcomeTemplate:
    tid = req.body.get("template_id")
    if not tid or not isinstance(tid, str):
        raise WeComError(40058, "template_id is required")
    t = GroupWelcomeTemplate.objects.filter(template_id=tid, deleted=False).first()
    if t is None:
        # unknown template_id: errcode unverified (part 1 §5.2); 40058 as chosen there
        raise WeComError(40058, "invalid template_id")
    if for_write and t.creator_secret and t.creator_secret != req.secret:
        raise WeComError(41058)
    return t


@endpoint("externalcontact/group_welcome_template/add", methods=("POST",))
def group_welcome_template_add(req: SimRequest) -> dict:
    content = _template_content(req.body, req.now)
    notify = req.body.get("notify", 1)
    if notify not in (0, 1):
        raise WeComError(40058, "invalid notify")
    with transaction.atomic():
        if GroupWelcomeTemplate.objects.filter(deleted=False).count() >= rules.get().group_welcome_template_cap:
            raise WeComError(41055)
        t = GroupWelcomeTemplate.objects.create(
            template_id="msg" + new_id("", 29),
            content=content,
            agentid=int_param(req.body.get("agentid"), "agentid"),
            creator_secret=req.secret,
            notify=notify,
        )
    return {"template_id": t.template_id}


@endpoint("externalcontact/group_welcome_template/edit", methods=("POST",))
def group_welcome_template_edit(req: SimRequest) -> dict:
    """Only the app that created a template may edit it (41058). Fields not sent stay as they
    were; sending an attachment replaces the stored one."""
    t = _get_template(req, for_write=True)
    t.content = _template_content(req.body, req.now, base=t.content)
    t.save(update_fields=["content"])
    return {}


@endpoint("externalcontact/group_welcome_template/get", methods=("POST",))
def group_welcome_template_get(req: SimRequest) -> dict:
    t = _get_template(req, for_write=False)
    out: dict[str, Any] = {}
    for k, v in t.content.items():
        out[k] = image_out(v) if k == "image" else v
    return out


@endpoint("externalcontact/group_welcome_template/del", methods=("POST",))
def group_welcome_template_del(req: SimRequest) -> dict:
    t = _get_template(req, for_write=True)
    t.deleted = True
    t.save(update_fields=["deleted"])
    return {}


@action("part1/counts", schemas.Empty)
def part1_counts(body: dict) -> dict:
    """Counts behind the part-1 caps, so tests can set a cap just above what exists."""
    from siyu.wecom_sim.models import Tag

    return {
        "api_ways": api_way_count(),
        "contact_ways": ContactWay.objects.filter(deleted=False, is_temp=False).count(),
        "join_ways": JoinWay.objects.filter(deleted=False).count(),
        "temp_ways_today": ContactWay.objects.filter(
            is_temp=True, created_at__gte=clock.day_start(clock.now())
        ).count(),
        "group_welcome_templates": GroupWelcomeTemplate.objects.filter(deleted=False).count(),
        "corp_tags": Tag.objects.filter(deleted=False, group__deleted=False).count(),
    }
