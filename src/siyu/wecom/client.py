"""The WeCom API client: wechatpy's ``WeChatClient`` with Siyu's token cache, retries and call log.

    from siyu.wecom import gateway
    gateway.contact().external_contact.batch_get_by_user(["zhangsan"], cursor="", limit=100)
    gateway.app().message.send_text(agent_id, "zhangsan", "...")

- Base URL from the settings (real WeCom or the emulator); nothing else in Siyu builds WeCom URLs.
- Access tokens cached per (corp, secret) in memory and in the database, shared by all processes.
- A token error (40014, 42001, 42009, 40082, -1) refreshes the token and retries once.
- Frequency errors (45009, 45033) and -1 after the token retry back off exponentially.
- Every attempt is recorded in ``ApiCall`` (errcode, errmsg, duration); secrets and tokens never are.
- A network failure (or an answer that is not JSON) after the retries raises ``WeComUnavailable``,
  whose text never holds the request URL; every errmsg stored or logged passes ``redact``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import requests
from django.db import transaction
from wechatpy.exceptions import WeChatClientException
from wechatpy.session import SessionStorage
from wechatpy.work import WeChatClient

from siyu.wecom import config as wecom_config
from siyu.wecom.endpoints import ExternalContactAPI, ExternalContactGroupChatAPI
from siyu.wecom.models import AccessToken, ApiCall
from siyu.wecom.redaction import redact, remember_token

logger = logging.getLogger("siyu.wecom")

# "refresh and retry once" (LinkWeChat linkwe-common.yml; wechatpy auto_retry covers 40001/40014/42001)
TOKEN_ERRORS = {40014, 42001, 42009, 40082, -1}
# frequency / concurrency limits (访问频率限制 doc 90454) and system busy
BACKOFF_ERRORS = {45009, 45033, -1}
# Keep-alive connections kept per host, at least the calls one process makes at once.
HTTP_POOL_SIZE = 64


class WeComAPIError(WeChatClientException):  # type: ignore[misc]  # wechatpy has no types
    """A WeCom call that ended with a non-zero errcode (or no answer: errcode None)."""

    def __init__(self, errcode: int | None, errmsg: str, path: str = "", result: dict[str, Any] | None = None):
        super().__init__(errcode, errmsg)
        self.path = path
        self.result = result or {}

    def __str__(self) -> str:
        return f"WeCom {self.path}: errcode {self.errcode}, {self.errmsg}"


class WeComUnavailable(WeComAPIError):
    """WeCom could not be reached: connection refused or reset, timeout, TLS failure, or an
    answer that is not WeCom's JSON, after the gateway's retries (errcode None).

    Its text names the failure and the endpoint only (``WeCom unreachable: connection refused
    (gettoken)``), never a URL, its query (access_token, corpsecret) or a secret: it is safe to
    show in an answer, a page or a stored error.
    """

    def __init__(self, reason: str, path: str = "", http_status: int | None = None):
        super().__init__(None, redact(f"WeCom unreachable: {reason} ({path or '?'})"), path)
        self.reason = reason
        self.http_status = http_status

    def __str__(self) -> str:
        return str(self.errmsg)


def describe_network_error(e: Exception) -> str:
    """A short, URL-free description of a ``requests`` (or urllib3) failure; its own text quotes the URL."""
    text = str(e).lower()
    if isinstance(e, requests.exceptions.SSLError):
        return "TLS error"
    if isinstance(
        e, (requests.exceptions.ConnectTimeout, requests.exceptions.ReadTimeout, requests.exceptions.Timeout)
    ):
        return "timed out"
    if isinstance(e, requests.exceptions.ProxyError):
        return "proxy error"
    if isinstance(e, requests.exceptions.ConnectionError):
        if "refused" in text:
            return "connection refused"
        if "name or service not known" in text or "nodename nor servname" in text or "name resolution" in text:
            return "host name not resolved"
        if "reset" in text or "aborted" in text or "remotedisconnected" in text:
            return "connection reset"
        return "connection failed"
    if isinstance(e, requests.exceptions.ChunkedEncodingError):
        return "answer cut off"
    return "network error (" + type(e).__name__ + ")"


class DbTokenStorage(SessionStorage):  # type: ignore[misc]  # wechatpy has no types
    """wechatpy session storage: process memory in front of the ``AccessToken`` table."""

    _memory: dict[str, tuple[Any, float]] = {}
    # Bumped by every set/delete of a key: a thread that read the table before another thread
    # refreshed the token must not put the old token back into memory.
    _generation: dict[str, int] = {}
    _lock = threading.Lock()

    def get(self, key: str, default: Any = None) -> Any:
        hit = self._memory.get(key)
        now = time.time()
        if hit and (hit[1] == 0 or hit[1] > now):
            return hit[0]
        generation = self._generation.get(key, 0)
        row = AccessToken.objects.filter(key=key).first()
        if row is None or (row.expires_at and row.expires_at <= now):
            return default
        value = json.loads(row.value)
        remember_token(value)
        with self._lock:
            if self._generation.get(key, 0) == generation:
                self._memory[key] = (value, row.expires_at)
        return value

    def set(self, key: str, value: Any, ttl: int | None = None) -> None:
        expires = time.time() + ttl if ttl else 0
        with self._lock:
            self._generation[key] = self._generation.get(key, 0) + 1
            self._memory[key] = (value, expires)
        AccessToken.objects.update_or_create(key=key, defaults={"value": json.dumps(value), "expires_at": expires})

    def delete(self, key: str) -> None:
        with self._lock:
            self._generation[key] = self._generation.get(key, 0) + 1
            self._memory.pop(key, None)
        AccessToken.objects.filter(key=key).delete()

    @classmethod
    def clear_memory(cls) -> None:
        cls._memory.clear()


_collecting = threading.local()


class collect_calls:
    """Within this block (one thread), ``ApiCall`` rows are collected instead of written one by
    one; ``flush()`` writes them with one insert (the inbox worker: one commit per batch of
    re-reads instead of one per call). Rows still unwritten at exit are written then."""

    def __enter__(self) -> collect_calls:
        self.rows: list[ApiCall] = []
        self._outer = getattr(_collecting, "rows", None)
        _collecting.rows = self.rows
        return self

    def __exit__(self, *exc: object) -> None:
        _collecting.rows = self._outer
        self.flush()

    def take(self) -> list[ApiCall]:
        """The rows collected so far, for another thread to write (``record_calls``)."""
        rows, self.rows[:] = list(self.rows), []
        return rows

    def flush(self) -> None:
        _write_calls(self.take())


def record_calls(rows: list[ApiCall]) -> None:
    """Write ``ApiCall`` rows another thread collected (``collect_calls.take``): to this thread's
    collector when one is open, else at once (joining the caller's transaction)."""
    outer = getattr(_collecting, "rows", None)
    if outer is not None:
        outer.extend(rows)
    else:
        _write_calls(rows)


def _write_calls(rows: list[ApiCall]) -> None:
    if not rows:
        return
    try:
        with transaction.atomic():  # a savepoint inside the caller's transaction
            ApiCall.objects.bulk_create(rows)
    except Exception:  # the log must never break a call
        logger.exception("could not record %d WeCom calls", len(rows))


def _record(**fields: Any) -> None:
    """Write the call to ``ApiCall`` at once (or hand it to ``collect_calls``).

    Gateway calls belong outside write transactions (one writer on SQLite; an HTTP wait must
    not hold the lock), so the row commits on its own; inside one it joins that transaction.
    """
    try:
        rows = getattr(_collecting, "rows", None)
        if rows is not None:
            rows.append(ApiCall(**fields))
        else:
            ApiCall.objects.create(**fields)
    except Exception:  # the log must never break a call
        logger.exception("could not record WeCom call")
    if fields.get("errcode") is None or fields.get("errcode"):
        logger.warning(
            "WeCom %s %s → errcode %s %s",
            fields["method"],
            fields["path"],
            fields["errcode"],
            redact(fields["errmsg"][:200]),
        )


class WeComClient(WeChatClient):  # type: ignore[misc]  # wechatpy has no types
    external_contact = ExternalContactAPI()
    external_contact_group_chat = ExternalContactGroupChatAPI()

    def __init__(self, cfg: wecom_config.WeComConfig | None = None, kind: str = "contact"):
        self.cfg = cfg or wecom_config.get()
        self.kind = kind
        secret = self.cfg.secret(kind)
        if not (self.cfg.corp_id and secret):
            raise WeComAPIError(None, "WeCom is not configured (corp id and secret)", "config")
        super().__init__(
            self.cfg.corp_id, secret, session=DbTokenStorage(), timeout=self.cfg.timeout_s, auto_retry=False
        )
        self.API_BASE_URL = self.cfg.api_root
        # What requests would look up in the environment on every call (proxies, CA bundle),
        # resolved once: the per-call scan of os.environ cost more CPU than the rest of the call.
        # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE (and the proxy variables) are requests' own
        # conventions, not Siyu settings: they stay in the environment, read here as requests would.
        self._http.trust_env = False
        self._http.proxies = requests.utils.get_environ_proxies(self.API_BASE_URL)
        self._http.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        # One client serves every thread of the process (the welcome pool, the inbox's readers, the
        # decorations...). requests keeps 10 idle connections per host by default: beyond 10
        # concurrent calls, each call's connection was closed after use and the next call opened a
        # new one (a TCP, in production a TLS, handshake per call).
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=HTTP_POOL_SIZE)
        self._http.mount("http://", adapter)
        self._http.mount("https://", adapter)
        self._secret_hash = hashlib.sha256(secret.encode()).hexdigest()[:20]

    # Token keys carry a hash of the secret, never the secret (wechatpy's default uses secret[:10]).
    @property
    def access_token_key(self) -> str:
        return f"wecom:{self.corp_id}:{self._secret_hash}:token"

    @property
    def access_token_expires_at_key(self) -> str:
        return f"wecom:{self.corp_id}:{self._secret_hash}:expires_at"

    def fetch_access_token(self) -> dict[str, Any]:
        result = self._send("GET", "gettoken", params={"corpid": self.corp_id, "corpsecret": self.secret}, auth=False)
        expires_in = int(result.get("expires_in", 7200))
        remember_token(result.get("access_token") or "")
        self.session.set(self.access_token_key, result["access_token"], expires_in)
        self.expires_at = int(time.time()) + expires_in
        return result

    def invalidate_token(self) -> None:
        self.session.delete(self.access_token_key)
        self.session.delete(self.access_token_expires_at_key)

    _refresh_lock = threading.Lock()

    @property
    def access_token(self) -> str:
        """The cached token, or one fetched under the lock: threads that find none at the same
        moment fetch it once."""
        token: str | None = self.session.get(self.access_token_key)
        if token:
            return token
        with self._refresh_lock:
            token = self.session.get(self.access_token_key)
            if not token:
                self.fetch_access_token()
                token = self.session.get(self.access_token_key)
        return token or ""

    def refresh_token(self, rejected: str | None) -> None:
        """WeCom rejected ``rejected``: fetch a new token unless another thread already did.

        Without the check, threads that all hit 42001 at once would each delete the token the
        first of them had just fetched."""
        with self._refresh_lock:
            current = self.session.get(self.access_token_key)
            if current and current != rejected:
                return
            self.invalidate_token()
            self.fetch_access_token()

    # wechatpy's API classes call get/post → _request; everything funnels into _send.
    def _request(self, method: str, url_or_endpoint: str, **kwargs: Any) -> Any:
        kwargs.pop("api_base_url", None)
        processor = kwargs.pop("result_processor", None)
        result = self._send(method.upper(), url_or_endpoint, **kwargs)
        return processor(result) if processor else result

    def _path(self, url_or_endpoint: str) -> str:
        if url_or_endpoint.startswith(("http://", "https://")):
            path = urlsplit(url_or_endpoint).path
            return path.split("/cgi-bin/", 1)[-1]
        return url_or_endpoint.lstrip("/")

    def _send(self, method: str, url_or_endpoint: str, auth: bool = True, **kwargs: Any) -> dict[str, Any]:  # noqa: C901 - the retry loop: token refresh, backoff and logging read best in one place
        path = self._path(url_or_endpoint)
        url = self.API_BASE_URL + path
        params = dict(kwargs.pop("params", None) or {})
        data = kwargs.pop("data", None)
        if isinstance(data, (dict, list)):
            data = json.dumps(data, ensure_ascii=False).encode("utf-8")
        files = kwargs.pop("files", None)
        token_retried = False
        backoffs = 0
        attempt = 0
        while True:
            attempt += 1
            if auth:
                params["access_token"] = self.access_token
            started = time.monotonic()
            errcode: int | None = None
            errmsg = ""
            unreachable = ""  # why WeCom could not be reached (never the request's URL)
            status = None
            result: Any = None
            try:
                res = self._http.request(method, url, params=params, data=data, files=files, timeout=self.timeout)
                status = res.status_code
                try:
                    result = res.json()
                except ValueError:
                    result = None
                if isinstance(result, dict):
                    errcode = int(result.get("errcode", 0) or 0)
                    errmsg = str(result.get("errmsg", ""))
                elif res.ok and method == "GET" and path.startswith("media/get"):
                    result, errcode = {"content": res.content, "headers": dict(res.headers)}, 0
                else:
                    unreachable = f"HTTP {status}, not a JSON answer"
            except requests.RequestException as e:
                # str(e) quotes the URL, access_token or corpsecret included: never keep it.
                unreachable = describe_network_error(e)
            if unreachable:
                errmsg = f"WeCom unreachable: {unreachable}"
            duration = int((time.monotonic() - started) * 1000)
            _record(
                corp_id=self.corp_id,
                secret_kind=self.kind,
                method=method,
                path=path,
                errcode=errcode,
                errmsg=redact(errmsg)[:512],
                http_status=status,
                duration_ms=duration,
                attempt=attempt,
            )
            if errcode == 0:
                answer: dict[str, Any] = result
                return answer
            if auth and errcode in TOKEN_ERRORS and not token_retried:
                token_retried = True
                self.refresh_token(params.get("access_token"))
                continue
            if (errcode in BACKOFF_ERRORS or errcode is None) and backoffs < self.cfg.rate_limit_retries:
                delay = self.cfg.rate_limit_backoff_s * (2**backoffs) * (1 + random.random() * 0.25)
                backoffs += 1
                time.sleep(delay)
                continue
            if unreachable:
                raise WeComUnavailable(unreachable, path, status)
            raise WeComAPIError(errcode, redact(errmsg), path, result if isinstance(result, dict) else None)


_clients: dict[tuple[str, wecom_config.WeComConfig], WeComClient] = {}
_clients_lock = threading.Lock()


def client(kind: str = "contact") -> WeComClient:
    """A client for the customer-contact secret (``contact``) or the self-built app (``app``)."""
    cfg = wecom_config.get()
    key = (kind, cfg)
    with _clients_lock:
        c = _clients.get(key)
        if c is None:
            _clients.clear() if len(_clients) > 8 else None
            c = _clients[key] = WeComClient(cfg, kind)
    return c
