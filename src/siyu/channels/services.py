"""Channel codes: staff eligibility (schedule × caps × backups), the contact way behind each code,
welcome messages (never sent twice), media re-upload, attribution writes (tags, remark).

WeCom calls are made outside write transactions: the callers are the handler's read phase, the
console views and the timers' on-commit hooks.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any, TypedDict

from django.conf import settings
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.db.models import Count
from django.utils import timezone

from siyu.channels.models import (
    STATE_PREFIX,
    ChannelAdd,
    ChannelCode,
    DefaultWelcome,
    MediaCache,
    WelcomeSend,
)
from siyu.core import inputs, timers
from siyu.customers import selectors as customer_selectors
from siyu.customers import services as customer_services
from siyu.org import selectors as org_selectors
from siyu.wecom import gateway
from siyu.wecom.media import selectors as media_selectors
from siyu.wecom.media import services as media_services

logger = logging.getLogger("siyu.channels")

MEDIA_TTL_S = 3 * 24 * 3600
MEDIA_MARGIN_S = 3600  # re-upload an hour before WeCom forgets the media id
WELCOME_MAX_ATTACHMENTS = 9  # send_welcome_msg doc 92137
ATTACHMENT_TYPES = ("image", "link", "miniprogram", "video", "file")
MAX_USERS = 100  # contact way `user` list (doc 92228)


class ChannelError(Exception):
    pass


# --- time -----------------------------------------------------------------------------------------
def local(dt: datetime | float | None = None) -> datetime:
    if dt is None:
        dt = timezone.now()
    if isinstance(dt, (int, float)):
        dt = datetime.fromtimestamp(dt, tz=timezone.get_current_timezone())
    return timezone.localtime(dt)


def _hm(value: str) -> dtime | None:
    m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value or "")
    return dtime(int(m.group(1)), int(m.group(2))) if m else None


def in_window(start: str, end: str, t: dtime) -> bool:
    """[start, end) in local time; end ≤ start spans midnight; "24:00"-style ends use "00:00"."""
    a, b = _hm(start), _hm(end)
    if a is None or b is None:
        return False
    if a < b:
        return a <= t < b
    return t >= a or t < b


def clean_schedule(slots: Iterable[dict[str, Any]] | None) -> list[dict[str, Any]]:
    out = []
    for s in slots or []:
        days = sorted({int(d) for d in s.get("days", []) if str(d).isdigit() and 0 <= int(d) <= 6})
        if not days or _hm(s.get("start", "")) is None or _hm(s.get("end", "")) is None:
            raise ChannelError("invalid schedule slot")
        out.append(
            {"days": days, "start": s["start"], "end": s["end"], "users": [str(u) for u in s.get("users") or []]}
        )
    return out


# --- staff ----------------------------------------------------------------------------------------
def primaries(code: ChannelCode) -> list[str]:
    """A store code's guides (active employees with the customer-contact function in the store and
    its sub-departments), else its chosen employees."""
    if code.kind == ChannelCode.STORE and code.department_id:
        return org_selectors.contact_member_userids(code.department_id) or list(code.users)
    if code.kind == ChannelCode.STORE:
        return list(code.users)
    return list(code.users)


def on_duty(code: ChannelCode, now: datetime) -> list[str]:
    """Primary employees on duty at ``now`` (local time) by the code's schedule."""
    base = primaries(code)
    if not code.schedule:
        return base
    now = local(now)
    wd, t = now.weekday(), now.time()
    # a slot spanning midnight belongs to the day it starts on
    yesterday = (wd - 1) % 7
    chosen: list[str] = []
    for s in code.schedule:
        a, b = _hm(s["start"]), _hm(s["end"])
        if a is None or b is None:  # never: clean_schedule refuses such a slot
            continue
        hit = (wd in s["days"] and in_window(s["start"], s["end"], t) and (a < b or t >= a)) or (
            yesterday in s["days"] and a >= b and t < b
        )
        if hit:
            for u in s.get("users") or base:
                if u in base and u not in chosen:
                    chosen.append(u)
    return chosen


def day_counts(code: ChannelCode, day: date) -> dict[str, int]:
    return dict(
        ChannelAdd.objects.filter(code=code, day=day, backup=False)
        .values_list("userid")
        .annotate(n=Count("id"))
        .values_list("userid", "n")
    )


def eligible(code: ChannelCode, now: datetime, counts: dict[str, int] | None = None) -> tuple[list[str], bool]:
    """The `user` list the contact way should carry at ``now``: on-duty primaries under their daily
    cap; when there are none, the backups (not capped: the last resort). Returns (users, backup)."""
    now = local(now)
    if counts is None:
        counts = day_counts(code, now.date())
    staff = on_duty(code, now)
    if code.daily_cap:
        staff = [u for u in staff if counts.get(u, 0) < code.daily_cap]
    if staff:
        return staff[:MAX_USERS], False
    if code.backups:
        return list(code.backups)[:MAX_USERS], True
    # nobody left and no backup: WeCom needs a user, keep the primaries (shown as a warning)
    return primaries(code)[:MAX_USERS], True


