"""Who is looking at a page (part 4): login and OAuth codes, user tickets, JS-SDK tickets and
signatures, and the app's client-side settings (trusted domains, the chat-toolbar page).

Shared by the cgi endpoints (``endpoints/identity.py``), the browser pages of the emulated WeCom
client (``client.py``) and the control API.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import time
from collections import defaultdict, deque
from urllib.parse import urlsplit

from django.conf import settings

from siyu.wecom_sim import clock, rules
from siyu.wecom_sim.framework import WeComError
from siyu.wecom_sim.models import AuthCode, JsTicket, SimState, User

# --- the app's settings in WeCom's admin console (应用管理 › 网页授权及JS-SDK, 客户联系 › 聊天工具栏) --------
_DEFAULTS = {
    # 可信域名: host or host:port; the redirect_uri of OAuth / web login and the pages that call
    # wx.config must be on one of them (R2, R9: 80001).
    "trusted_domains": [d.strip() for d in os.environ.get("SIM_TRUSTED_DOMAINS", "127.0.0.1,localhost").split(",")],
    # 聊天工具栏 pages: the URL the client opens in the side panel of a single / group chat.
    "toolbar_url": os.environ.get("SIM_TOOLBAR_URL", ""),
}


def client_config() -> dict:
    row = SimState.objects.filter(key="client").first()
    cfg = dict(_DEFAULTS)
    if row:
        cfg.update(row.value)
    return cfg


def set_client_config(**values: object) -> dict:
    cfg = client_config()
    cfg.update({k: v for k, v in values.items() if v is not None})
    SimState.objects.update_or_create(key="client", defaults={"value": cfg})
    return cfg


def _host_port(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return host, f"{host}:{parts.port}" if parts.port else host


def trusted(url: str) -> bool:
    """``url``'s domain is a trusted domain of the app (an entry with a port must match it too)."""
    host, with_port = _host_port(url)
    if not host:
        return False
    for d in client_config()["trusted_domains"]:
        d = d.strip().lower()
        if d and d in (host, with_port):
            return True
    return False


# --- codes (R1, R3, R4) and user tickets (R5) ---------------------------------------------------------
def issue_code(kind: str, userid: str, redirect_uri: str, scope: str = "", agentid: int | None = None) -> str:
    code = secrets.token_urlsafe(48)  # 64 characters, well under 512 bytes
    AuthCode.objects.create(
        code=code,
        kind=kind,
        userid=userid,
        scope=scope,
        agentid=agentid,
        redirect_host=_host_port(redirect_uri)[1],
        issued_at=clock.now(),
    )
    return code


def redeem_code(code: str | None, secret: str) -> AuthCode:
    """The code's row, marked used; 40029 when unknown, used or older than 5 minutes (R1); 50001
    when the caller's app is not the one whose trusted domain the redirect went to (R2): only the
    self-built app has trusted domains, not the customer-contact secret."""
    if not code or not isinstance(code, str) or len(code.encode()) > 512:
        raise WeComError(40029, "invalid code")
    now = clock.now()
    row = AuthCode.objects.filter(code=code).first()
    if row is None or row.used_at is not None or row.issued_at + rules.get().auth_code_ttl_s <= now:
        raise WeComError(40029, "invalid code")
    if secret != settings.SIM_APP_SECRET:
        raise WeComError(50001, "redirect_uri unauthorized")
    row.used_at = now
    if row.kind == "oauth" and row.scope == "snsapi_privateinfo" and row.agentid == settings.SIM_AGENT_ID:
        row.user_ticket = secrets.token_urlsafe(64)
    row.save(update_fields=["used_at", "user_ticket"])
    return row


def user_of_ticket(ticket: str | None) -> User:
    if not ticket:
        raise WeComError(84090, "missing user_ticket")
    row = AuthCode.objects.filter(user_ticket=ticket).first()
    if row is None or (row.used_at or 0) + rules.get().user_ticket_ttl_s <= clock.now():
        raise WeComError(40029, "invalid user_ticket")  # the errcode of an expired ticket is unverified
    user = User.objects.filter(userid=row.userid).first()
    if user is None:
        raise WeComError(60111)
    return user


# --- JS-SDK tickets (R8) and signatures (R9) --------------------------------------------------------------
_fetches: dict[str, deque] = defaultdict(deque)
_fetch_lock = threading.Lock()


def fetch_ticket(kind: str) -> JsTicket:
    """The valid ticket of ``kind`` (corp | agent), the same one while valid; 45009 past the hourly
    fetch limit (400 per corp, 100 per app)."""
    r = rules.get()
    cap = r.jsapi_ticket_corp_per_hour if kind == "corp" else r.jsapi_ticket_app_per_hour
    t = time.time()
    with _fetch_lock:
        q = _fetches[kind]
        while q and q[0] <= t - 3600:
            q.popleft()
        if cap and len(q) >= cap:
            raise WeComError(45009)
        q.append(t)
    now = clock.now()
    row = JsTicket.objects.filter(kind=kind, expires_at__gt=now).order_by("-expires_at").first()
    if row is None:
        row = JsTicket.objects.create(
            ticket=secrets.token_urlsafe(64), kind=kind, issued_at=now, expires_at=now + r.jsapi_ticket_ttl_s
        )
    return row


def reset_ticket_fetches() -> None:
    with _fetch_lock:
        _fetches.clear()


def signature(ticket: str, noncestr: str, timestamp: str | int, url: str) -> str:
    """doc 96909: sha1 over ``jsapi_ticket=&noncestr=&timestamp=&url=``, nothing URL-encoded."""
    raw = f"jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={url}"
    return hashlib.sha1(raw.encode("utf-8")).hexdigest()


def _signed_with(kind: str, noncestr: str, timestamp: str, url: str, sig: str) -> bool:
    now = clock.now()
    return any(
        secrets.compare_digest(signature(t, noncestr, timestamp, url), sig)
        for t in JsTicket.objects.filter(kind=kind, expires_at__gt=now).values_list("ticket", flat=True)
    )


def verify_registration(kind: str, params: dict, url: str) -> tuple[bool, str]:
    """Check a page's ``wx.config`` (kind ``config``) or ``wx.agentConfig`` (``agentConfig``) as
    the client does: ``(True, "config:ok")`` or ``(False, errMsg)`` with WeCom's trailing code."""
    name = kind
    url = (url or "").split("#", 1)[0]
    corpid = params.get("appId") if kind == "config" else params.get("corpid")
    if corpid != settings.SIM_CORP_ID:
        return False, f"{name}:fail invalid corpId, e=40013"
    if kind == "agentConfig" and str(params.get("agentid", "")) != str(settings.SIM_AGENT_ID):
        return False, f"{name}:fail invalid agentid, e=40056"
    if not trusted(url):
        return False, f"{name}:fail not match any reliable domain., e=80001"
    noncestr = str(params.get("nonceStr") or "")
    timestamp = str(params.get("timestamp") or "")
    sig = str(params.get("signature") or "").lower()
    if not (noncestr and timestamp and sig):
        return False, f"{name}:fail invalid signature, e=40093"
    own, other = ("corp", "agent") if kind == "config" else ("agent", "corp")
    if _signed_with(own, noncestr, timestamp, url, sig):
        return True, f"{name}:ok"
    if kind == "agentConfig" and _signed_with(other, noncestr, timestamp, url, sig):
        # signed with the corp ticket: the classic mix-up (community thread "agentConfig 一直报 42012")
        return False, f"{name}:fail_ticket no available, e=42012"
    return False, f"{name}:fail invalid signature, e=40093"
