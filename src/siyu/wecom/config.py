"""The effective WeCom connection settings: the console's overrides on top of WECOM_* variables."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from siyu.wecom.models import WeComSettings
from siyu.wecom.redaction import remember_config

_CACHE_S = 5.0
_cached: tuple[float, WeComConfig] | None = None


@dataclass(frozen=True)
class WeComConfig:
    corp_id: str
    api_base: str
    contact_secret: str
    app_secret: str
    agent_id: str
    callback_token: str
    callback_aes_key: str
    timeout_s: float
    rate_limit_retries: int
    rate_limit_backoff_s: float

    @property
    def api_root(self) -> str:
        """``https://host/cgi-bin/`` — the base every endpoint path is joined to."""
        return self.api_base.rstrip("/") + "/cgi-bin/"

    def secret(self, kind: str) -> str:
        # The app secret falls back to the customer-contact secret when only one is configured
        # (a self-built app listed in 可调用应用 can call both kinds of API).
        if kind == "app":
            return self.app_secret or self.contact_secret
        return self.contact_secret

    @property
    def callback_ready(self) -> bool:
        return bool(self.corp_id and self.callback_token and len(self.callback_aes_key) == 43)


FIELDS = ("corp_id", "api_base", "contact_secret", "app_secret", "agent_id", "callback_token", "callback_aes_key")


def cached() -> WeComConfig | None:
    """The cached config while it is fresh, without touching the database (for an event loop)."""
    c = _cached
    if c and time.monotonic() - c[0] < _CACHE_S:
        return c[1]
    return None


def get() -> WeComConfig:
    global _cached
    now = time.monotonic()
    if _cached and now - _cached[0] < _CACHE_S:
        return _cached[1]
    env: dict[str, Any] = settings.WECOM
    values: dict[str, str] = {
        "corp_id": env["CORP_ID"],
        "api_base": env["API_BASE"],
        "contact_secret": env["CONTACT_SECRET"],
        "app_secret": env["APP_SECRET"],
        "agent_id": env["AGENT_ID"],
        "callback_token": env["CALLBACK_TOKEN"],
        "callback_aes_key": env["CALLBACK_AES_KEY"],
    }
    row = WeComSettings.objects.first()
    if row:
        for name in FIELDS:
            value = getattr(row, name)
            if value:
                values[name] = value
    cfg = WeComConfig(
        **values,
        timeout_s=env["TIMEOUT_S"],
        rate_limit_retries=env["RATE_LIMIT_RETRIES"],
        rate_limit_backoff_s=env["RATE_LIMIT_BACKOFF_S"],
    )
    remember_config(cfg.contact_secret, cfg.app_secret, cfg.callback_token, cfg.callback_aes_key)
    _cached = (now, cfg)
    return cfg


def invalidate() -> None:
    global _cached
    _cached = None