def skip_verify_at(code: ChannelCode, now: datetime) -> bool:
    if not code.skip_verify:
        return False
    if code.skip_verify_start and code.skip_verify_end:
        return in_window(code.skip_verify_start, code.skip_verify_end, local(now).time())
    return True


def recompute(
    code: ChannelCode, now: datetime | float | None = None, counts: dict[str, int] | None = None, force: bool = False
) -> bool:
    """Push the eligible staff (and skip-verify) to the contact way when they changed. Returns True
    when WeCom was updated."""
    now = local(now)
    if code.valid_until and now >= code.valid_until and code.config_id:
        delete_code(code)  # the validity period is over: the QR code stops working
        return True
    users, backup = eligible(code, now, counts)
    skip = skip_verify_at(code, now)
    if not code.config_id or (not force and users == code.active_users and skip == code.active_skip_verify):
        if backup != code.on_backup:
            ChannelCode.objects.filter(id=code.id).update(on_backup=backup)
            code.on_backup = backup
        return False
    try:
        gateway.contact().external_contact.update_contact_way_raw(
            {"config_id": code.config_id, "user": users, "skip_verify": skip}
        )
    except gateway.WeComAPIError as e:
        ChannelCode.objects.filter(id=code.id).update(last_error=f"{e.errcode}: {e.errmsg}"[:512])
        raise
    ChannelCode.objects.filter(id=code.id).update(
        active_users=users, active_skip_verify=skip, on_backup=backup, recomputed_at=timezone.now(), last_error=""
    )
    code.active_users, code.active_skip_verify, code.on_backup = users, skip, backup
    return True


def check_cap(code_id: int, userid: str, day: date, at: datetime) -> bool:
    """After an add committed: when ``userid`` reached the code's daily cap, take them off."""
    code = ChannelCode.objects.filter(id=code_id, enabled=True).first()
    if code is None or not code.daily_cap or userid not in code.active_users:
        return False
    counts = day_counts(code, day)
    if counts.get(userid, 0) < code.daily_cap:
        return False
    try:
        return recompute(code, at, counts)
    except Exception:
        logger.exception("cap recompute of channel code %s failed", code_id)
        return False


def recompute_all(now: datetime | float | None = None) -> int:
    n = 0
    for code in ChannelCode.objects.filter(enabled=True).exclude(config_id=""):
        try:
            n += recompute(code, now)
        except Exception:
            logger.exception("recompute of channel code %s failed", code.id)
    return n


def next_boundary(now: datetime | None = None) -> datetime:
    """The next instant any code's staff may change by time: a slot edge, a skip-verify window edge
    or midnight."""
    now = local(now)
    edges = {"00:00"}
    for code in ChannelCode.objects.filter(enabled=True).only("schedule", "skip_verify_start", "skip_verify_end"):
        for s in code.schedule or []:
            edges.update((s["start"], s["end"]))
        if code.skip_verify_start and code.skip_verify_end:
            edges.update((code.skip_verify_start, code.skip_verify_end))
    best: datetime | None = None
    for until in ChannelCode.objects.filter(enabled=True, valid_until__gt=now).values_list("valid_until", flat=True):
        if until is not None:
            best = until if best is None or until < best else best
    for e in edges:
        t = _hm(e)
        if t is None:
            continue
        cand = now.replace(hour=t.hour, minute=t.minute, second=0, microsecond=0)
        if cand <= now:
            cand += timedelta(days=1)
        best = cand if best is None or cand < best else best
    return best if best is not None else now + timedelta(days=1)  # never: 00:00 is an edge


# --- the contact way ------------------------------------------------------------------------------
def _way_body(code: ChannelCode, users: list[str], skip: bool) -> dict[str, Any]:
    return {
        "type": 2,  # multi-member: the list changes with schedules and caps; type cannot change later
        "scene": 2,
        "remark": code.name[:30],
        "skip_verify": skip,
        "state": code.state,
        "user": users,
    }


def create_code(data: dict[str, Any], *, created_by: str = "", created_at: datetime | None = None) -> ChannelCode:
    """A code and its contact way in WeCom. ``created_at``: when the code was made, for codes
    imported with their history (``siyu demo``); now by default."""
    code = ChannelCode.objects.create(created_by=created_by, **data)
    try:
        push_new_way(code)
    except Exception:
        code.delete()
        raise
    if created_at is not None:
        ChannelCode.objects.filter(id=code.id).update(created_at=created_at)
        code.created_at = created_at
    warm_welcome_media(code.welcome)
    return code


