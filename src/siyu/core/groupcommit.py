"""Group commit: many request threads (or an event loop) hand rows to one writer thread per
process and wait until their row is committed.

The request still answers only after its row is durable, but a burst costs one transaction per
batch instead of one per row, and a process's threads do not fight over SQLite's single write
lock. Used by the callback inbox (``siyu.wecom.store``) and the trackable links' clicks.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from django.db import close_old_connections, connection, transaction

logger = logging.getLogger("siyu.core.groupcommit")

T = TypeVar("T")
MAX_BATCH = 500


class _Pending(Generic[T]):
    __slots__ = ("done", "error", "notify", "row")

    def __init__(self, row: T, notify: Callable[[BaseException | None], object] | None = None):
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


class GroupWriter(Generic[T]):
    """``insert(rows)`` runs in the writer thread, inside one transaction per batch."""

    def __init__(self, insert: Callable[[list[T]], None], name: str, max_batch: int = MAX_BATCH) -> None:
        self._insert = insert
        self._name = name
        self._max_batch = max_batch
        self._queue: queue.Queue[_Pending[T]] = queue.Queue()
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
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def store(self, row: T, timeout: float = 4.0) -> None:
        """Persist ``row``; returns once it is committed.

        A caller already inside a transaction (a test, or a view wrapped in one) writes in it:
        another connection would wait for that transaction's write lock.
        """
        if connection.in_atomic_block:
            self._insert([row])
            return
        self._ensure_thread()
        item = _Pending(row)
        done = item.done
        assert done is not None  # a thread waits (no notify)
        self._queue.put(item)
        if not done.wait(timeout):
            raise TimeoutError(f"{self._name}: the write did not commit in time")
        if item.error is not None:
            raise item.error

    async def store_async(self, row: T, timeout: float = 4.0) -> None:
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
            raise TimeoutError(f"{self._name}: the write did not commit in time") from None

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self._max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                with transaction.atomic():
                    self._insert([p.row for p in batch])
            except BaseException as exc:  # report to every waiting request (its caller retries)
                logger.exception("%s: a batch of %d failed", self._name, len(batch))
                for p in batch:
                    p.error = exc
                close_old_connections()
            for p in batch:
                p.finish()
