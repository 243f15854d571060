"""The control API under ``/sim/``: drives the simulated world and reports on it.

Each action is ``fn(body: dict) -> dict`` registered with ``@action("name", schema=...)``; the body
is validated against its schema (``siyu.wecom_sim.schemas``) first. It answers ``{"ok": true, ...}``
or HTTP 4xx with ``{"ok": false, "error": "..."}``: 400 for bad input, 404 for an unknown action,
409 for a conflict with what exists. World changes send the
callbacks WeCom would send (through ``siyu.wecom_sim.callbacks.emit``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, close_old_connections, transaction
from django.http import HttpRequest, JsonResponse

from siyu.wecom_sim import callbacks, clock, framework, rules, schemas
from siyu.wecom_sim.models import ApiLog, Callback

logger = logging.getLogger("siyu.wecom_sim.control")

Action = Callable[[dict], dict]
ACTIONS: dict[str, Action] = {}
SCHEMAS: dict[str, type[schemas.Body]] = {}
TICKS: list[Callable[[int], Any]] = []


class ControlError(Exception):
    pass


# Actions that commit as they go (a batch of independent scenario steps): not one transaction.
OWN_TRANSACTIONS: set[str] = set()
# What a customers'-side process (``siyu sim --world``) serves: actions of customers that only write
# the shared database (no in-memory state of the emulator: clock offset, rules, frequency limits).
WORLD_ACTIONS = frozenset({"scan", "scan_many", "add_friend", "status"})
_world_only = False


def serve_world_only() -> None:
    global _world_only
    _world_only = True


def world_only() -> bool:
    return _world_only


def action(name: str, schema: type[schemas.Body], atomic: bool = True):
    """Register a control action whose body ``schema`` validates. It runs in one transaction
    unless ``atomic=False`` (it then opens its own, e.g. one per step of a batch, so that WeCom's
    API calls meanwhile are not held behind the whole batch's write lock)."""

    def wrap(fn: Action) -> Action:
        ACTIONS[name] = fn
        SCHEMAS[name] = schema
        if not atomic:
            OWN_TRANSACTIONS.add(name)
        return fn

    return wrap


def on_tick(fn: Callable[[int], Any]) -> Callable[[int], Any]:
    """Register ``fn(now)``: run every second and after the clock advances (due work, timers)."""
    TICKS.append(fn)
    return fn


_tick_lock = threading.Lock()


def tick() -> None:
    with _tick_lock:
        now = clock.now()
        for fn in TICKS:
            try:
                with transaction.atomic():
                    fn(now)
            except Exception:
                logger.exception("tick %s failed", fn.__name__)


def start_ticker(interval: float = 1.0) -> threading.Thread:
    def loop() -> None:
        while True:
            time.sleep(interval)
            close_old_connections()
            tick()

    t = threading.Thread(target=loop, name="sim-ticker", daemon=True)
    t.start()
    return t


def _error(message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"ok": False, "error": message}, status=status, json_dumps_params={"ensure_ascii": False})