def push_new_way(code: ChannelCode) -> None:
    now = local()
    users, backup = eligible(code, now)
    if not users:
        raise ChannelError("no employee to route to")
    skip = skip_verify_at(code, now)
    res = gateway.contact().external_contact.add_contact_way_raw(_way_body(code, users, skip))
    code.config_id = res["config_id"]
    code.qr_url = res.get("qr_code", "")
    code.active_users, code.active_skip_verify, code.on_backup = users, skip, backup
    code.recomputed_at = timezone.now()
    code.save(update_fields=["config_id", "qr_url", "active_users", "active_skip_verify", "on_backup", "recomputed_at"])


def update_code(code: ChannelCode, data: dict[str, Any]) -> ChannelCode:
    for k, v in data.items():
        setattr(code, k, v)
    code.save()
    if code.config_id:
        gateway.contact().external_contact.update_contact_way_raw(
            {"config_id": code.config_id, "remark": code.name[:30]}
        )
        recompute(code, force=True)
    warm_welcome_media(code.welcome)
    return code


def delete_code(code: ChannelCode) -> None:
    if code.config_id:
        try:
            gateway.contact().external_contact.del_contact_way(code.config_id)
        except gateway.WeComAPIError as e:
            if e.errcode not in (41044,):
                raise
    code.enabled = False
    code.config_id = ""
    code.save(update_fields=["enabled", "config_id"])


def code_for_state(state: str) -> ChannelCode | None:
    if not state or not state.startswith(STATE_PREFIX):
        return None
    rest = state[len(STATE_PREFIX) :]
    if not rest.isdigit():
        return None
    return ChannelCode.objects.filter(id=int(rest)).first()


# --- media ----------------------------------------------------------------------------------------
def media_dir() -> Path:
    d = Path(settings.MEDIA_ROOT) / "channels"
    d.mkdir(parents=True, exist_ok=True)
    return d


def save_upload(data: bytes, suffix: str) -> str:
    name = f"{uuid.uuid4().hex}{suffix}"
    (media_dir() / name).write_bytes(data)
    return name


def media_id_for(name: str, media_type: str = "image", now: float | None = None) -> str:
    """A valid temporary media id for a stored file: cached for 3 days (less a margin), then
    uploaded again."""
    now = now if now is not None else time.time()
    row = MediaCache.objects.filter(file=name, media_type=media_type).first()
    if row and row.uploaded_at + MEDIA_TTL_S - MEDIA_MARGIN_S > now:
        return row.media_id
    path = media_dir() / Path(name).name
    with open(path, "rb") as fh:
        res = gateway.contact().media.upload(media_type, (path.name, fh))
    MediaCache.objects.update_or_create(
        file=name, media_type=media_type, defaults={"media_id": res["media_id"], "uploaded_at": now}
    )
    return str(res["media_id"])


# --- welcome messages ----------------------------------------------------------------------------
def warm_welcome_media(welcome: dict[str, Any]) -> int:
    """Upload a welcome's stored files to WeCom now (outside any transaction), so the first
    customer's welcome does not wait for an upload in its 20 s; the refresh timer then keeps the
    ids fresh while the welcome is in use. A refusal is logged: the send uploads again."""
    n = 0
    for a in (welcome or {}).get("attachments", []):
        media = (a.get(a.get("msgtype", "")) or {}).get("media")
        if not media:
            continue
        try:
            media_services.media_id(int(media))
            n += 1
        except gateway.WeComAPIError as e:
            logger.warning("uploading welcome media %s to WeCom failed: %s", media, e.errcode)
    return n


def render(template: str, **values: str) -> str:
    out = template or ""
    for k, v in values.items():
        out = out.replace("{" + k + "}", v or "")
    return out


def clean_welcome(text: str, attachments: list[dict[str, Any]]) -> dict[str, Any]:
    """Validate a welcome definition: text ≤ 4000 bytes, ≤ 9 attachments of known kinds."""
    text = (text or "").strip()
    if len(text.encode()) > 4000:
        raise ChannelError("welcome text is longer than 4000 bytes")
    if inputs.CONTROL_CHARS.search(text):
        raise ChannelError("welcome text must not contain control characters")
    atts = []
    for a in attachments or []:
        mt = a.get("msgtype")
        if mt not in ATTACHMENT_TYPES or not isinstance(a.get(mt), dict):
            raise ChannelError("invalid attachment")
        for key in ("url", "picurl", "pic_url"):  # links and images: http(s) only
            value = a[mt].get(key)
            if value is None:
                continue
            try:
                inputs.check_link_url(value if isinstance(value, str) else "-")
            except ValueError:
                raise ChannelError(f"{mt}.{key}: must be an http(s) URL") from None
        media = a[mt].get("media")
        if media is not None and (
            mt == "link"
            or not isinstance(media, int)
            or isinstance(media, bool)
            or not media_selectors.exists(media, "image" if mt == "miniprogram" else mt)
        ):
            raise ChannelError(f"{mt}.media: must be the id of an uploaded {'image' if mt == 'miniprogram' else mt}")
        atts.append({"msgtype": mt, mt: dict(a[mt])})
    if len(atts) > WELCOME_MAX_ATTACHMENTS:
        raise ChannelError("at most 9 attachments")
    return {"text": text, "attachments": atts} if (text or atts) else {}


