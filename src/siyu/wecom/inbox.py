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

A worker processes a claimed batch in three steps (``process_rows``):

1. coalesce: events of a re-read type (``rereads=True``) that are identical but for their
   CreateTime (e.g. several edits of one customer) are read once; every row is marked done;
2. read phases run concurrently in a small thread pool (they wait on WeCom, not on the CPU);
3. write phases are committed a few rows per transaction (bounded by ``SIYU_WORKER_TX_BUDGET_S`` so the
   callback endpoint's inbox inserts never wait long for the write lock), each row in its own
   savepoint: a failing row is rolled back and retried later without touching the others. The
   lease is re-checked for the whole chunk inside the transaction, so effects stay exactly-once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from siyu.core import queue
from siyu.wecom import events
from siyu.wecom.client import collect_calls
from siyu.wecom.models import CallbackInbox
from siyu.wecom.redaction import error_text

logger = logging.getLogger("siyu.wecom.inbox")

Event = dict[str, Any]  # a parsed callback (events.parse)
Apply = Callable[[], None]
Handler = Callable[[Event], Apply | None]
UrgentWork = Callable[[list[Event]], None]
HANDLERS: dict[tuple[str, str], list[Handler]] = {}
# Events whose handlers only re-read WeCom's current state and upsert it.
REREADS: set[tuple[str, str]] = set()
MAX_ATTEMPTS = 8
# Read phases run concurrently in settings.SIYU_WORKER_READ_THREADS threads (0 or 1: one after the
# other); a write transaction is committed once it has run settings.SIYU_WORKER_TX_BUDGET_S.
HIGH = 10  # CallbackInbox.priority of events that must not wait (see priority_of)


def handles(event: str, *change_types: str, rereads: bool = False) -> Callable[[Handler], Handler]:
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


# Urgent work (see process_urgent): per event type, functions of a batch of events run by the
# worker's urgent lane before the rows' ordinary handlers.
URGENT: dict[tuple[str, str], list[UrgentWork]] = {}


def urgent(event: str, *change_types: str) -> Callable[[UrgentWork], UrgentWork]:
    """Register ``fn(events)`` as urgent work for rows of priority > 0 of ``event`` /
    ``change_type`` (e.g. sending a welcome while its code is valid). It does its own writes, in
    its own short transactions, and must be idempotent with the row's ordinary handlers: those
    still run afterwards (in the ordinary lane), and do the same work themselves when no urgent
    lane ran (inline mode, a worker without the lane), finding it done otherwise."""

    def wrap(fn: UrgentWork) -> UrgentWork:
        for ct in change_types:
            URGENT.setdefault((event, ct), []).append(fn)
        return fn

    return wrap


def rereads(event: str, change_type: str) -> bool:
    return (event, change_type) in REREADS or (event, "*") in REREADS


def handlers_for(event: str, change_type: str) -> list[Handler]:
    return HANDLERS.get((event, change_type), []) + HANDLERS.get((event, "*"), [])


class Batched:
    """A write phase that merges with others of its ``kind``.

    ``kind(items)`` must do for a list of items what ``kind([item])`` does for each (e.g. one bulk
    upsert for the re-reads of many callbacks). Consecutive ``Batched`` applies of one kind in a
    write chunk run as one call in one savepoint; if that call fails, each runs alone in its own
    savepoint, so a bad row still fails alone. Called directly, it runs alone.
    """

    __slots__ = ("item", "kind")

    def __init__(self, kind: Callable[[list[Any]], None], item: Any):
        self.kind, self.item = kind, item

    def __call__(self) -> None:
        self.kind([self.item])


def priority_of(event: Event) -> int:
    """The inbox priority of an event, decided when it is accepted.

    High: an add that carries a WelcomeCode (send_welcome_msg must use it within 20 s, 客户联系
    «发送新客户欢迎语»). Everything else waits its turn. (A member joining a group through a join
    way is welcomed by WeCom itself, from the way's group welcome template: nothing of ours is
    time-bound there.)
    """
    name = event.get("Event")
    change = event.get("ChangeType")
    if name == "change_external_contact" and change in ("add_external_contact", "add_half_external_contact"):
        return HIGH if event.get("WelcomeCode") else 0
    return 0


class _Lost(Exception):
    """The lease ran out and another worker took the row: drop our work."""


def _read(row: CallbackInbox) -> tuple[list[Apply], bool]:
    """The read phase of a row: its handlers' applies, and whether any handler exists."""
    found = handlers_for(row.event, row.change_type)
    event = events.parse(row.payload)
    return [a for a in (h(event) for h in found) if a is not None], bool(found)


def _process(row: CallbackInbox, worker_id: str) -> str:
    applies, found = _read(row)
    with transaction.atomic():
        if not queue.still_ours(CallbackInbox, row, worker_id):
            raise _Lost()
        for apply in applies:
            apply()
        status = CallbackInbox.DONE if found else CallbackInbox.IGNORED
        CallbackInbox.objects.filter(id=row.id).update(status=status, processed_at=timezone.now(), error="")
    return status


def _fail(row: CallbackInbox, exc: BaseException) -> None:
    detail = error_text(exc)
    if row.attempts >= MAX_ATTEMPTS:
        CallbackInbox.objects.filter(id=row.id).update(status=CallbackInbox.FAILED, error=detail)
        logger.error("callback %s (%s/%s) failed for good: %s", row.id, row.event, row.change_type, detail)
    else:
        CallbackInbox.objects.filter(id=row.id).update(
            run_after=time.time() + queue.backoff_s(row.attempts), error=detail
        )
        logger.warning("callback %s (%s/%s) failed, will retry: %s", row.id, row.event, row.change_type, detail)


def _process_one_by_one(rows: list[CallbackInbox], worker_id: str) -> int:
    done = 0
    for row in rows:
        try:
            _process(row, worker_id)
            done += 1
        except _Lost:
            logger.info("callback %s was taken over by another worker", row.id)
        except Exception as exc:  # noqa: BLE001 - any handler failure is recorded on the row and retried
            _fail(row, exc)
    return done


def _coalesce_key(row: CallbackInbox, event: Event) -> tuple[Any, ...]:
    """Rows with the same key need one read: identical re-read events but for their CreateTime."""
    if not rereads(row.event, row.change_type):
        return ("row", row.id)
    return (
        "reread",
        row.event,
        row.change_type,
        tuple(sorted((k, str(v)) for k, v in event.items() if k != "CreateTime")),
    )


def _group(rows: list[CallbackInbox]) -> list[list[CallbackInbox]]:
    """The claimed rows in groups of one read each (claim order kept; the newest row of a group
    is the one read, at the end of its group)."""
    groups: dict[tuple[Any, ...], list[CallbackInbox]] = {}
    for row in rows:
        try:
            key = _coalesce_key(row, events.parse(row.payload))
        except Exception:  # noqa: BLE001 - a payload that no longer parses fails in its own read
            key = ("row", row.id)
        groups.setdefault(key, []).append(row)
    return [sorted(g, key=lambda r: r.id) for g in groups.values()]


ReadResult = tuple[list[Apply], bool] | BaseException


def _read_all(leaders: list[CallbackInbox]) -> list[ReadResult]:
    """Each leader's read result, or the exception it raised.

    The threads live for one batch and close their database connections when done: nothing is
    left open between batches (a test database can be dropped; PostgreSQL keeps no idle
    sessions per thread).
    """

    def one(row: CallbackInbox) -> ReadResult:
        try:
            return _read(row)
        except Exception as exc:  # noqa: BLE001 - the read phase runs in a thread: its failure is handed back
            return exc

    # Inside a transaction (tests, inline callers) other connections would not see its rows;
    # a single row gains nothing from a thread.
    read_threads = settings.SIYU_WORKER_READ_THREADS
    if read_threads <= 1 or len(leaders) <= 1 or connection.in_atomic_block:
        with collect_calls():
            return [one(r) for r in leaders]
    # The first read runs here: it fetches the access token once instead of in every thread.
    with collect_calls():
        results: list[ReadResult | None] = [one(leaders[0])] + [None] * (len(leaders) - 1)
    todo = iter(range(1, len(leaders)))
    lock = threading.Lock()

    def run() -> None:
        try:
            with collect_calls():  # this thread's ApiCall rows: one insert at the end
                while True:
                    with lock:
                        i = next(todo, None)
                    if i is None:
                        return
                    results[i] = one(leaders[i])
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, name="inbox-read", daemon=True) for _ in range(min(read_threads, len(leaders) - 1))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # a read its thread never delivered (the thread died) fails its rows, which are retried
    return [RuntimeError("inbox read thread died") if r is None else r for r in results]


