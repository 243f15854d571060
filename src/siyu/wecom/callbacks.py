"""The callback endpoint ``/wecom/callback/``: verify, decrypt, persist, answer.

GET is WeCom's URL verification: check the signature over the echostr, decrypt it and answer
the plaintext, byte for byte (回调配置 §3.1). POST carries an encrypted event: check the
signature, decrypt (AES-256-CBC, receive-id = our corp id), store the plaintext in the inbox
under a dedupe key and answer 200 with an empty body. Processing happens in the worker, so the
answer comes in milliseconds, far inside WeCom's 5 s.

Refusals are logged and recorded (``CallbackRejection``): bad signature → 403, malformed → 400.
"""

from __future__ import annotations

import base64
import logging
import re
import time
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from wechatpy.crypto import _get_signature
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.work.crypto import PrpCrypto

from siyu.wecom import config as wecom_config
from siyu.wecom import events, inbox, store
from siyu.wecom.models import CallbackInbox, CallbackRejection

logger = logging.getLogger("siyu.wecom.callbacks")

MAX_BODY = 256 * 1024  # WeCom events are a few hundred bytes; anything this large is not one
_crypto_cache: dict[tuple[str, str], PrpCrypto] = {}


class Answer(Exception):
    """Ends ``accept`` early with an HTTP status and a short text."""

    def __init__(self, status: int, reason: str, detail: str):
        self.status, self.reason, self.detail = status, reason, detail


def _reject(remote_addr: str, status: int, reason: str, detail: str) -> tuple[int, bytes]:
    logger.warning("callback rejected (%s, HTTP %s) from %s: %s", reason, status, remote_addr, detail)
    try:
        CallbackRejection.objects.create(
            reason=reason, status_code=status, remote_addr=remote_addr[:64], detail=detail[:512]
        )
    except Exception:
        logger.exception("could not record a callback rejection")
    return status, (detail if settings.DEBUG else reason).encode()


def _prp(cfg: wecom_config.WeComConfig) -> PrpCrypto:
    key = (cfg.callback_token, cfg.callback_aes_key)
    prp = _crypto_cache.get(key)
    if prp is None:
        prp = _crypto_cache[key] = PrpCrypto(base64.b64decode(cfg.callback_aes_key + "="))
    return prp


def _decrypt(cfg: wecom_config.WeComConfig, signature: str, timestamp: str, nonce: str, encrypted: str) -> bytes:
    if _get_signature(cfg.callback_token, timestamp, nonce, encrypted) != signature:
        raise InvalidSignatureException()
    # wechatpy checks the receive id against our corp id (InvalidCorpIdException otherwise)
    plain = _prp(cfg).decrypt(encrypted, cfg.corp_id)
    return plain if isinstance(plain, bytes) else plain.encode("utf-8")


# WeCom's envelope exactly: <xml> and CDATA elements ToUserName / Encrypt / AgentID in any order.
# Bodies of this strict shape are read with one regular expression; anything else goes through the
# XML parser (which also refuses DTDs and entities).
_ENVELOPE = re.compile(
    rb"\s*<xml>(?:\s*<(ToUserName|Encrypt|AgentID)><!\[CDATA\[[A-Za-z0-9+/=_.@-]*\]\]></\1>)+\s*</xml>\s*"
)
_ENCRYPT = re.compile(rb"<Encrypt><!\[CDATA\[([A-Za-z0-9+/=]+)\]\]></Encrypt>")


def _outer_encrypt(body: bytes) -> str:
    """The ``<Encrypt>`` of the envelope, read without trusting anything else in it."""
    if _ENVELOPE.fullmatch(body):
        found: list[bytes] = _ENCRYPT.findall(body)
        if len(found) == 1:
            return found[0].decode("ascii")
    outer = events.parse(body)
    encrypted = outer.get("Encrypt")
    if not encrypted or not isinstance(encrypted, str):
        raise events.MalformedEvent("no <Encrypt> element")
    return str(encrypted)


def accept(method: str, query: dict[str, str], body: bytes, remote_addr: str = "") -> tuple[int, bytes]:
    """The whole protocol, free of any web framework: returns (HTTP status, body)."""
    try:
        row = _check(wecom_config.get(), method, query, body)
    except Answer as a:
        return _reject(remote_addr, a.status, a.reason, a.detail)
    if isinstance(row, tuple):
        return row
    return _persist(row)


def _persist(row: CallbackInbox) -> tuple[int, bytes]:
    """Store the checked event; with SIYU_CALLBACK_INLINE also process it before answering.

    A retry of a stored event hits the unique dedupe key and is acknowledged without a second row.
    Group commit: the answer waits until the row is durable, batched with concurrent callbacks."""
    try:
        store.writer.store(row)
    except Exception as e:  # noqa: BLE001 - not stored, whatever the cause: WeCom gets a 5xx and retries
        return _not_stored(e)
    if settings.SIYU_CALLBACK_INLINE:
        inbox.process_key(row.dedupe_key, worker_id="inline")
    return 200, b""