def save_default_welcome(
    text: str,
    *,
    userid: str = "",
    department_id: int | None = None,
    attachments: list[dict[str, Any]] | None = None,
) -> DefaultWelcome:
    """Set the default welcome (text and attachments) of one employee (userid) or one department
    (department_id): the one row per target is replaced, never duplicated."""
    welcome = clean_welcome(text, attachments or [])
    if not welcome:
        raise ChannelError("a welcome needs text or an attachment")
    row, _created = DefaultWelcome.objects.update_or_create(
        userid=userid or "",
        department_id=department_id,
        defaults={"welcome": welcome},
    )
    return row


def default_welcome_count() -> int:
    return DefaultWelcome.objects.count()


def delete_default_welcomes(ids: Iterable[int]) -> int:
    return DefaultWelcome.objects.filter(id__in=list(ids)).delete()[0]


def welcome_for(code: ChannelCode | None, userid: str) -> tuple[dict[str, Any], str]:
    """The welcome to send: the code's own, else the employee's default, else their department's."""
    if code is not None and code.welcome:
        return code.welcome, "channel"
    row = DefaultWelcome.objects.filter(userid=userid).exclude(userid="").first()
    if row:
        return row.welcome, "employee"
    dept = org_selectors.main_department_id(userid)
    if dept:
        row = DefaultWelcome.objects.filter(department_id=dept, userid="").first()
        if row:
            return row.welcome, "department"
    return {}, ""


def _set_text(body: dict[str, Any], welcome: dict[str, Any], nickname: str, employee_name: str) -> dict[str, Any]:
    text = render(welcome.get("text", ""), nickname=nickname, employee=employee_name)
    if text:
        body["text"] = {"content": text}
    return body