Failures = list[tuple[list[CallbackInbox], BaseException]]


def _apply_chunk(chunk: list[tuple[list[CallbackInbox], list[Apply], bool]], worker_id: str, failures: Failures) -> int:  # noqa: C901 - savepoint per group, merged bulk writes and their fallback must share one transaction
    """One write transaction for several groups; each group in its own savepoint (a run of
    ``Batched`` applies of one kind: one savepoint, then one per group if it fails)."""
    finished: dict[str, list[int]] = {CallbackInbox.DONE: [], CallbackInbox.IGNORED: []}

    def single(mine: list[CallbackInbox], applies: list[Apply], found: bool) -> None:
        try:
            with transaction.atomic():
                for apply in applies:
                    apply()
        except Exception as exc:  # noqa: BLE001 - any failing apply() fails its rows alone, recorded
            failures.append((mine, exc))
            return
        finished[CallbackInbox.DONE if found else CallbackInbox.IGNORED].extend(r.id for r in mine)

    run: list[tuple[list[CallbackInbox], Batched, bool]] = []  # (rows, their one Batched apply, found) of one kind

    def flush() -> None:
        if len(run) > 1:
            try:
                with transaction.atomic():
                    run[0][1].kind([b.item for _, b, _ in run])
            except Exception:  # noqa: BLE001 - the rows are retried one by one below
                logger.info("merged write of %d callbacks failed; writing them one by one", len(run))
            else:
                for mine, _, found in run:
                    finished[CallbackInbox.DONE if found else CallbackInbox.IGNORED].extend(r.id for r in mine)
                run.clear()
                return
        for mine, b, found in run:
            single(mine, [b], found)
        run.clear()

    with transaction.atomic():
        ours = queue.still_ours_ids(CallbackInbox, [r.id for g, _, _ in chunk for r in g], worker_id)
        for group, applies, found in chunk:
            mine = [r for r in group if r.id in ours]
            for r in group:
                if r.id not in ours:
                    logger.info("callback %s was taken over by another worker", r.id)
            if not mine:
                continue
            batched = applies[0] if len(applies) == 1 and isinstance(applies[0], Batched) else None
            if run and not (batched is not None and batched.kind is run[0][1].kind):
                flush()  # keep the order of the events
            if batched is not None:
                run.append((mine, batched, found))
            else:
                single(mine, applies, found)
        flush()
        now = timezone.now()
        for status, ids in finished.items():
            if ids:
                CallbackInbox.objects.filter(id__in=ids).update(status=status, processed_at=now, error="")
    return sum(len(ids) for ids in finished.values())