def view(request: HttpRequest, name: str) -> JsonResponse:
    fn = ACTIONS.get(name)
    if fn is None:
        return _error(f"unknown action {name}", 404)
    if _world_only and name not in WORLD_ACTIONS:
        return _error(f"{name} is served by the main emulator process", 404)
    framework.flush_log()  # what an action reads (or resets) includes every call answered so far
    body: dict = {}
    if request.method == "POST" and request.body.strip():
        try:
            body = json.loads(request.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return _error("body is not JSON")
        if not isinstance(body, dict):
            return _error("body must be a JSON object")
    body.update({k: v for k, v in request.GET.items() if k not in body})
    try:
        body = schemas.validate(SCHEMAS[name], body)
        if name in OWN_TRANSACTIONS:
            out = fn(body) or {}
        else:
            with transaction.atomic():
                out = fn(body) or {}
    except IntegrityError as e:
        logger.info("control %s refused: conflict (%s)", name, e)
        return _error(f"conflict with existing data: {e}", 409)
    except (ControlError, ValueError, KeyError, TypeError, OverflowError, framework.WeComError) as e:
        # TypeError / OverflowError: input a schema let through but the action cannot use; still
        # the caller's input, so a 4xx, with a log line to find the gap.
        logger.info("control %s refused: %s", name, e)
        return _error(str(e))
    out = {"ok": True, **out}
    return JsonResponse(out, json_dumps_params={"ensure_ascii": False})


# --- core actions ---------------------------------------------------------------------------
@action("status", schemas.Empty)
def status(body: dict) -> dict:
    from django.conf import settings

    from siyu.wecom_sim.models import Department, ExternalContact, Follow, GroupChat, User

    cfg = callbacks.target()
    return {
        # The simulated corp's credentials: the product is configured with them like with a real corp's.
        "corp_id": settings.SIM_CORP_ID,
        "secret": settings.SIM_SECRET,
        "app_secret": settings.SIM_APP_SECRET,
        "agent_id": settings.SIM_AGENT_ID,
        "now": clock.now(),
        "clock_offset_s": clock.offset(),
        "callback_url": cfg.get("url"),
        "counts": {
            "departments": Department.objects.count(),
            "users": User.objects.count(),
            "customers": ExternalContact.objects.count(),
            "follows": Follow.objects.filter(status=Follow.ACTIVE).count(),
            "groups": GroupChat.objects.filter(dismissed=False).count(),
        },
        "callbacks": {
            "pending": Callback.objects.filter(status=Callback.PENDING).count(),
            "delivered": Callback.objects.filter(status=Callback.DELIVERED).count(),
            "failed": Callback.objects.filter(status=Callback.FAILED).count(),
        },
        "calls": dict(framework.call_counts),
    }


@action("config", schemas.Config)
def config(body: dict) -> dict:
    """Set the callback target (verified like the WeCom console does), rules and quotas."""
    if any(k in body for k in ("callback_url", "callback_token", "callback_aes_key")):
        try:
            callbacks.set_target(
                url=body.get("callback_url"),
                token=body.get("callback_token"),
                aes_key=body.get("callback_aes_key"),
                verify=bool(body.get("verify", True)),
            )
        except Exception as e:  # a refused URL is an answer, not a crash
            raise ControlError(str(e)) from e
    if "rules" in body:
        rules.update(body["rules"])
    if "quota_per_min" in body:
        framework.limiter.quota_override = {str(k): int(v) for k, v in body["quota_per_min"].items()}
        framework.limiter.reset()
    return {"rules": rules.as_dict(), "callback": {k: v for k, v in callbacks.target().items() if k == "url"}}


@action("rules/reset", schemas.Empty)
def rules_reset(body: dict) -> dict:
    rules.reset()
    framework.limiter.quota_override = {}
    framework.limiter.reset()
    return {"rules": rules.as_dict()}


@action("time/advance", schemas.TimeAdvance)
def time_advance(body: dict) -> dict:
    seconds = float(body.get("seconds", 0))
    now = clock.advance(seconds)
    transaction.on_commit(tick)
    return {"now": now}


@action("tick", schemas.Empty)
def run_tick(body: dict) -> dict:
    transaction.on_commit(tick)
    return {"now": clock.now()}


@action("tokens/revoke", schemas.Empty)
def tokens_revoke(body: dict) -> dict:
    return {"revoked": framework.revoke_tokens()}


@action("limits/reset", schemas.Empty)
def limits_reset(body: dict) -> dict:
    framework.limiter.reset()
    framework.call_counts.clear()
    return {}


@action("callbacks", schemas.CallbackList)
def callbacks_list(body: dict) -> dict:
    since = int(body.get("since", 0))
    qs = Callback.objects.filter(id__gt=since).order_by("id")[: int(body.get("limit", 500))]
    return {
        "callbacks": [
            {
                "id": c.id,
                "event": c.event,
                "change_type": c.change_type,
                "xml": c.xml,
                "status": c.status,
                "attempts": c.attempts,
                "last_error": c.last_error,
            }
            for c in qs
        ]
    }


@action("callbacks/emit", schemas.CallbackEmit)
def callbacks_emit(body: dict) -> dict:
    """Send an arbitrary event: {event, change_type, fields: {...}, count} (tests, benchmarks)."""
    fields = body.get("fields") or {}
    count = int(body.get("count", 1))
    ids = []
    for i in range(count):
        f = {k: (str(v).replace("{i}", str(i)) if isinstance(v, str) else v) for k, v in fields.items()}
        ids.append(callbacks.emit(body["event"], body.get("change_type", ""), **f).id)
    return {"ids": ids}


@action("callbacks/redeliver", schemas.CallbackIds)
def callbacks_redeliver(body: dict) -> dict:
    """Send callbacks again (as WeCom's retries would) — for tests of duplicate handling."""
    ids = body.get("ids") or []
    n = Callback.objects.filter(id__in=ids).update(status=Callback.PENDING, next_attempt_at=0, attempts=0)
    transaction.on_commit(callbacks.wake)
    return {"requeued": n}


@action("callbacks/discard", schemas.Empty)
def callbacks_discard(body: dict) -> dict:
    """Drop every undelivered callback (a test starting with a clean outbox)."""
    n = Callback.objects.filter(status=Callback.PENDING).update(status=Callback.FAILED, last_error="discarded")
    return {"discarded": n}


@action("api_log", schemas.ApiLogQuery)
def api_log(body: dict) -> dict:
    qs = ApiLog.objects.order_by("id")
    if body.get("path"):
        qs = qs.filter(path=body["path"])
    if body.get("since"):
        qs = qs.filter(id__gt=int(body["since"]))
    rows = list(qs[: int(body.get("limit", 1000))])
    return {"calls": [{"id": r.id, "at": r.at, "path": r.path, "errcode": r.errcode, "body": r.body} for r in rows]}


@action("actions", schemas.Empty)
def actions_list(body: dict) -> dict:
    """Every control action with its body's fields: {name: {field: {type, required}}}."""
    return {
        "actions": {
            name: {f: {"type": t, "required": req} for f, t, req in schemas.describe(SCHEMAS[name])}
            for name in sorted(ACTIONS)
        }
    }
