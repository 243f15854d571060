"""The emulator's request handling: the error envelope, token checks, frequency limits.

An endpoint is a function ``handler(req: SimRequest) -> dict`` registered with ``@endpoint``.
It raises ``WeComError`` for business errors; the framework answers HTTP 200 with
``{"errcode": N, "errmsg": "..."}`` as WeCom does (global error-code doc 90313), and merges
``errcode: 0, errmsg: "ok"`` into successful answers.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase

from siyu.wecom_sim import clock, rules
from siyu.wecom_sim.models import ApiLog, Token

logger = logging.getLogger("siyu.wecom_sim")

# errmsg texts: English where real responses were seen, else the meaning from the error-code doc.
ERRMSG = {
    -1: "system busy",
    40001: "invalid credential",
    40003: "invalid userid",
    40004: "invalid media type",
    40005: "invalid type",
    40006: "invalid file size",
    40007: "invalid media_id",
    40008: "invalid message type",
    40009: "invalid image size",
    40011: "invalid video size",
    40013: "invalid corpid",
    40014: "invalid access_token",
    40029: "invalid code",
    40032: "invalid userid list size",
    40050: "chatid not found",
    40056: "invalid agentid",
    40058: "invalid Request Parameter",
    40063: "some parameters are empty",
    40068: "invalid tagid",
    40071: "invalid tag name",
    40072: "invalid tag name length",
    40088: "invalid jobid",
    40096: "invalid external userid",
    40097: "the user has not resigned",
    40099: "external contact count reaches limit",
    40100: "user's external contacts are in transfer",
    40126: "corp tag count reaches limit, at most 3000",
    40128: "customer transfer too frequently",
    40129: "customer is in transfer",
    40130: "handover user is the same as takeover user",
    40131: "handover_userid is not the follow user of the external contact",
    41001: "access_token missing",
    41002: "corpid missing",
    41004: "corpsecret missing",
    41005: "media data missing",
    41006: "media_id missing",
    41009: "missing userid",
    41010: "url missing",
    41011: "missing agentid",
    41016: "title missing",
    41033: "description missing",
    41035: "external userid missing",
    41037: "contact way type missing",
    41038: "contact way scene missing",
    41039: "invalid contact way type",
    41040: "invalid contact way scene",
    41041: "contact way user count exceeds limit",
    41042: "invalid contact way style",
    41043: "config_id missing",
    41044: "invalid config_id",
    41045: "api add contact way count reaches limit",
    41046: "msgid missing",
    41047: "invalid msgid",
    41048: "no customer can be sent",
    41049: "welcome code missing",
    41050: "invalid welcome code",
    41051: "externaluser has started chatting",
    41055: "group welcome template count reaches limit",
    41058: "no permission to edit this group welcome template",
    41059: "moment_id missing",
    41060: "invalid moment_id",
    41061: "moment is not published by this user",
    41062: "corp moment is not published by this user yet",
    41063: "group msg is being dispatched, try again later",
    41064: "attachment size out of limit",
    41065: "invalid attachment type",
    41067: "invalid moment_id type",
    41072: "attachment scene is wrong",
    41078: "too many running moment tasks",
    41079: "moment is being dispatched, try again later",
    42001: "access_token expired",
    44001: "empty media data",
    44004: "empty content",
    45001: "media size out of limit",
    45002: "content size out of limit",
    45008: "article size out of limit",
    45009: "api freq out of limit",
    45033: "api concurrent out of limit",
    47001: "data format error",
    48002: "api forbidden",
    50001: "redirect_uri unauthorized",
    50002: "user not in the app's visible range",
    49008: "chat has been dismissed",
    50100: "invalid cursor",
    60011: "no privilege to access/modify contact/party/agent",
    60111: "userid not found",
    60123: "invalid party id",
    81013: "user & party & tag all invalid",
    81017: "too many users in the app's visible range, use owner_filter",
    82001: "all touser & toparty & totag are empty",
    82002: "invalid party list size",
    82003: "invalid tag list size",
    84061: "not external contact",
    84074: "no external contact privilege",
    84090: "missing user_ticket",
    86001: "invalid chatid",
    86214: "invalid chat type",
    90200: "miniprogram appid missing",
    90201: "miniprogram notice content_item count out of limit",
    90500: "the owner of this chat is not resigned",
    90501: "chat is not external group chat",
    90502: "the owner of this chat is resigned",
    90503: "the chat is full and needs client confirmation",
    90504: "the owner of this chat is not changed",
    90507: "the chat of the resigned owner is in transfer",
    90508: "the chat of the resigned owner has been transferred",
    90509: "not a wecom external group chat",
}


class WeComError(Exception):
    def __init__(self, errcode: int, errmsg: str | None = None, **extra: Any):
        self.errcode = errcode
        self.errmsg = errmsg or ERRMSG.get(errcode, "error")
        self.extra = extra
        super().__init__(f"{errcode} {self.errmsg}")


def hint(errcode: int, errmsg: str) -> str:
    """WeCom appends a request id and a lookup URL to errmsg; clients must branch on errcode only."""
    return (
        f"{errmsg}, hint: [{int(time.time())}_{secrets.token_hex(4)}], from ip: 127.0.0.1, "
        f"more info at https://open.work.weixin.qq.com/devtool/query?e={errcode}"
    )


@dataclass
class SimRequest:
    http: HttpRequest
    path: str
    query: dict
    body: dict
    secret: str = ""
    now: int = 0
    extra: dict = field(default_factory=dict)

    def param(self, name: str, default: Any = None) -> Any:
        """A field from the JSON body, falling back to the query string (GET endpoints)."""
        if name in self.body:
            return self.body[name]
        return self.query.get(name, default)


Handler = Callable[[SimRequest], dict]
REGISTRY: dict[str, tuple[Handler, tuple[str, ...], bool]] = {}


def endpoint(path: str, methods: tuple[str, ...] = ("POST",), auth: bool = True):
    """Register ``handler`` for ``/cgi-bin/<path>``."""

    def wrap(fn: Handler) -> Handler:
        REGISTRY[path] = (fn, methods, auth)
        return fn

    return wrap


# --- frequency limits ---------------------------------------------------------------------
class FrequencyLimiter:
    """Per-corp, per-API fixed windows (访问频率限制 doc 90454).

    A per-minute breach blocks the API for 60 s and a per-hour breach for 60 min, even if the
    caller slows down. Counts are kept in memory: the emulator runs as one process.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._minute: dict[str, tuple[int, int]] = {}
        self._hour: dict[str, tuple[int, int]] = {}
        self._blocked_until: dict[str, float] = {}
        self._inflight = 0
        self.quota_override: dict[str, int] = {}  # path → calls per minute (benchmarks)

    def reset(self) -> None:
        with self._lock:
            self._minute.clear()
            self._hour.clear()
            self._blocked_until.clear()

    def check(self, path: str) -> None:
        r = rules.get()
        t = time.time()
        with self._lock:
            if self._blocked_until.get(path, 0) > t:
                raise WeComError(45009)
            per_min = self.quota_override.get(path, r.freq_per_min)
            m = int(t // 60)
            win, count = self._minute.get(path, (m, 0))
            if win != m:
                win, count = m, 0
            h = int(t // 3600)
            hwin, hcount = self._hour.get(path, (h, 0))
            if hwin != h:
                hwin, hcount = h, 0
            if count >= per_min:
                self._blocked_until[path] = t + 60
                raise WeComError(45009)
            if hcount >= r.freq_per_hour:
                self._blocked_until[path] = t + 3600
                raise WeComError(45009)
            self._minute[path] = (win, count + 1)
            self._hour[path] = (hwin, hcount + 1)

    def enter(self) -> None:
        r = rules.get()
        with self._lock:
            if r.max_concurrent and self._inflight >= r.max_concurrent:
                raise WeComError(45033)
            self._inflight += 1

    def leave(self) -> None:
        with self._lock:
            self._inflight -= 1


limiter = FrequencyLimiter()
# Per-path counters of answered calls: the control API reports them (quota use in benchmarks).
call_counts: dict[str, int] = defaultdict(int)
_recent_errors: deque = deque(maxlen=200)


# --- tokens ---------------------------------------------------------------------------------
def issue_token(secret: str) -> Token:
    """Return the valid token for ``secret`` or a new one (gettoken: same token while valid)."""
    now = clock.now()
    tok = Token.objects.filter(secret=secret, revoked=False, expires_at__gt=now).order_by("-expires_at").first()
    if tok:
        return tok
    return Token.objects.create(
        access_token=secrets.token_urlsafe(96)[:128],
        secret=secret,
        created_at=now,
        expires_at=now + rules.get().token_ttl_s,
    )


_token_cache: dict[str, tuple[str, int]] = {}


def check_token(access_token: str | None) -> str:
    if not access_token:
        raise WeComError(41001)
    cached = _token_cache.get(access_token)
    if cached is None:
        tok = Token.objects.filter(access_token=access_token).first()
        if tok is None:
            raise WeComError(40014)
        if tok.revoked:
            raise WeComError(40014)
        cached = (tok.secret, tok.expires_at)
        _token_cache[access_token] = cached
    if cached[1] <= clock.now():
        raise WeComError(42001)
    return cached[0]


def revoke_tokens() -> int:
    """Invalidate every token early (the gettoken doc warns WeCom may do so)."""
    _token_cache.clear()
    return Token.objects.filter(revoked=False).update(revoked=True)


def forget_token_cache() -> None:
    _token_cache.clear()


# --- the view ---------------------------------------------------------------------------------
def _json(data: dict) -> JsonResponse:
    return JsonResponse(data, json_dumps_params={"ensure_ascii": False})


# The API log is written in batches: a background thread flushes it every LOG_FLUSH_S (and every
# control action first, so what the control API reads is complete). One insert per call would be
# a second write per call, each waiting its turn for the database's write lock.
LOG_FLUSH_S = 0.05
_log_rows: list = []
_log_lock = threading.Lock()
_log_flusher: threading.Thread | None = None


def _log(path: str, errcode: int, body: Any) -> None:
    if getattr(settings, "SIM_API_LOG", True):
        row = ApiLog(at=time.time(), path=path, errcode=errcode, body=body)
        if _log_flusher is None:  # no flusher in this process (tests calling in-process)
            _write_log([row])
            return
        with _log_lock:
            _log_rows.append(row)


def _write_log(rows: list) -> None:
    try:
        ApiLog.objects.bulk_create(rows)
    except Exception:  # the log must never break an answer
        logger.exception("api log write failed (%d calls)", len(rows))


def flush_log() -> None:
    with _log_lock:
        rows = list(_log_rows)
        _log_rows.clear()
    if rows:
        _write_log(rows)


def start_log_flusher() -> threading.Thread:
    global _log_flusher

    def loop() -> None:
        from django.db import close_old_connections

        while True:
            time.sleep(LOG_FLUSH_S)
            close_old_connections()
            flush_log()

    if _log_flusher is None:
        _log_flusher = threading.Thread(target=loop, name="sim-api-log", daemon=True)
        _log_flusher.start()
    return _log_flusher


def dispatch(request: HttpRequest, path: str) -> JsonResponse:  # noqa: C901 - the request pipeline (auth, faults, limits, handler) in WeCom's order
    from siyu.wecom_sim import control

    entry = None if control.world_only() else REGISTRY.get(path)
    if entry is None:
        # WeCom answers unknown cgi paths with 404 page; SDKs see a non-JSON body.
        return JsonResponse({"errcode": 404, "errmsg": "no such api"}, status=404)
    handler, methods, auth = entry
    body: Any = {}
    entered = False
    try:
        if request.method not in methods:
            raise WeComError(
                43004 if request.method == "GET" else 43001,
                "require POST method" if "POST" in methods else "require GET method",
            )
        query = {k: v for k, v in request.GET.items()}
        if request.method == "POST" and request.content_type != "multipart/form-data":
            raw = request.body
            if raw.strip():
                try:
                    body = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError):
                    raise WeComError(47001) from None
                if not isinstance(body, dict):
                    raise WeComError(47001)
        req = SimRequest(http=request, path=path, query=query, body=body, now=clock.now())
        if auth:
            req.secret = check_token(query.get("access_token"))
        limiter.check(path)
        limiter.enter()
        entered = True
        r = rules.get()
        if r.api_latency_ms:
            time.sleep(r.api_latency_ms / 1000)
        busy = r.fault_busy_rate
        if busy and random.random() < busy:
            raise WeComError(-1)
        result = handler(req) or {}
        if isinstance(result, HttpResponseBase):
            # A raw answer: media/get returns the file's bytes, not a JSON envelope.
            call_counts[path] += 1
            _log(path, 0, body if isinstance(body, dict) else None)
            return result
        out = {"errcode": 0, "errmsg": "ok"}
        out.update(result)
        call_counts[path] += 1
        _log(path, 0, body if isinstance(body, dict) else None)
        return _json(out)
    except WeComError as e:
        call_counts[path] += 1
        _recent_errors.append((time.time(), path, e.errcode))
        _log(path, e.errcode, body if isinstance(body, dict) else None)
        out = {"errcode": e.errcode, "errmsg": hint(e.errcode, e.errmsg)}
        out.update(e.extra)
        return _json(out)
    finally:
        if entered:
            limiter.leave()


# --- small validation helpers shared by the endpoints ------------------------------------------
def require(value: Any, errcode: int = 40058, errmsg: str | None = None) -> Any:
    if value in (None, "", [], {}):
        raise WeComError(errcode, errmsg)
    return value


def check_len(value: str | None, limit: int, what: str) -> None:
    if value is not None and len(value) > limit:
        raise WeComError(40058, f"invalid {what}: longer than {limit} characters")


def check_bytes(value: str | None, limit: int, what: str) -> None:
    if value is not None and len(value.encode("utf-8")) > limit:
        raise WeComError(45002, f"{what} size out of limit ({limit} bytes)")


def new_id(prefix: str, n: int = 28) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(n))
