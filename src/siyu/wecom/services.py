"""Writes for the WeCom console: connection settings, connection test, callback retry."""

from __future__ import annotations

import dataclasses
import time

from django.db import transaction
from django.utils.translation import gettext

from siyu.wecom import config as wecom_config
from siyu.wecom import errcodes
from siyu.wecom.client import DbTokenStorage, WeComAPIError, WeComClient
from siyu.wecom.models import AccessToken, CallbackInbox, WeComSettings
from siyu.wecom.selectors import FIELD_SOURCES, SECRET_FIELDS

# Changing any of these makes cached access tokens meaningless (another corp or another server).
_TOKEN_FIELDS = ("corp_id", "api_base", "contact_secret", "app_secret")


def save_settings(values: dict[str, str], clear: set[str] | frozenset[str] = frozenset()) -> WeComSettings:
    """Store the console's overrides.

    ``values`` holds the submitted fields. For plain fields an empty value removes the override
    (the environment applies again). For secret fields an empty value keeps the stored secret
    (secrets are never sent back to the browser) and ``clear`` names those to remove.
    """
    with transaction.atomic():
        row = WeComSettings.objects.order_by("id").select_for_update().first() or WeComSettings()
        before = {name: getattr(row, name) for name in FIELD_SOURCES}
        for name in FIELD_SOURCES:
            if name in SECRET_FIELDS:
                if name in clear:
                    setattr(row, name, "")
                elif values.get(name):
                    setattr(row, name, values[name])
            elif name in values:
                setattr(row, name, values[name] or "")
        changed = {name for name in FIELD_SOURCES if getattr(row, name) != before[name]}
        # Only what changed is written: a secret that could not be decrypted (reads as "") keeps
        # its stored ciphertext until the administrator enters it again.
        row.save(update_fields=[*changed, "updated_at"] if row.pk else None)
        if changed & set(_TOKEN_FIELDS):
            AccessToken.objects.all().delete()
    wecom_config.invalidate()
    if changed & set(_TOKEN_FIELDS):
        DbTokenStorage.clear_memory()
    return row


@dataclasses.dataclass(frozen=True)
class ConnectionCheck:
    kind: str  # contact | app
    ok: bool
    errcode: int | None
    errmsg: str
    meaning: str
    duration_ms: int
    expires_in: int | None = None
    action: str = ""  # what to do about the error (siyu.wecom.errcodes)


def test_connection(timeout_s: float = 5.0) -> list[ConnectionCheck]:
    """Fetch an access token (gettoken) with each configured secret, through the gateway client.

    No retries or back-off here: the administrator is waiting for the answer. The calls appear in
    the API log like any other. Must not run inside a transaction (HTTP under the write lock).
    """
    cfg = wecom_config.get()
    quick = dataclasses.replace(cfg, timeout_s=min(cfg.timeout_s, timeout_s), rate_limit_retries=0)
    kinds = ["contact"]
    if cfg.app_secret and cfg.app_secret != cfg.contact_secret:
        kinds.append("app")
    results = []
    for kind in kinds:
        started = time.monotonic()
        try:
            client = WeComClient(quick, kind)
            answer = client.fetch_access_token()
        except WeComAPIError as e:
            not_configured = e.path == "config"
            results.append(
                ConnectionCheck(
                    kind=kind,
                    ok=False,
                    errcode=e.errcode,
                    errmsg=gettext("尚未配置企业ID和 Secret。") if not_configured else str(e.errmsg),
                    meaning="" if not_configured else errcodes.meaning(e.errcode),
                    action="" if not_configured else errcodes.action(e.errcode),
                    duration_ms=int((time.monotonic() - started) * 1000),
                )
            )
            continue
        results.append(
            ConnectionCheck(
                kind=kind,
                ok=True,
                errcode=0,
                errmsg=str(answer.get("errmsg", "ok")),
                meaning=errcodes.meaning(0),
                duration_ms=int((time.monotonic() - started) * 1000),
                expires_in=int(answer.get("expires_in") or 0) or None,
            )
        )
    return results


def retry_callback(row_id: int) -> bool:
    """Put a failed inbox row back in the queue (attempts reset). False if it is not failed."""
    updated = CallbackInbox.objects.filter(id=row_id, status=CallbackInbox.FAILED).update(
        status=CallbackInbox.PENDING, attempts=0, run_after=0, locked_by="", error=""
    )
    return bool(updated)
