"""Group commit for the callback inbox.

Each request thread hands its row to one writer thread per process and waits until the row is
committed, so the request still answers only after the event is durable; but a burst of
concurrent callbacks costs one transaction per batch instead of one per event, and the threads of
a process do not fight over SQLite's single write lock.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

from django.db import close_old_connections, connection, transaction

from siyu.wecom import inbox
from siyu.wecom.models import CallbackInbox

logger = logging.getLogger("siyu.wecom.store")

MAX_BATCH = 500


class _Pending:
    __slots__ = ("done", "error", "notify", "row")

    def __init__(self, row: CallbackInbox, notify: Callable[[BaseException | None], object] | None = None):
        self.row = row
        # a waiting thread waits on ``done``; an event loop is told through ``notify``
        self.done = threading.Event() if notify is None else None
        self.error: BaseException | None = None
        self.notify = notify  # called from the writer thread once committed (or failed)

    def finish(self) -> None:
        if self.notify is not None:
            self.notify(self.error)
        elif self.done is not None:
            self.done.set()


class InboxWriter:
    def __init__(self) -> None:
        self._queue: queue.Queue[_Pending] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pid: int | None = None

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._pid = os.getpid()
                self._queue = queue.Queue()
                self._thread = threading.Thread(target=self._run, name="inbox-writer", daemon=True)
                self._thread.start()

    def store(self, row: CallbackInbox, timeout: float = 4.0) -> None:
        """Persist ``row`` (ignoring a duplicate dedupe key); returns once it is committed.

        A caller already inside a transaction (a test, or a view wrapped in one) writes in it:
        another connection would wait for that transaction's write lock.
        """
        if connection.in_atomic_block:
            _insert([row])
            return
        self._ensure_thread()
        item = _Pending(row)
        done = item.done
        assert done is not None  # a thread waits (no notify)
        self._queue.put(item)
        if not done.wait(timeout):
            raise TimeoutError("inbox write did not commit in time")
        if item.error is not None:
            raise item.error

    async def store_async(self, row: CallbackInbox, timeout: float = 4.0) -> None:
        """``store`` for an event loop: awaits the commit without holding a thread."""
        self._ensure_thread()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def resolve(fut: asyncio.Future[None], error: BaseException | None) -> None:
            if fut.done():
                return
            if error is None:
                fut.set_result(None)
            else:
                fut.set_exception(error)

        self._queue.put(_Pending(row, notify=lambda error: loop.call_soon_threadsafe(resolve, fut, error)))
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise TimeoutError("inbox write did not commit in time") from None

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                with transaction.atomic():
                    _insert([p.row for p in batch])
            except BaseException as exc:  # report to every waiting request; WeCom will retry
                logger.exception("inbox batch of %d failed", len(batch))
                for p in batch:
                    p.error = exc
                close_old_connections()
            for p in batch:
                p.finish()


def _insert(rows: list[CallbackInbox]) -> None:
    """Insert, ignoring dedupe-key conflicts (WeCom's retries): one prepared statement per batch,
    not the ORM's per-call query compilation (this runs for every callback burst).

    A repeated key of a re-read event that was already processed is queued again: it may be a
    second, identical-looking event (two edits of one customer within a second carry the same
    fields), and processing a re-read twice changes nothing.
    """
    fields, ignore_sql, requeue_sql = _insert_sql(connection.vendor)
    plain: list[list[Any]] = []
    again: list[list[Any]] = []
    for row in rows:
        values = [f.get_db_prep_save(f.pre_save(row, True), connection) for f in fields]
        (again if inbox.rereads(row.event, row.change_type) else plain).append(values)
    with connection.cursor() as cur:
        if plain:
            cur.executemany(ignore_sql, plain)
        if again:
            cur.executemany(requeue_sql, [[*v, CallbackInbox.PENDING, CallbackInbox.DONE] for v in again])


@functools.cache
def _insert_sql(vendor: str) -> tuple[list[Any], str, str]:
    """The inbox's columns and its two insert statements (ignore a repeat / re-queue a processed
    re-read), built once per database vendor."""
    q = connection.ops.quote_name
    fields = [f for f in CallbackInbox._meta.concrete_fields if not f.primary_key]
    table = q(CallbackInbox._meta.db_table)
    cols = ", ".join(q(f.column) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {table} ({cols}) VALUES ({marks}) ON CONFLICT ({q('dedupe_key')}) "
    requeue = (
        f"DO UPDATE SET {q('status')} = %s, {q('run_after')} = 0, {q('attempts')} = 0, "
        f"{q('repeats')} = {table}.{q('repeats')} + 1 WHERE {table}.{q('status')} = %s"
    )
    return fields, sql + "DO NOTHING", sql + requeue


writer = InboxWriter()
