"""Who is looking at a page (part 4): OAuth and web-login URLs, code → member, JS-SDK signatures.

- ``oauth_url`` / ``web_login_url``: where to send the browser; WeCom's hosts in production, the
  emulator's pages when the API base is not ``qyapi.weixin.qq.com``.
- ``member_of_code(code)``: ``auth/getuserinfo`` with the self-built app's token (a code is single
  use and lives 5 minutes; doc 98177).
- ``signatures(url)``: ``wx.config`` (corp ticket) and ``wx.agentConfig`` (app ticket) signatures
  for a page URL (doc 96909); tickets are cached until shortly before they expire (fetching is
  limited to 400 an hour per corp, 100 per app) and never leave the server.
- ``jssdk_url()``: the JS-SDK the page loads (WeCom's own bridge; it cannot ship with Siyu).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

from siyu.wecom import config as wecom_config
from siyu.wecom.client import DbTokenStorage, WeComAPIError, client
from siyu.wecom.redaction import remember_token

OFFICIAL_API_HOST = "qyapi.weixin.qq.com"
_TICKET_MARGIN_S = 300  # refresh a ticket this long before WeCom's expiry
_lock = threading.Lock()


def _emulated(cfg: wecom_config.WeComConfig) -> str | None:
    """The API base's origin when it is not WeCom's own host (the emulator), else None."""
    parts = urlsplit(cfg.api_base)
    if (parts.hostname or "") == OFFICIAL_API_HOST:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def browser_origins() -> list[str]:
    """Origins of WeCom's browser side that may frame or script Siyu's pages: the emulator's
    origin (its client frames the sidebar); none in production (the client is a native app)."""
    origin = _emulated(wecom_config.get())
    return [origin] if origin else []


def oauth_url(redirect_uri: str, state: str, *, scope: str = "snsapi_base") -> str:
    """网页授权 (doc 96441): ``redirect_uri`` must be on the app's trusted domain; ``state`` is
    ``[a-zA-Z0-9]{,128}``."""
    cfg = wecom_config.get()
    base = _emulated(cfg) or "https://open.weixin.qq.com"
    q = {
        "appid": cfg.corp_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": scope,
        "state": state,
        "agentid": cfg.agent_id,
    }
    return f"{base}/connect/oauth2/authorize?{urlencode(q)}#wechat_redirect"


def web_login_url(redirect_uri: str, state: str) -> str:
    """Web login (企业微信扫码登录, doc 98171)."""
    cfg = wecom_config.get()
    base = _emulated(cfg) or "https://login.work.weixin.qq.com"
    q = {
        "login_type": "CorpApp",
        "appid": cfg.corp_id,
        "agentid": cfg.agent_id,
        "redirect_uri": redirect_uri,
        "state": state,
    }
    return f"{base}/wwlogin/sso/login?{urlencode(q)}"


def jssdk_url() -> str:
    base = _emulated(wecom_config.get()) or "https://res.wx.qq.com"
    return f"{base}/open/js/jweixin-1.2.0.js"


def member_of_code(code: str) -> str:
    """The userid behind an OAuth or web-login ``code``; ``WeComAPIError`` (40029 for a used or
    expired code) otherwise, or for a visitor who is not a member (no userid)."""
    if not code or len(code) > 512:
        raise WeComAPIError(40029, "invalid code", "auth/getuserinfo")
    answer: dict[str, Any] = client("app").get("auth/getuserinfo", params={"code": code})
    userid = answer.get("userid") or answer.get("UserId")
    if not userid:
        raise WeComAPIError(50002, "not a member of the corp", "auth/getuserinfo")
    return str(userid)


def _ticket_key(kind: str) -> str:
    cfg = wecom_config.get()
    return f"wecom:{cfg.corp_id}:{hashlib.sha256(cfg.secret('app').encode()).hexdigest()[:20]}:jsapi:{kind}"


def forget_tickets() -> None:
    """Drop the cached tickets (WeCom refused a page signed with them: it renewed them early)."""
    storage = DbTokenStorage()
    for kind in ("corp", "agent"):
        storage.delete(_ticket_key(kind))


def _ticket(kind: str) -> str:
    storage = DbTokenStorage()
    key = _ticket_key(kind)
    ticket: str | None = storage.get(key)
    if ticket:
        return ticket
    with _lock:
        ticket = storage.get(key)
        if ticket:
            return ticket
        if kind == "corp":
            answer = client("app").get("get_jsapi_ticket")
        else:
            answer = client("app").get("ticket/get", params={"type": "agent_config"})
        ticket = str(answer["ticket"])
        remember_token(ticket)
        ttl = max(60, int(answer.get("expires_in", 7200)) - _TICKET_MARGIN_S)
        storage.set(key, ticket, ttl)
        return ticket


def sign(ticket: str, noncestr: str, timestamp: int, url: str) -> str:
    raw = f"jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={url}"
    return hashlib.sha1(raw.encode("utf-8")).hexdigest()


def signatures(url: str, *, fresh: bool = False) -> dict[str, Any]:
    """What the page passes to ``wx.config`` and ``wx.agentConfig`` for ``url`` (its address
    without the ``#`` part, exactly as the browser has it). ``fresh``: with new tickets (the page
    was refused with the cached ones); at most once per page load, as tickets are rate-limited."""
    if fresh:
        forget_tickets()
    cfg = wecom_config.get()
    url = url.split("#", 1)[0]
    ts = int(time.time())
    out: dict[str, Any] = {}
    for kind, name in (("corp", "config"), ("agent", "agentConfig")):
        nonce = secrets.token_hex(8)
        out[name] = {"timestamp": ts, "nonceStr": nonce, "signature": sign(_ticket(kind), nonce, ts, url)}
    out["config"].update(appId=cfg.corp_id, beta=True)
    out["agentConfig"].update(corpid=cfg.corp_id, agentid=cfg.agent_id)
    return out


def web_login_ready() -> bool:
    """Web login needs the corp id and the app's agent id (and the app's secret for the code)."""
    cfg = wecom_config.get()
    return bool(cfg.corp_id and cfg.agent_id and cfg.secret("app"))