async def accept_async(method: str, query: dict[str, str], body: bytes, remote_addr: str = "") -> tuple[int, bytes]:
    """``accept`` for an event loop (``siyu.asgi``): the checks run on the loop (a fraction of a
    millisecond of CPU), the commit is awaited; a refusal is recorded in a thread."""
    cfg = wecom_config.cached() or await sync_to_async(wecom_config.get, thread_sensitive=False)()
    try:
        row = _check(cfg, method, query, body)
    except Answer as a:
        return await reject_async(remote_addr, a.status, a.reason, a.detail)
    if isinstance(row, tuple):
        return row
    if settings.SIYU_CALLBACK_INLINE:  # the naive receiver (benchmark baseline): all in a thread
        return await sync_to_async(_persist, thread_sensitive=False)(row)
    try:
        await store.writer.store_async(row)
    except Exception as e:  # noqa: BLE001 - not stored, whatever the cause: WeCom gets a 5xx and retries
        return _not_stored(e)
    return 200, b""


async def reject_async(remote_addr: str, status: int, reason: str, detail: str) -> tuple[int, bytes]:
    return await sync_to_async(_reject, thread_sensitive=False)(remote_addr, status, reason, detail)


def _not_stored(e: Exception) -> tuple[int, bytes]:
    logger.error("callback not stored (%s): WeCom will retry", e)
    return 503, b"not stored"


def _check_fresh(timestamp: str) -> None:
    """``Answer`` 400 for a timestamp that is not a number, 403 for one outside the replay window."""
    max_age = settings.SIYU_CALLBACK_MAX_AGE_S
    try:
        ts = int(timestamp)
    except ValueError:
        raise Answer(400, "malformed", "timestamp is not a number") from None
    if max_age and abs(time.time() - ts) > max_age:
        raise Answer(403, "replay", f"timestamp {ts} is outside the {max_age} s window")


def _create_time(event: dict[str, Any]) -> int:
    """The event's CreateTime; 0 when missing or not a number."""
    try:
        return int(event.get("CreateTime") or 0)
    except ValueError:
        return 0


def _check(
    cfg: wecom_config.WeComConfig, method: str, q: dict[str, str], body: bytes
) -> CallbackInbox | tuple[int, bytes]:
    """Verify and decrypt: the inbox row to store, a final answer (URL verification), or ``Answer``.
    No database access."""
    if not cfg.callback_ready:
        raise Answer(503, "config", "WeCom callback token / EncodingAESKey / corp id are not configured")
    signature, timestamp, nonce = q.get("msg_signature", ""), q.get("timestamp", ""), q.get("nonce", "")
    if not (signature and timestamp and nonce):
        raise Answer(400, "malformed", "msg_signature, timestamp and nonce are required")

    if method == "GET":
        echostr = q.get("echostr", "")
        if not echostr:
            raise Answer(400, "malformed", "echostr is required")
        # the plaintext, no quotes, no BOM, no newline
        return 200, _decrypt_or_answer(cfg, signature, timestamp, nonce, echostr, "echostr")
    if method != "POST":
        return 405, b""

    if len(body) > MAX_BODY:
        raise Answer(400, "malformed", "body too large")
    try:
        encrypted = _outer_encrypt(body)
    except events.MalformedEvent as e:
        raise Answer(400, "malformed", str(e)) from e
    plain = _decrypt_or_answer(cfg, signature, timestamp, nonce, encrypted, "payload")

    _check_fresh(timestamp)

    try:
        event = events.parse(plain)
    except events.MalformedEvent as e:
        raise Answer(400, "malformed", f"event: {e}") from e
    if event.get("ToUserName") and event["ToUserName"] != cfg.corp_id:
        raise Answer(400, "corp_id", "event addressed to another corp")

    return CallbackInbox(
        dedupe_key=events.dedupe_key(event, plain),
        event=str(event.get("Event") or event.get("MsgType") or "")[:64],
        change_type=str(event.get("ChangeType") or "")[:64],
        create_time=_create_time(event),
        payload=plain.decode("utf-8"),
        priority=inbox.priority_of(event),
    )


def _decrypt_or_answer(
    cfg: wecom_config.WeComConfig, signature: str, timestamp: str, nonce: str, encrypted: str, what: str
) -> bytes:
    try:
        return _decrypt(cfg, signature, timestamp, nonce, encrypted)
    except InvalidSignatureException:
        raise Answer(403, "signature", "signature does not match") from None
    except Exception as e:  # bad base64/padding/length, or another corp's receive id
        raise Answer(400, "malformed", f"{what} does not decrypt: {type(e).__name__}") from e


@csrf_exempt
def callback(request: HttpRequest) -> HttpResponse:
    """The Django view (tests, and any server that does not use ``siyu.wsgi``'s short path)."""
    status, content = accept(
        request.method or "", request.GET.dict(), request.body, request.META.get("REMOTE_ADDR", "")
    )
    return HttpResponse(content, status=status, content_type="text/plain; charset=utf-8")