def process_rows(rows: list[CallbackInbox], worker_id: str) -> int:
    """Process claimed rows: coalesced, read concurrently, written in short batched transactions."""
    if len(rows) <= 1:
        return _process_one_by_one(rows, worker_id)
    groups = _group(rows)
    reads = _read_all([g[-1] for g in groups])
    failures: list[tuple[list[CallbackInbox], BaseException]] = []
    ready = []
    for group, result in zip(groups, reads, strict=True):
        if isinstance(result, BaseException):
            failures.append((group, result))
        else:
            ready.append((group, *result))

    done = 0
    i = 0
    while i < len(ready):
        # grow the chunk while the previous one stayed within the budget
        chunk_failures: Failures = []
        started = time.monotonic()
        chunk = ready[i : i + _chunk_size(ready, i)]
        try:
            done += _apply_chunk(chunk, worker_id, chunk_failures)
        except Exception:
            # the transaction itself failed (lock, commit, broken connection): each row on its own
            logger.exception("inbox write batch of %d failed; processing its rows one by one", len(chunk))
            chunk_failures = []
            done += _process_one_by_one([r for g, _, _ in chunk for r in g], worker_id)
        failures += chunk_failures
        _tune(len(chunk), time.monotonic() - started)
        i += len(chunk)
    for group, exc in failures:
        for row in group:
            _fail(row, exc)
    return done


