"""Secrets at rest: a text field stored encrypted with Fernet (``cryptography``).

The key comes from ``SIYU_FIELD_KEY`` (a Fernet key: 32 url-safe base64 bytes, as printed by
``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``;
several keys separated by commas rotate: the first encrypts, all decrypt). Without it, a key is
generated on first use and kept in ``<SIYU_VAR_DIR>/field.key`` (mode 0600). It is independent of
``SECRET_KEY``: rotating one never makes the other's data unreadable.

Stored values read ``fernet:<token>``; a value without the prefix (a row written before the
encryption) reads as it is and is encrypted when saved again. ``""`` is stored as ``""``: blank
means "not set in the console". Encrypted values cannot be filtered on.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

from siyu.conf import persistent_secret

logger = logging.getLogger("siyu.wecom")

PREFIX = "fernet:"
KEY_FILE = "field.key"
ENV_VAR = "SIYU_FIELD_KEY"  # declared in siyu.settings (settings.SIYU_FIELD_KEY)


def key_path() -> Path:
    return Path(settings.VAR_DIR) / KEY_FILE


def _read_or_create_key_file(path: Path) -> bytes:
    """The key in ``path``; created once (mode 0600) if absent, so that processes starting
    together agree on one key (``siyu.conf.persistent_secret``)."""
    key = persistent_secret(path, lambda: Fernet.generate_key().decode()).encode()
    if not key:
        raise ImproperlyConfigured(f"{path} is empty: restore it or set {ENV_VAR}")
    return key


@functools.lru_cache(maxsize=1)
def fernet() -> MultiFernet:
    raw = (getattr(settings, ENV_VAR, "") or "").strip()
    keys = [k.strip().encode() for k in raw.split(",") if k.strip()] if raw else [_read_or_create_key_file(key_path())]
    try:
        return MultiFernet([Fernet(k) for k in keys])
    except (ValueError, TypeError) as e:
        source = ENV_VAR if raw else str(key_path())
        raise ImproperlyConfigured(f"{source} does not hold a Fernet key (32 url-safe base64-encoded bytes)") from e


def reset_key_cache() -> None:
    fernet.cache_clear()


def encrypt(value: str) -> str:
    if not value or value.startswith(PREFIX):
        return value
    return PREFIX + fernet().encrypt(value.encode()).decode()


def decrypt(value: str | None, name: str = "") -> str:
    if not value or not value.startswith(PREFIX):
        return value or ""
    try:
        return fernet().decrypt(value[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        # A lost or changed key: the value is unusable (treated as not set); never log it.
        logger.error("cannot decrypt %s: was %s or %s changed or lost?", name or "a stored secret", ENV_VAR, key_path())
        return ""


class EncryptedTextField(models.TextField[str, str]):
    """A ``TextField`` holding text encrypted at rest; Python code sees the plain text."""

    def from_db_value(self, value: str | None, expression: object, connection: object) -> str:
        return decrypt(value, f"{self.model.__name__}.{self.name}" if hasattr(self, "model") else "")

    def to_python(self, value: Any) -> Any:
        value = super().to_python(value)
        return decrypt(value) if isinstance(value, str) else value

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        return encrypt(value) if isinstance(value, str) else value