def build_payload(
    welcome: dict[str, Any], nickname: str, employee_name: str, now: float | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    _set_text(body, welcome, nickname, employee_name)
    atts = []
    for a in welcome.get("attachments", []):
        mt = a["msgtype"]
        obj = dict(a[mt])
        obj.pop("name", None)  # the file's name: ours, not WeCom's
        media = obj.pop("media", None)  # a stored file (siyu.wecom.media), uploaded when needed
        stored = obj.pop("file", None)  # an image stored before the media service (channels/ dir)
        key = "pic_media_id" if mt == "miniprogram" else "media_id"
        if media:
            obj[key] = media_services.media_id(int(media), now=now)
        elif stored:
            obj[key] = media_id_for(stored, "image" if mt in ("image", "miniprogram") else mt, now)
        atts.append({"msgtype": mt, mt: obj})
    if atts:
        body["attachments"] = atts
    return body


def _names(userid: str, external_userid: str, need_nickname: bool) -> tuple[str, str]:
    emp = org_selectors.names_by_userid([userid]).get(userid) or ""
    nick = ""
    if need_nickname:
        nick = customer_selectors.names_by_external([external_userid]).get(external_userid) or ""
        if not nick:
            detail = customer_services.fetch_customer(external_userid)
            nick = ((detail or {}).get("external_contact") or {}).get("name", "")
    return nick, emp


def send_welcome(
    welcome_code: str, userid: str, external_userid: str, code: ChannelCode | None, event_at: float = 0
) -> WelcomeSend | None:
    """Send the welcome for one add, at most once per welcome_code: the row is committed before the
    call (a second event with this code finds it and stops), then marked sent / failed. Usually
    the worker's urgent lane has sent it already (``send_welcomes``): one indexed read says so."""
    if not welcome_code:
        return None  # the contact way / WeCom console carries its own welcome: WeCom sent none
    if WelcomeSend.objects.filter(welcome_code=welcome_code).exists():
        return None
    welcome, source = welcome_for(code, userid)
    if not welcome:
        return None
    try:
        with transaction.atomic():
            row = WelcomeSend.objects.create(
                welcome_code=welcome_code,
                code=code,
                userid=userid,
                external_userid=external_userid,
                source=source,
                event_at=event_at,
                started_at=time.time(),
            )
    except IntegrityError:
        return None  # already sent, being sent, or maybe sent by a crashed worker: never twice
    body: dict[str, Any] = {}
    try:
        need_nick = "{nickname}" in welcome.get("text", "")
        nick, emp = _names(userid, external_userid, need_nick)
        body = build_payload(welcome, nick, emp)
        body["welcome_code"] = welcome_code
        gateway.contact().external_contact.send_welcome_msg_raw(body)
        error = None
    except Exception as e:  # noqa: BLE001 — recorded on the row
        error = e
    _record_welcome(row.id, body, error)
    return row


def _record_welcome(row_id: int, body: dict[str, Any], error: Exception | None) -> bool:
    """Mark a WelcomeSend row sent (with the body sent, its welcome_code left out) or failed."""
    if error is None:
        body.pop("welcome_code", None)
        WelcomeSend.objects.filter(id=row_id).update(status=WelcomeSend.SENT, sent_at=time.time(), payload=body)
        return True
    if isinstance(error, gateway.WeComAPIError):
        WelcomeSend.objects.filter(id=row_id).update(
            status=WelcomeSend.FAILED, errcode=error.errcode, error=str(error.errmsg)[:512]
        )
    else:  # network trouble: the code may or may not have been used
        WelcomeSend.objects.filter(id=row_id).update(status=WelcomeSend.FAILED, error=gateway.error_text(error, 512))
    return False


# A welcome row still ``pending`` this long after its send started was left by a process that died
# between committing the row and recording WeCom's answer. WeCom accepts a welcome_code for 20 s
# after the add (doc 92137); the margin covers a call still in flight (timeout, rate-limit backoff).
WELCOME_WINDOW_S = 20
WELCOME_RECONCILE_AFTER_S = 120
WELCOME_RECONCILE_KIND = "channels.welcome_reconcile"
WELCOME_RECONCILE_EVERY_S = 60


def reconcile_welcomes(now: float | None = None) -> int:
    """Mark ``unknown`` the welcome rows a crash left ``pending`` for good, so analytics count them
    as what they are: maybe sent. WeCom offers no way to ask whether a welcome_code was used, and
    the API-call log cannot tell either: it keeps no request bodies (no welcome_code to match), and
    the crash that left the row pending also lost the calls its thread had collected. The send is
    never retried (at most once). A late answer still wins: ``_record_welcome`` updates by id
    whatever the status. Returns the number of rows marked."""
    cutoff = (now or time.time()) - WELCOME_RECONCILE_AFTER_S
    n = WelcomeSend.objects.filter(status=WelcomeSend.PENDING, started_at__lt=cutoff).update(
        status=WelcomeSend.UNKNOWN,
        error="no answer recorded: the sending process stopped during the call; WeCom may or may not have sent it",
    )
    if n:
        logger.warning("%d welcome send(s) left pending by a stopped process marked unknown", n)
    return n


# (userid, external_userid, channel code, welcome, source, event time)
WelcomeItem = tuple[str, str, ChannelCode | None, dict[str, Any], str, float]
WELCOME_THREADS = 32  # concurrent send_welcome_msg calls of one urgent batch
_executors: dict[str, tuple[int, ThreadPoolExecutor]] = {}  # name → (pid, ThreadPoolExecutor)
_exec_lock = threading.Lock()


def _pool(name: str, size: int) -> ThreadPoolExecutor:
    """This process's thread pool ``name`` (a forked process makes its own: threads do not
    survive a fork)."""
    with _exec_lock:
        pid, executor = _executors.get(name, (None, None))
        if executor is None or pid != os.getpid():
            executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix=f"channels-{name}")
            _executors[name] = (os.getpid(), executor)
        return executor


def _deliver(
    body: dict[str, Any], welcome: dict[str, Any], emp: str, external_userid: str, need_nick: bool
) -> tuple[dict[str, Any], Exception | None, list[Any]]:
    """In a pool thread, no database: the nickname when the text needs one we do not have yet
    (externalcontact/get), then send_welcome_msg. Returns the body sent, the error, and the
    calls made (``ApiCall`` rows for the caller to write)."""
    with gateway.collect_calls() as calls:
        try:
            if need_nick:
                detail = customer_services.fetch_customer(external_userid)
                _set_text(body, welcome, ((detail or {}).get("external_contact") or {}).get("name", ""), emp)
            gateway.contact().external_contact.send_welcome_msg_raw(body)
            error = None
        except Exception as e:  # noqa: BLE001 — recorded on the row
            error = e
        finally:
            connection.close()  # a token read may have opened one: none is left open per pool thread
        return body, error, calls.take()


