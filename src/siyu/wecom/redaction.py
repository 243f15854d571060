"""Keep WeCom secrets and access tokens out of every text Siyu shows, stores or logs.

``redact(text)`` replaces

- the value of any ``name=value`` / ``"name": "value"`` pair whose name is a secret's
  (``access_token``, ``corpsecret``, ``secret``, ``token``, ``EncodingAESKey``, ``aes_key``...):
  WeCom puts the secret and the token in the query string of every request URL, and a network
  error's text (``requests``, ``urllib3``) quotes that URL;
- every value the gateway has seen that must stay secret: the configured secrets, callback token
  and AES key (``remember`` is called by ``siyu.wecom.config.get``) and the access tokens fetched
  (``DbTokenStorage``), wherever they appear.

``install_log_redaction()`` (called by the ``wecom`` app's ``ready``) makes every log record pass
through ``redact``: its message and its formatted traceback.
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from typing import Any

MASK = "***"

# A secret's parameter or key name: ...token, ...secret, EncodingAESKey, aes_key, aeskey.
_NAME = r"[A-Za-z_\-]*(?:token|secret|aes_?key|encodingaeskey)"
# name=value (query strings, form bodies, "key=value" prose) — the value ends at & or whitespace
# or a quote or a closing bracket.
_QUERY = re.compile(rf"(?i)\b({_NAME})(=)[^&\s\"'<>()\[\]{{}},;]+")
# "name": "value", 'name': 'value', name='value' (JSON, Python reprs)
_QUOTED = re.compile(rf"""(?i)(["']?\b{_NAME}["']?\s*[:=]\s*)(["'])(?:(?!\2).)*\2""")

# Secret values shorter than this are not replaced literally (a one-letter "secret" would
# mangle every text); they are still caught by name by the patterns above.
_MIN_LITERAL = 6
_MAX_TOKENS = 32

_lock = threading.Lock()
_configured: tuple[str, ...] = ()  # the configured secrets (replaced as a whole on each config load)
_tokens: dict[str, None] = {}  # access tokens seen, oldest first (bounded)


def remember_config(*values: str) -> None:
    """The currently configured secrets (contact/app secret, callback token, AES key)."""
    global _configured
    _configured = tuple(sorted({v for v in values if v and len(v) >= _MIN_LITERAL}, key=len, reverse=True))


def remember_token(value: str) -> None:
    """An access token the gateway obtained: never to be shown or logged."""
    if not isinstance(value, str) or len(value) < _MIN_LITERAL:
        return
    with _lock:
        _tokens.pop(value, None)
        _tokens[value] = None
        while len(_tokens) > _MAX_TOKENS:
            _tokens.pop(next(iter(_tokens)))


def redact(text: object) -> str:
    """``text`` (any object: its ``str``) with every secret and token replaced by ``***``."""
    if text is None:
        return ""
    text = str(text)
    if not text:
        return text
    for value in (*_configured, *list(_tokens)):
        if value in text:
            text = text.replace(value, MASK)
    if ":" in text or "=" in text:
        text = _QUOTED.sub(lambda m: m.group(1) + m.group(2) + MASK + m.group(2), text)
    if "=" in text:
        text = _QUERY.sub(lambda m: m.group(1) + "=" + MASK, text)
    return text


def error_text(exc: BaseException, limit: int = 2000) -> str:
    """``Type: message`` of an exception, redacted and cut to ``limit``: what Siyu stores as the
    error of a failed row (inbox, timers, sync runs, broadcasts...)."""
    return redact("".join(traceback.format_exception_only(type(exc), exc)).strip())[:limit]


def _redact_record(record: logging.LogRecord) -> None:
    if getattr(record, "_siyu_redacted", False):
        return
    record._siyu_redacted = True
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed record: the handler reports it
        return
    clean = redact(message)
    if clean != message:
        record.msg, record.args = clean, ()
    if record.exc_info and not record.exc_text:
        # Formatters use exc_text when it is set: the traceback is formatted (and cleaned) once.
        record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


class RedactSecrets(logging.Filter):
    """A logging filter that removes secrets and tokens from a record (never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record)
        return True


_installed = False
# Loggers that log WeCom URLs or Siyu's own errors. A logger's filter sees only records logged on
# that very logger, not its children's: the record factory below covers every logger.
FILTERED_LOGGERS = ("", "siyu", "urllib3", "urllib3.connectionpool", "requests", "wechatpy", "django", "django.request")


def install_log_redaction() -> None:
    """Every log record, from any logger, is redacted when it is created; the named loggers and
    the root logger's handlers also carry the filter (records made by another record factory)."""
    global _installed
    if _installed:
        return
    _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _redact_record(record)
        return record

    logging.setLogRecordFactory(factory)
    log_filter = RedactSecrets()
    for name in FILTERED_LOGGERS:
        logger = logging.getLogger(name)
        logger.addFilter(log_filter)
        for handler in logger.handlers:
            handler.addFilter(log_filter)


def redact_failed_task(sender: object, task_result: Any, **kwargs: Any) -> None:
    """``django_tasks.signals.task_finished``: django-tasks-db stores a failed task's whole
    traceback (the chained exceptions' texts included); keep it only redacted."""
    if getattr(task_result, "status", None) != "FAILED":
        return
    try:
        from django_tasks_db.models import DBTaskResult  # lazy: optional (another task backend may be configured)
    except ImportError:  # another task backend
        return
    for pk, text in DBTaskResult.objects.filter(id=task_result.id).values_list("id", "traceback"):
        clean = redact(text)
        if clean != text:
            DBTaskResult.objects.filter(id=pk).update(traceback=clean)