# Rows per write transaction, adapted so that one transaction lasts about SIYU_WORKER_TX_BUDGET_S.
_per_tx = 16


def _chunk_size(ready: list[Any], i: int) -> int:
    return max(1, min(_per_tx, len(ready) - i))


def _tune(n: int, elapsed: float) -> None:
    global _per_tx
    if n < _per_tx:
        return
    budget = settings.SIYU_WORKER_TX_BUDGET_S
    if elapsed > budget and _per_tx > 1:
        _per_tx = max(1, _per_tx // 2)
    elif elapsed < budget / 2 and _per_tx < 256:
        _per_tx *= 2


def process_pending(limit: int = 100, worker_id: str = "worker", lane: str = "all") -> int:
    """Claim and process ready rows. ``lane``: "all" (urgent rows first, their urgent work done
    by their handlers) or "normal" (priority 0 only, when a thread serves the urgent lane with
    ``process_urgent``)."""
    lease = settings.SIYU_WORKER_LEASE_S
    if lane == "normal":
        rows = queue.claim(CallbackInbox, worker_id, limit, lease, priority=0)
    else:
        rows = queue.claim(CallbackInbox, worker_id, limit, lease, first={"priority__gt": 0})
    return process_rows(rows, worker_id) if rows else 0


def process_urgent(limit: int = 20, worker_id: str = "worker") -> tuple[int, float]:
    """The urgent lane: claim ready rows of priority > 0, run their urgent functions (each once
    for the whole batch: one transaction to claim the work, the WeCom calls concurrently, one to
    record them), then hand the rows to the ordinary lane (priority 0, ready now), where their
    handlers run as for any row, behind the backlog. Only the time-bound part of an event jumps the
    queue: a burst of adds does not also push its re-reads, tags and remarks ahead of older work,
    nor wait for them. A worker dying here loses nothing: the rows become ready again when the
    lease runs out, and the urgent functions are idempotent.

    Returns (rows taken, their lag: seconds from the oldest one's arrival to its claim)."""
    rows = queue.claim(CallbackInbox, worker_id, limit, settings.SIYU_WORKER_LEASE_S, priority__gt=0)
    if not rows:
        return 0, 0.0
    lag = (timezone.now() - min(r.received_at for r in rows)).total_seconds()
    batches: dict[UrgentWork, list[Event]] = {}
    for row in rows:
        fns = URGENT.get((row.event, row.change_type), [])
        if not fns:
            continue
        try:
            event = events.parse(row.payload)
        except Exception:  # noqa: BLE001 - fails in its ordinary processing, with the error recorded
            continue
        for fn in fns:
            batches.setdefault(fn, []).append(event)
    for fn, evs in batches.items():
        try:
            with collect_calls():
                fn(evs)
        except Exception:  # the ordinary handlers still do the work (idempotent)
            logger.exception("urgent work %s for %d events failed", getattr(fn, "__qualname__", fn), len(evs))
    with transaction.atomic():
        CallbackInbox.objects.filter(
            id__in=[r.id for r in rows], locked_by=worker_id, status=CallbackInbox.PENDING
        ).update(priority=0, run_after=0, locked_by="", attempts=F("attempts") - 1)
    return len(rows), lag


def process_key(dedupe_key: str, worker_id: str = "inline") -> int:
    """Process one stored event now (inline mode: the benchmark's baseline)."""
    rows = queue.claim(CallbackInbox, worker_id, 1, settings.SIYU_WORKER_LEASE_S, dedupe_key=dedupe_key)
    return process_rows(rows, worker_id)