def send_welcomes(events: list[dict[str, Any]]) -> int:
    """The worker's urgent lane: the welcomes of a batch of add events, each at most once per
    welcome_code (the row is committed before the call, as in ``send_welcome``). One transaction
    claims the codes not seen before, the calls go out concurrently, one transaction records the
    outcomes (and the calls' log). Returns how many were sent."""
    items = _welcome_items(events)
    if not items:
        return 0
    rows = _claim_welcomes(items)
    if not rows:
        return 0
    names = org_selectors.names_by_userid({r.userid for r in rows})
    nicks = {}
    if any("{nickname}" in items[r.welcome_code][3].get("text", "") for r in rows):
        nicks = customer_selectors.names_by_external({r.external_userid for r in rows})
    jobs = []
    for row in rows:
        welcome = items[row.welcome_code][3]
        emp, nick = names.get(row.userid, ""), nicks.get(row.external_userid, "")
        body = build_payload(welcome, nick, emp)  # media ids (re-uploaded when stale) here, with the database
        body["welcome_code"] = row.welcome_code
        need_nick = "{nickname}" in welcome.get("text", "") and not nick
        jobs.append(
            (
                row,
                _pool("welcome", WELCOME_THREADS).submit(_deliver, body, welcome, emp, row.external_userid, need_nick),
            )
        )
    sent, calls = 0, []
    outcomes = [(row, *future.result()) for row, future in jobs]  # before the write lock is taken
    outcomes = [_retry_stale_media(items[o[0].welcome_code][3], *o) for o in outcomes]
    with transaction.atomic():
        for row, body, error, made in outcomes:
            calls += made
            sent += _record_welcome(row.id, body, error)
        gateway.record_calls(calls)
    return sent


MEDIA_EXPIRED = 40007  # invalid media_id: WeCom forgot a media id before our clock said it would


def _forget_media(welcome: dict[str, Any]) -> bool:
    """Drop the cached WeCom ids of every stored file in ``welcome``; False when it has none."""
    found = False
    for a in welcome.get("attachments", []):
        obj = a.get(a.get("msgtype", "")) or {}
        if obj.get("media"):
            media_services.forget(int(obj["media"]))
            found = True
        elif obj.get("file"):
            MediaCache.objects.filter(file=obj["file"]).delete()
            found = True
    return found


def _retry_stale_media(
    welcome: dict[str, Any], row: WelcomeSend, body: dict[str, Any], error: Exception | None, made: list[Any]
) -> tuple[WelcomeSend, dict[str, Any], Exception | None, list[Any]]:
    """A welcome WeCom refused for an expired media id (40007): the code was not used, so upload
    the files again and send once more, still within the code's 20 s."""
    if not (isinstance(error, gateway.WeComAPIError) and error.errcode == MEDIA_EXPIRED and _forget_media(welcome)):
        return row, body, error, made
    text = body.get("text")
    try:
        body = build_payload({**welcome, "text": ""}, "", "")
    except gateway.WeComAPIError as e:
        return row, body, e, made
    if text:
        body["text"] = text
    body["welcome_code"] = row.welcome_code
    with gateway.collect_calls() as calls:
        try:
            gateway.contact().external_contact.send_welcome_msg_raw(body)
            error = None
        except Exception as e:  # noqa: BLE001 — recorded on the row
            error = e
        return row, body, error, made + calls.take()


def _welcome_items(events: list[dict[str, Any]]) -> dict[str, WelcomeItem]:
    """The welcomes to send, by welcome code: (userid, external_userid, channel code, welcome,
    source, event time); an event without a code, or without a welcome to send, is left out."""
    items: dict[str, WelcomeItem] = {}
    codes: dict[str, ChannelCode | None] = {}
    for ev in events:
        wc, userid, ext = ev.get("WelcomeCode") or "", ev.get("UserID") or "", ev.get("ExternalUserID") or ""
        if not (wc and userid and ext) or wc in items:
            continue
        state = ev.get("State") or ""
        if state not in codes:
            codes[state] = code_for_state(state)
        welcome, source = welcome_for(codes[state], userid)
        if not welcome:
            continue
        try:
            event_at = float(ev.get("CreateTime") or 0)
        except (TypeError, ValueError):
            event_at = 0.0
        items[wc] = (userid, ext, codes[state], welcome, source, event_at)
    return items


def _claim_welcomes(items: dict[str, WelcomeItem]) -> list[WelcomeSend]:
    """``send_welcomes``' first transaction: a row per welcome code not seen before, committed
    before any call; the rows this worker inserted."""
    with transaction.atomic():
        seen = set(WelcomeSend.objects.filter(welcome_code__in=list(items)).values_list("welcome_code", flat=True))
        now = time.time()
        rows = [
            WelcomeSend(
                welcome_code=wc,
                code=code,
                userid=userid,
                external_userid=ext,
                source=source,
                event_at=event_at,
                started_at=now,
            )
            for wc, (userid, ext, code, _w, source, event_at) in items.items()
            if wc not in seen
        ]
        try:
            with transaction.atomic():
                WelcomeSend.objects.bulk_create(rows)
        except IntegrityError:  # another worker took one of them meanwhile (PostgreSQL): one by one
            mine = []
            for row in rows:
                try:
                    with transaction.atomic():
                        row.save(force_insert=True)
                    mine.append(row)
                except IntegrityError:
                    pass
            rows = mine
    return rows


