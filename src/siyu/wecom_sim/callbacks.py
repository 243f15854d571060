"""Outgoing callbacks: the encrypted events WeCom pushes to the configured URL.

``emit()`` writes the plaintext event into the ``Callback`` outbox in the caller's transaction,
so a world change and its event are stored together. A delivery thread encrypts and POSTs each
event (接收消息与事件 概述: answer within 5 s or WeCom retries; "总共重试三次").
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from typing import Any

import requests
from django.conf import settings
from django.db import close_old_connections, transaction
from wechatpy.crypto import _get_signature
from wechatpy.work.crypto import PrpCrypto, WeChatCrypto

from siyu.wecom_sim import clock, rules
from siyu.wecom_sim.models import Callback, SimState
from siyu.wecom_sim.wire import build_xml, envelope

logger = logging.getLogger("siyu.wecom_sim.callbacks")

_wake = threading.Event()


def emit(event: str, change_type: str = "", **fields: Any) -> Callback:
    """Queue a callback. ``fields`` are the event's own elements in WeCom's names (UserID, ...)."""
    now = clock.now()
    doc = {
        "ToUserName": settings.SIM_CORP_ID,
        "FromUserName": "sys",
        "CreateTime": now,
        "MsgType": "event",
        "Event": event,
    }
    if change_type:
        doc["ChangeType"] = change_type
    doc.update(fields)
    cb = Callback.objects.create(
        created_at=time.time(), event=event, change_type=change_type, xml=build_xml(doc), next_attempt_at=0
    )
    transaction.on_commit(_wake.set)
    return cb


# --- target configuration -----------------------------------------------------------------------
# The delivery threads wake on every committed callback: the target is read from the database at
# most once per _TARGET_TTL_S (and again at once when set_target changes it), not on every wake.
_TARGET_TTL_S = 1.0
_target_cache: tuple[float, dict] | None = None


def target() -> dict:
    global _target_cache
    cached = _target_cache
    if cached is not None and time.monotonic() - cached[0] < _TARGET_TTL_S:
        return dict(cached[1])
    row = SimState.objects.filter(key="callback").first()
    cfg = {
        "url": settings.SIM_CALLBACK_URL,
        "token": settings.SIM_CALLBACK_TOKEN,
        "aes_key": settings.SIM_CALLBACK_AES_KEY,
    }
    if row:
        cfg.update({k: v for k, v in row.value.items() if v is not None})
    _target_cache = (time.monotonic(), dict(cfg))
    return cfg


def _clear_target() -> None:
    global _target_cache
    _target_cache = None


def set_target(
    url: str | None = None, token: str | None = None, aes_key: str | None = None, verify: bool = True
) -> dict:
    """Configure the callback URL like an admin saving it in the WeCom console.

    With ``verify``, WeCom first GETs the URL with an encrypted echostr and accepts the config only
    if the body is exactly the plaintext within 1 s (回调配置 §3.1).
    """
    # Read the stored target, not this process's cached copy: another emulator process may have
    # changed it less than _TARGET_TTL_S ago (a verify signed with the old token fails).
    _clear_target()
    cfg = target()
    for k, v in (("url", url), ("token", token), ("aes_key", aes_key)):
        if v is not None:
            cfg[k] = v
    if verify and cfg.get("url"):
        verify_url(cfg)
    SimState.objects.update_or_create(key="callback", defaults={"value": cfg})
    _clear_target()
    transaction.on_commit(_clear_target)  # a concurrent read may have cached the old one meanwhile
    _wake.set()
    return cfg


def _crypto(cfg: dict) -> WeChatCrypto:
    return WeChatCrypto(cfg["token"], cfg["aes_key"], settings.SIM_CORP_ID)


def verify_url(cfg: dict) -> None:
    echo = str(secrets.randbelow(10**19))
    crypto = _crypto(cfg)
    encrypted = PrpCrypto(crypto.key).encrypt(echo, settings.SIM_CORP_ID)
    if isinstance(encrypted, bytes):
        encrypted = encrypted.decode()
    ts, nonce = str(int(time.time())), str(secrets.randbelow(10**9))
    sig = _get_signature(cfg["token"], ts, nonce, encrypted)
    resp = requests.get(
        cfg["url"],
        params={"msg_signature": sig, "timestamp": ts, "nonce": nonce, "echostr": encrypted},
        timeout=rules.get().callback_timeout_s,
    )
    if resp.status_code != 200 or resp.content != echo.encode():
        raise ValueError(f"openapi回调地址请求不通过 (HTTP {resp.status_code}, body {resp.text[:60]!r})")


# --- delivery ----------------------------------------------------------------------------------
class Deliverer:
    """Delivers pending callbacks in order of creation; retries the failed ones."""

    def __init__(self, workers: int = 4) -> None:
        self.workers = workers
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._claim_lock = threading.Lock()
        self._session_local = threading.local()

    def start(self) -> None:
        for i in range(self.workers):
            t = threading.Thread(target=self._loop, name=f"sim-callback-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        _wake.set()

    def _session(self) -> requests.Session:
        s = getattr(self._session_local, "s", None)
        if s is None:
            s = self._session_local.s = requests.Session()
        return s

    def _claim(self, limit: int = 20) -> list[Callback]:
        now = time.time()
        with self._claim_lock, transaction.atomic():
            batch = list(
                Callback.objects.filter(status=Callback.PENDING, next_attempt_at__lte=now).order_by("id")[:limit]
            )
            if batch:
                # lease: push next_attempt_at beyond the delivery timeout so no other thread takes them
                lease = now + rules.get().callback_timeout_s + 5
                Callback.objects.filter(id__in=[c.id for c in batch]).update(next_attempt_at=lease)
        return batch

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                close_old_connections()
                cfg = target()
                batch = self._claim() if cfg.get("url") else []
                if not batch:
                    _wake.wait(0.5)
                    _wake.clear()
                    continue
                crypto = _crypto(cfg)
                for cb in batch:
                    self.deliver(cb, cfg, crypto)
            except Exception:  # keep delivering whatever happens to one batch
                logger.exception("callback delivery loop error")
                time.sleep(0.5)

    def deliver(self, cb: Callback, cfg: dict, crypto: WeChatCrypto) -> bool:
        r = rules.get()
        params, body = envelope(cb.xml, cfg["token"], crypto.key, settings.SIM_CORP_ID)
        cb.attempts += 1
        error = ""
        try:
            resp = self._session().post(
                cfg["url"],
                params=params,
                data=body,
                headers={"Content-Type": "text/xml"},
                timeout=r.callback_timeout_s,
            )
            ok = resp.status_code == 200
            if not ok:
                error = f"HTTP {resp.status_code}"
        except requests.RequestException as e:
            ok = False
            error = type(e).__name__
        if ok:
            Callback.objects.filter(id=cb.id).update(
                status=Callback.DELIVERED, attempts=cb.attempts, delivered_at=time.time(), last_error=""
            )
            return True
        if cb.attempts > r.callback_retries:
            Callback.objects.filter(id=cb.id).update(status=Callback.FAILED, attempts=cb.attempts, last_error=error)
        else:
            Callback.objects.filter(id=cb.id).update(
                attempts=cb.attempts, last_error=error, next_attempt_at=time.time() + r.callback_retry_delay_s
            )
        return False


_deliverer: Deliverer | None = None


def start_delivery(workers: int = 4) -> Deliverer:
    global _deliverer
    if _deliverer is None:
        _deliverer = Deliverer(workers)
        _deliverer.start()
    return _deliverer


def wake() -> None:
    _wake.set()
