"""Processing the callback inbox: dispatch on (Event, ChangeType), exactly once per stored event.

A handler is registered per event type and runs in two phases, so that no WeCom call is made
while the (single, on SQLite) write lock is held:

    @handles("change_external_contact", "edit_external_contact")
    def on_edit(event: dict):
        data = gateway.contact().external_contact.get_detail(event["ExternalUserID"])  # read phase
        def apply():                                                              # write phase
            customers.services.upsert_from_api(data)
        return apply

``apply`` runs in one transaction together with marking the inbox row done. A handler may also
return None (nothing to write). Handlers must be idempotent by state: re-read and upsert.
"""

from __future__ import annotations

import logging
import time
import traceback
from typing import Callable, Optional

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from siyu.core import queue
from siyu.wecom import events
from siyu.wecom.models import CallbackInbox

logger = logging.getLogger("siyu.wecom.inbox")

Apply = Callable[[], None]
Handler = Callable[[dict], Optional[Apply]]
HANDLERS: dict[tuple[str, str], list[Handler]] = {}
# Events whose handlers only re-read WeCom's current state and upsert it.
REREADS: set[tuple[str, str]] = set()
MAX_ATTEMPTS = 8


def handles(event: str, *change_types: str, rereads: bool = False):
    """Register a handler for ``event`` with each ``change_type`` ("*" = any change type).

    ``rereads=True`` declares that the handler re-reads the current state from WeCom (the event
    carries no diff, e.g. edit_external_contact). Such an event is run again when its dedupe key
    arrives after it was processed: two real edits within one second look exactly alike, and a
    second re-read is harmless for a retry (see ``store``).
    """

    def wrap(fn: Handler) -> Handler:
        for ct in change_types or ("*",):
            HANDLERS.setdefault((event, ct), []).append(fn)
            if rereads:
                REREADS.add((event, ct))
        return fn

    return wrap


def rereads(event: str, change_type: str) -> bool:
    return (event, change_type) in REREADS or (event, "*") in REREADS


def handlers_for(event: str, change_type: str) -> list[Handler]:
    return HANDLERS.get((event, change_type), []) + HANDLERS.get((event, "*"), [])


class _Lost(Exception):
    """The lease ran out and another worker took the row: drop our work."""


def _process(row: CallbackInbox, worker_id: str) -> str:
    event = events.parse(row.payload)
    found = handlers_for(row.event, row.change_type)
    applies = [a for a in (h(event) for h in found) if a is not None]
    with transaction.atomic():
        if not queue.still_ours(CallbackInbox, row, worker_id):
            raise _Lost()
        for apply in applies:
            apply()
        status = CallbackInbox.DONE if found else CallbackInbox.IGNORED
        CallbackInbox.objects.filter(id=row.id).update(status=status, processed_at=timezone.now(), error="")
    return status


def _fail(row: CallbackInbox, exc: BaseException) -> None:
    detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()[:2000]
    if row.attempts >= MAX_ATTEMPTS:
        CallbackInbox.objects.filter(id=row.id).update(status=CallbackInbox.FAILED, error=detail)
        logger.error("callback %s (%s/%s) failed for good: %s", row.id, row.event, row.change_type, detail)
    else:
        CallbackInbox.objects.filter(id=row.id).update(run_after=time.time() + queue.backoff_s(row.attempts), error=detail)
        logger.warning("callback %s (%s/%s) failed, will retry: %s", row.id, row.event, row.change_type, detail)


def process_rows(rows: list[CallbackInbox], worker_id: str) -> int:
    done = 0
    for row in rows:
        try:
            _process(row, worker_id)
            done += 1
        except _Lost:
            logger.info("callback %s was taken over by another worker", row.id)
        except Exception as exc:
            _fail(row, exc)
    return done


def process_pending(limit: int = 100, worker_id: str = "worker") -> int:
    rows = queue.claim(CallbackInbox, worker_id, limit, settings.SIYU_WORKER_LEASE_S)
    return process_rows(rows, worker_id) if rows else 0


def process_key(dedupe_key: str, worker_id: str = "inline") -> int:
    """Process one stored event now (inline mode: the benchmark's baseline)."""
    rows = queue.claim(CallbackInbox, worker_id, 1, settings.SIYU_WORKER_LEASE_S, dedupe_key=dedupe_key)
    return process_rows(rows, worker_id)