class Decoration(TypedDict):
    """What ``decorate`` wrote to WeCom: the tags, remark and description that succeeded."""

    tags: list[str]
    remark: str | None
    description: str | None
    error: str


# --- attribution -----------------------------------------------------------------------------------
def decorate(code: ChannelCode, userid: str, external_userid: str) -> Decoration:
    """The WeCom writes for an add through ``code``: auto tags (mark_tag) and the remark /
    description from the templates. Returns what succeeded (recorded locally by ``record_add``)."""
    out: Decoration = {"tags": [], "remark": None, "description": None, "error": ""}
    client = gateway.contact()
    tag_ids = [t for t in code.tag_ids if t]
    if tag_ids:
        try:
            client.external_contact.mark_tag(userid, external_userid, add_tag=tag_ids)
            out["tags"] = tag_ids
        except gateway.WeComAPIError as e:
            out["error"] = f"mark_tag {e.errcode}: {e.errmsg}"
    if code.remark_template or code.description_template:
        need = "{nickname}" in code.remark_template + code.description_template
        nick, emp = _names(userid, external_userid, need)
        values = {"channel": code.name, "nickname": nick, "employee": emp}
        remark = render(code.remark_template, **values)[:20] or None  # remark ≤ 20 chars (doc 92115)
        desc = render(code.description_template, **values)[:150] or None
        try:
            client.external_contact.remark(userid, external_userid, remark=remark, description=desc)
            out["remark"], out["description"] = remark, desc
        except gateway.WeComAPIError as e:
            out["error"] = (out["error"] + f" remark {e.errcode}: {e.errmsg}").strip()
    return out


def open_add(userid: str, external_userid: str) -> ChannelAdd | None:
    return ChannelAdd.objects.filter(userid=userid, external_userid=external_userid, lost_at__isnull=True).first()


def record_add(code: ChannelCode, userid: str, external_userid: str, at: datetime, backup: bool) -> ChannelAdd | None:
    """Inside the inbox transaction: the add, counted at once (caps, analytics). Its tags and
    remark are written to WeCom off the inbox's path (``schedule_decoration``)."""
    if open_add(userid, external_userid) is not None:
        return None
    dept = org_selectors.main_department_id(userid)
    row = ChannelAdd.objects.create(
        code=code,
        userid=userid,
        department_id=dept,
        external_userid=external_userid,
        added_at=at,
        day=local(at).date(),
        backup=backup,
    )
    if code.tag_ids or code.remark_template or code.description_template:
        schedule_decoration(row.id)
    else:
        ChannelAdd.objects.filter(id=row.id).update(decorated=True, tags_ok=True, remark_ok=True)
    return row


# Tags and remark of an add: a thread pool takes them right after the inbox row commits, so the
# worker's queue (and the next welcome) does not wait for two more WeCom calls; a Timer row is the
# durable fallback (a crashed process's decorations run when the timer falls due).
DECORATE_KIND = "channels.decorate"
DECORATE_FALLBACK_S = 120
DECORATE_THREADS = 4
_futures: set[Future[None]] = set()


def _decorate_job(add_id: int) -> None:
    try:
        decorate_add(add_id)
    except Exception:
        logger.exception("decorating channel add %s failed; the timer will retry", add_id)
    finally:
        close_old_connections()


def schedule_decoration(add_id: int) -> None:
    timers.schedule(DECORATE_KIND, time.time() + DECORATE_FALLBACK_S, {"add": add_id}, key=f"chdec:{add_id}")

    def submit() -> None:
        f = _pool("decorate", DECORATE_THREADS).submit(_decorate_job, add_id)
        _futures.add(f)
        f.add_done_callback(_futures.discard)

    transaction.on_commit(submit)


def wait_decorations(timeout: float = 30) -> None:
    """Wait for the decorations submitted by this process (tests, shutdown)."""
    wait(list(_futures), timeout=timeout)


def decorate_add(add_id: int) -> bool:
    """Write an add's tags and remark to WeCom (outside any transaction), then record them."""
    row = ChannelAdd.objects.select_related("code").filter(id=add_id).first()
    if row is None or row.decorated:
        return False
    code = row.code
    done = decorate(code, row.userid, row.external_userid)
    with transaction.atomic():
        claimed = ChannelAdd.objects.filter(id=row.id, decorated=False).update(
            decorated=True,
            tags_ok=bool(done["tags"]) or not code.tag_ids,
            remark_ok=done["remark"] is not None
            or done["description"] is not None
            or not (code.remark_template or code.description_template),
            error=done["error"][:512],
        )
        if not claimed:
            return False
        customer_services.record_add_decoration(
            row.userid,
            row.external_userid,
            tag_ids=done["tags"],
            remark=done["remark"],
            description=done["description"],
            operator=f"channel:{code.id}",
        )
        timers.cancel(f"chdec:{add_id}")
    return True


