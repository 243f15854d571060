"""Group commit for the callback inbox.

Each request thread hands its row to one writer thread per process and waits until the row is
committed, so the request still answers only after the event is durable; but a burst of
concurrent callbacks costs one transaction per batch instead of one per event, and the threads of
a process do not fight over SQLite's single write lock.
"""

from __future__ import annotations

import logging
import queue
import threading

from django.db import close_old_connections, connection, transaction
from django.db.models import F

from siyu.wecom.models import CallbackInbox

logger = logging.getLogger("siyu.wecom.store")

MAX_BATCH = 500


class _Pending:
    __slots__ = ("row", "done", "error")

    def __init__(self, row: CallbackInbox):
        self.row = row
        self.done = threading.Event()
        self.error: BaseException | None = None


class InboxWriter:
    def __init__(self) -> None:
        self._queue: "queue.Queue[_Pending]" = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pid = None

    def _ensure_thread(self) -> None:
        import os

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
        self._queue.put(item)
        if not item.done.wait(timeout):
            raise TimeoutError("inbox write did not commit in time")
        if item.error is not None:
            raise item.error

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
                p.done.set()


def _insert(rows: list[CallbackInbox]) -> None:
    """Insert, ignoring dedupe-key conflicts (WeCom's retries).

    A repeated key of a re-read event that was already processed is queued again: it may be a
    second, identical-looking event (two edits of one customer within a second carry the same
    fields), and processing a re-read twice changes nothing.
    """
    from siyu.wecom import inbox

    CallbackInbox.objects.bulk_create(rows, ignore_conflicts=True)
    again = [r.dedupe_key for r in rows if inbox.rereads(r.event, r.change_type)]
    if again:
        CallbackInbox.objects.filter(dedupe_key__in=again, status=CallbackInbox.DONE).update(
            status=CallbackInbox.PENDING, run_after=0, attempts=0, repeats=F("repeats") + 1
        )


writer = InboxWriter()
