"""The brand's mall, POS and membership (``siyu.wecom_sim.mall``) as a real integration would run:
control actions, and a pusher that sends their rows to the product's REST ingestion API.

Not a WeCom API. A brand's POS integration pushes batches to ``POST <product>/api/v1/cdp/members``,
``/orders`` and ``/events`` (at most 1,000 rows a call, ``Authorization: Bearer <API token>``;
rows and answers as in ``docs/cdp.md``). Here:

- ``mall/connect {url, token}``: where to push (the product's base URL and an API token);
- ``mall/history {months}``: queue the last ``months`` of members, orders and events (the world's
  mall is generated on first use, deterministically from the world's seed; ``mall/seed`` redoes it);
- ``mall/live {on, orders_per_minute}``: new orders, refunds and their events while the emulator
  runs, queued every ``LIVE_EVERY_S`` seconds;
- ``mall/status``: counts, the outbox, the product's answers and the rows it refused;
- ``mall/sample {n}``: stores, products, and the first rows of each kind as they are sent.

The outbox (``MallBatch``) is sent in order, one batch at a time (members before the orders that
name them); a connection error, a timeout or an HTTP 5xx/429 is retried with exponential backoff,
and any other refusal too (slowly: a wrong token needs a new ``mall/connect``). A batch is never
dropped. Rows the product refuses come back in its answer and are kept (``MallRowError``), shown by
``mall/status``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from typing import Any

import requests
from django.db import close_old_connections, connection, models, transaction

from siyu.wecom_sim import clock, mall, schemas
from siyu.wecom_sim.control import ControlError, action, on_tick
from siyu.wecom_sim.models import (
    MallBatch,
    MallEvent,
    MallMember,
    MallOrder,
    MallProduct,
    MallRowError,
    MallStore,
    SimState,
)
from siyu.wecom_sim.world import DAY, _Inserter, _j, on_reset

logger = logging.getLogger("siyu.wecom_sim.mall")

KEY = "mall"
BATCH = 1000
LIVE_EVERY_S = 3.0
RETRY_BASE_S = 0.5
RETRY_MAX_S = 30.0
TIMEOUT_S = 60.0
MODELS: dict[str, type[models.Model]] = {"members": MallMember, "orders": MallOrder, "events": MallEvent}
KINDS = ("members", "orders", "events")  # the order in which a plan is queued

_wake = threading.Event()
_live = {"last": 0.0, "carry": 0.0}
_rng = random.Random()


def _cfg() -> dict[str, Any]:
    row = SimState.objects.filter(key=KEY).first()
    return dict(row.value) if row else {}


def _save(cfg: dict[str, Any]) -> None:
    SimState.objects.update_or_create(key=KEY, defaults={"value": cfg})


# --- the generated mall ----------------------------------------------------------------------------
def _write(plan: mall.Plan, fresh: bool = False) -> None:
    """Insert or update a plan's rows (live steps update members' points and refunded orders);
    ``fresh``: into empty tables, with raw ``executemany`` as the world is seeded (a few times
    faster than ``bulk_create``)."""
    for kind, rows in zip(KINDS, (plan.members, plan.orders, plan.events), strict=True):
        if not rows:
            continue
        model = MODELS[kind]
        fields = [f for f in model._meta.concrete_fields]
        if fresh:
            ins = _Inserter(connection.cursor(), model, [f.column for f in fields])
            json_fields = {f.attname for f in fields if isinstance(f, models.JSONField)}
            names = [f.attname for f in fields]
            for i in range(0, len(rows), 5000):
                ins.write(
                    [
                        tuple(_j(getattr(r, n)) if n in json_fields else getattr(r, n) for n in names)
                        for r in rows[i : i + 5000]
                    ]
                )
            continue
        objs = [model(**{f.attname: getattr(r, f.attname) for f in fields}) for r in rows]
        model.objects.bulk_create(
            objs,
            batch_size=2000,
            update_conflicts=True,
            unique_fields=[mall.ID_FIELD[kind]],
            update_fields=[f.name for f in fields if not f.primary_key],
        )


def generate(months: int = mall.HISTORY_MONTHS, seed: int | None = None) -> dict[str, Any]:
    """(Re)build the mall of this world: stores, catalogue and ``months`` of history."""
    t0 = time.monotonic()
    for model in (MallBatch, MallRowError, MallEvent, MallOrder, MallMember, MallProduct, MallStore):
        model.objects.all().delete()
    stores, products = mall.build_stores_and_products()
    MallStore.objects.bulk_create(stores)
    MallProduct.objects.bulk_create(products)
    world = mall.load_world(seed)
    t1 = time.monotonic()
    plan = mall.generate(world, months)
    t2 = time.monotonic()
    _write(plan, fresh=True)
    info = {
        "months": months,
        "seed": world.seed,
        "anchor": world.anchor,
        "digest": mall.digest(plan, world.anchor),
        "seconds": round(time.monotonic() - t0, 2),
        "seconds_generating": round(t2 - t1, 2),
    }
    cfg = _cfg()
    cfg["generated"] = info
    cfg.pop("history", None)
    _save(cfg)
    logger.info("mall generated: %s", info)
    return info


def ensure_generated() -> dict[str, Any]:
    cfg = _cfg()
    if MallStore.objects.exists() and cfg.get("generated"):
        return dict(cfg["generated"])
    return generate()


@on_reset
def _forget() -> None:
    """The world was rebuilt: so is its mall, on first use."""
    SimState.objects.filter(key=KEY).update(value={})
    _live.update(last=0.0, carry=0.0)


# --- the outbox -------------------------------------------------------------------------------------
def enqueue(kind: str, ids: list[str], origin: str) -> int:
    now = time.time()
    batches = [
        MallBatch(kind=kind, ids=ids[i : i + BATCH], origin=origin, created_at=now) for i in range(0, len(ids), BATCH)
    ]
    MallBatch.objects.bulk_create(batches)
    transaction.on_commit(_wake.set)
    return len(batches)


def enqueue_plan(plan: mall.Plan, origin: str) -> int:
    n = 0
    for kind, rows in zip(KINDS, (plan.members, plan.orders, plan.events), strict=True):
        n += enqueue(kind, [getattr(r, mall.ID_FIELD[kind]) for r in rows], origin)
    return n


def rows_of(batch: MallBatch) -> list[dict[str, Any]]:
    model = MODELS[batch.kind]
    pk = model._meta.pk
    assert pk is not None
    found = {getattr(o, pk.attname): o for o in model.objects.filter(pk__in=batch.ids)}
    return [mall.as_row(batch.kind, found[i]) for i in batch.ids if i in found]


class Pusher:
    """One thread sending the outbox in order to the connected product."""

    def __init__(self) -> None:
        self.session = requests.Session()
        self.thread = threading.Thread(target=self.loop, name="sim-mall-push", daemon=True)

    def loop(self) -> None:
        while True:
            try:
                close_old_connections()
                wait = self.step()
            except Exception:  # keep pushing whatever happens to one batch
                logger.exception("mall push loop error")
                wait = 1.0
            if wait:
                _wake.wait(wait)
                _wake.clear()

    def step(self) -> float:
        """Send the oldest pending batch when due; returns how long to wait before the next step."""
        cfg = _cfg()
        if not cfg.get("url"):
            return 1.0
        batch = MallBatch.objects.filter(status=MallBatch.PENDING).order_by("id").first()
        if batch is None:
            return 1.0
        due = batch.next_attempt_at - time.time()
        if due > 0:
            return min(due, 1.0)
        self.send(batch, cfg)
        return 0.0

    def send(self, batch: MallBatch, cfg: dict[str, Any]) -> bool:
        rows = rows_of(batch)
        url = cfg["url"].rstrip("/") + f"/api/v1/cdp/{batch.kind}"
        error = ""
        answer: Any = None
        try:
            resp = self.session.post(
                url,
                json={"source": mall.SOURCE, "rows": rows},
                headers={"Authorization": f"Bearer {cfg.get('token', '')}"},
                timeout=TIMEOUT_S,
            )
            if resp.status_code == 200:
                try:
                    answer = resp.json()
                except ValueError:
                    error = "HTTP 200 with a body that is not JSON"
                if answer is not None and not isinstance(answer, dict):
                    error, answer = "HTTP 200 with an answer that is not an object", None
            else:
                error = f"HTTP {resp.status_code}: {resp.text[:120]}"
        except requests.RequestException as e:
            error = f"{type(e).__name__}"
        batch.attempts += 1
        if answer is None:
            backoff = min(RETRY_MAX_S, RETRY_BASE_S * 2 ** min(batch.attempts - 1, 10)) * random.uniform(0.8, 1.2)
            MallBatch.objects.filter(id=batch.id).update(
                attempts=batch.attempts, last_error=error[:255], next_attempt_at=time.time() + backoff
            )
            logger.warning("mall: %s batch %s not accepted (%s); retry in %.1f s", batch.kind, batch.id, error, backoff)
            return False
        self.record(batch, rows, answer)
        return True

    def record(self, batch: MallBatch, rows: list[dict[str, Any]], answer: dict[str, Any]) -> None:
        counts = {k: int(answer.get(k) or 0) for k in ("created", "updated", "unchanged", "failed")}
        id_field = {"members": "member_no", "orders": "order_no", "events": "event_id"}[batch.kind]
        errors = []
        for e in answer.get("errors") or []:
            if not isinstance(e, dict):
                continue
            i = e.get("row")
            source_id = e.get("id") or (rows[i][id_field] if isinstance(i, int) and 0 <= i < len(rows) else "")
            errors.append(
                MallRowError(
                    batch_id=batch.id,
                    kind=batch.kind,
                    row=i if isinstance(i, int) else -1,
                    source_id=str(source_id)[:64],
                    errors=e.get("errors") if isinstance(e.get("errors"), dict) else {"row": str(e.get("errors"))},
                    at=time.time(),
                )
            )
        with transaction.atomic():
            MallRowError.objects.bulk_create(errors)
            MallBatch.objects.filter(id=batch.id).update(
                status=MallBatch.SENT, attempts=batch.attempts, answer=counts, sent_at=time.time(), last_error=""
            )
        for err in errors[:5]:
            logger.warning("mall: the product refused %s %s: %s", batch.kind, err.source_id, err.errors)


_pusher: Pusher | None = None
_pusher_lock = threading.Lock()


def start_pusher() -> Pusher:
    global _pusher
    with _pusher_lock:
        if _pusher is None:
            _pusher = Pusher()
            _pusher.thread.start()
    return _pusher


# --- live ---------------------------------------------------------------------------------------------
@on_tick
def live_tick(now: int) -> None:
    cfg = _cfg()
    live = cfg.get("live") or {}
    if not live.get("on"):
        _live["last"] = 0.0
        return
    t = time.time()
    if not _live["last"]:
        _live["last"] = t
        return
    if t - _live["last"] < LIVE_EVERY_S:
        return
    expected = float(live.get("orders_per_minute", 6)) * (t - _live["last"]) / 60 + _live["carry"]
    _live["last"] = t
    n = int(expected)
    _live["carry"] = expected - n
    if n <= 0 or not MallStore.objects.exists():
        return
    plan = mall.live_step(mall.load_world(), n, now, _rng)
    _write(plan)
    enqueue_plan(plan, "live")
    live["orders"] = int(live.get("orders", 0)) + n
    cfg["live"] = live
    _save(cfg)


# --- control actions ------------------------------------------------------------------------------
@action("mall/connect", schemas.MallConnect)
def connect(body: dict) -> dict:
    cfg = _cfg()
    cfg["url"] = body["url"]
    if "token" in body:
        cfg["token"] = body["token"]
    if not cfg["url"]:
        cfg.pop("token", None)
    _save(cfg)
    # what waited for a better target (a refused token, an unreachable URL) is due now
    MallBatch.objects.filter(status=MallBatch.PENDING).update(next_attempt_at=0)
    transaction.on_commit(start_pusher)
    transaction.on_commit(_wake.set)
    return {"url": cfg["url"], "token": bool(cfg.get("token"))}


@action("mall/seed", schemas.MallSeed, atomic=False)
def seed(body: dict) -> dict:
    with transaction.atomic():
        return {"generated": generate(body.get("months", mall.HISTORY_MONTHS), body.get("seed"))}


@action("mall/history", schemas.MallHistory, atomic=False)
def history(body: dict) -> dict:
    months = int(body.get("months", mall.HISTORY_MONTHS))
    with transaction.atomic():
        generated = ensure_generated()
        if months > generated["months"]:
            raise ControlError(f"the mall has {generated['months']} months of history (mall/seed makes more)")
        # all of it when asked for all of it (events precede the first orders by a few days)
        since = mall.day_start(generated["anchor"]) - round(months * 30.44) * DAY if months < generated["months"] else 0
        ids = {
            "members": list(MallMember.objects.order_by("member_no").values_list("member_no", flat=True)),
            "orders": list(
                MallOrder.objects.filter(paid_at__gte=since)
                .order_by("paid_at", "order_no")
                .values_list("order_no", flat=True)
            ),
            "events": list(
                MallEvent.objects.filter(at__gte=since).order_by("at", "event_id").values_list("event_id", flat=True)
            ),
        }
        batches = sum(enqueue(kind, ids[kind], "history") for kind in KINDS)
        cfg = _cfg()
        cfg["history"] = {"months": months, "queued_at": clock.now(), "batches": batches}
        _save(cfg)
    start_pusher()
    return {
        "members": len(ids["members"]),
        "orders": len(ids["orders"]),
        "events": len(ids["events"]),
        "batches": batches,
    }


@action("mall/live", schemas.MallLive)
def live(body: dict) -> dict:
    cfg = _cfg()
    state = dict(cfg.get("live") or {"on": False, "orders_per_minute": 6})
    if "on" in body:
        state["on"] = body["on"]
    if "orders_per_minute" in body:
        state["orders_per_minute"] = body["orders_per_minute"]
    cfg["live"] = state
    _save(cfg)
    if state["on"]:
        ensure_generated()
        transaction.on_commit(start_pusher)
    return {"live": state}


@action("mall/status", schemas.Empty)
def status(body: dict) -> dict:
    cfg = _cfg()
    batches = list(
        MallBatch.objects.order_by("id").values(
            "id", "kind", "origin", "status", "attempts", "last_error", "answer", "next_attempt_at"
        )
    )
    pending = [b for b in batches if b["status"] == MallBatch.PENDING]
    answers: Counter[str] = Counter()
    for b in batches:
        answers.update(b["answer"] or {})
    head = pending[0] if pending else None
    errors = MallRowError.objects.order_by("-id")[:20]
    orders = MallOrder.objects.aggregate(n=models.Count("order_no"))
    return {
        "connected": bool(cfg.get("url")),
        "url": cfg.get("url", ""),
        "token": bool(cfg.get("token")),  # never the token itself
        "generated": cfg.get("generated"),
        "history": cfg.get("history"),
        "live": cfg.get("live") or {"on": False},
        "counts": {
            "stores": MallStore.objects.count(),
            "products": MallProduct.objects.count(),
            "members": MallMember.objects.count(),
            "orders": orders["n"],
            "refunded": MallOrder.objects.filter(status="refunded").count(),
            "part_refunded": MallOrder.objects.filter(status="part_refunded").count(),
            "events": MallEvent.objects.count(),
        },
        "outbox": {
            "pending": len(pending),
            "pending_rows": sum(
                len(ids) for ids in MallBatch.objects.filter(status=MallBatch.PENDING).values_list("ids", flat=True)
            ),
            "sent": len(batches) - len(pending),
            "head": None
            if head is None
            else {
                "id": head["id"],
                "kind": head["kind"],
                "attempts": head["attempts"],
                "last_error": head["last_error"],
                "retry_in_s": max(0.0, round(head["next_attempt_at"] - time.time(), 1)),
            },
        },
        "answers": dict(answers),
        "row_errors": MallRowError.objects.count(),
        "recent_row_errors": [
            {"kind": e.kind, "batch": e.batch_id, "row": e.row, "id": e.source_id, "errors": e.errors} for e in errors
        ],
    }


@action("mall/sample", schemas.MallSample)
def sample(body: dict) -> dict:
    ensure_generated()
    n = int(body.get("n", 5))
    return {
        "stores": [
            {"code": s.code, "name": s.name, "department_id": s.department_id}
            for s in MallStore.objects.order_by("code")
        ],
        "products": [
            {"sku": p.sku, "name": p.name, "category": p.category, "brand": p.brand, "price": mall.to_yuan(p.price)}
            for p in MallProduct.objects.order_by("sku")[:n]
        ],
        "members": [mall.as_row("members", m) for m in MallMember.objects.order_by("member_no")[:n]],
        "orders": [mall.as_row("orders", o) for o in MallOrder.objects.order_by("paid_at", "order_no")[:n]],
        "events": [mall.as_row("events", e) for e in MallEvent.objects.order_by("at", "event_id")[:n]],
    }