def mark_lost(userid: str, external_userid: str, at: datetime) -> int:
    return ChannelAdd.objects.filter(userid=userid, external_userid=external_userid, lost_at__isnull=True).update(
        lost_at=at
    )


def ids(values: Iterable[Any]) -> list[str]:
    return [str(v).strip() for v in values if str(v).strip()]


# --- history --------------------------------------------------------------------------------------
class HistoryAdd(TypedDict):
    """An add of the past through a code (what the add callback would have recorded then)."""

    code_id: int
    userid: str
    external_userid: str
    added_at: datetime
    lost_at: datetime | None
    welcome: str  # the welcome's outcome then: sent | failed | "" (no welcome)


HISTORY_WELCOME_ERRCODE = 41051  # welcome_code expired: the customer had already chatted (doc 92137)


def _history_welcome_code(row: HistoryAdd) -> str:
    key = f"{row['code_id']}|{row['userid']}|{row['external_userid']}|{row['added_at'].timestamp():.0f}"
    return "hist-" + uuid.uuid5(uuid.NAMESPACE_URL, key).hex


def import_history(rows: Iterable[HistoryAdd]) -> dict[str, int]:
    """Record past adds through codes in bulk, with their welcome sends, as the add callbacks would
    have recorded them at the time (``siyu demo``'s six months of history). Idempotent: an add of
    the same code, employee and customer already recorded is skipped; nothing is sent to WeCom."""
    rows = list(rows)
    code_ids = {r["code_id"] for r in rows}
    codes_by_id = {c.id: c for c in ChannelCode.objects.filter(id__in=code_ids)}
    known = set(ChannelAdd.objects.filter(code_id__in=code_ids).values_list("code_id", "userid", "external_userid"))
    depts: dict[str, int | None] = {}
    adds: list[ChannelAdd] = []
    welcomes: list[WelcomeSend] = []
    for r in rows:
        code = codes_by_id.get(r["code_id"])
        key = (r["code_id"], r["userid"], r["external_userid"])
        if code is None or key in known:
            continue
        known.add(key)
        if r["userid"] not in depts:
            depts[r["userid"]] = org_selectors.main_department_id(r["userid"])
        adds.append(
            ChannelAdd(
                code=code,
                userid=r["userid"],
                department_id=depts[r["userid"]],
                external_userid=r["external_userid"],
                added_at=r["added_at"],
                day=local(r["added_at"]).date(),
                lost_at=r["lost_at"],
                decorated=True,
                tags_ok=True,
                remark_ok=True,
            )
        )
        if r["welcome"]:
            at = r["added_at"].timestamp()
            sent = r["welcome"] == WelcomeSend.SENT
            welcomes.append(
                WelcomeSend(
                    welcome_code=_history_welcome_code(r),
                    code=code,
                    userid=r["userid"],
                    external_userid=r["external_userid"],
                    source="channel",
                    status=WelcomeSend.SENT if sent else WelcomeSend.FAILED,
                    errcode=None if sent else HISTORY_WELCOME_ERRCODE,
                    error="" if sent else "invalid welcome_code",
                    event_at=at,
                    started_at=at + 0.2,
                    sent_at=at + 0.4 if sent else None,
                    payload={"text": {"content": (code.welcome or {}).get("text", "")}} if sent else {},
                )
            )
    with transaction.atomic():
        ChannelAdd.objects.bulk_create(adds, batch_size=500)
        WelcomeSend.objects.bulk_create(welcomes, batch_size=500, ignore_conflicts=True)
    return {"adds": len(adds), "welcomes": len(welcomes)}


def code_by_name(name: str) -> ChannelCode | None:
    """The enabled code called ``name`` (the newest if several)."""
    return ChannelCode.objects.filter(name=name, enabled=True).order_by("-id").first()


# --- a guide's own code (posters of the guides' library carry it) -------------------------------------
PERSONAL_FOLDER = "导购个人码"


def personal_code(userid: str, name: str) -> ChannelCode:
    """The guide's own channel code (one member, added without verification), made on first use:
    customers who scan a guide's poster become that guide's customers, attributed to the code."""
    code = ChannelCode.objects.filter(folder=PERSONAL_FOLDER, users=[userid], enabled=True).order_by("id").first()
    if code is not None and code.config_id:
        return code
    return create_code(
        {"name": f"{name or userid}的个人码"[:64], "folder": PERSONAL_FOLDER, "users": [userid], "skip_verify": True},
        created_by=userid,
    )


def personal_poster(userid: str, name: str, background: bytes | None, text: str) -> bytes:
    """A poster (JPEG) of ``background`` with the guide's own code and ``text``."""
    from siyu.channels import images  # lazy: images reads this module's media directory (a cycle at import)

    return images.guide_poster(personal_code(userid, name), background, text)
