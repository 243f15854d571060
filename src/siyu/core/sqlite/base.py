"""Django's SQLite backend, with write transactions queued on an OS file lock.

SQLite admits one writer at a time. A writer that finds the write lock taken waits in SQLite's busy
handler, which sleeps 1, 2, 5, 10, 15, 20, 25 ... up to 100 ms between tries, however soon the lock
is free again. With several processes (web workers, worker threads, the emulator's workers)
committing small transactions back to back, those sleeps, not the writes, bounded throughput:
two web processes accepting callbacks stored fewer per second than one.

Here every ``atomic`` block on a file database first takes an exclusive ``flock`` on
``<database>.write-lock`` (one open file per connection, so threads of one process queue too),
then BEGIN IMMEDIATE; the lock is released at COMMIT / ROLLBACK / close. A waiting writer polls the
lock (see _acquire: through a gate, so that no process starves the others), so it gets in within a
fraction of a millisecond of its release. A write
statement outside ``atomic`` (autocommit: INSERT / UPDATE / DELETE / REPLACE, its own transaction)
takes the lock for itself the same way; otherwise it would meet SQLite's own busy handler, and a
one-row update behind a stream of short transactions (the emulator's API log, a welcome marked
sent) would sleep in 100 ms steps. Waiting is bounded by the connection's ``timeout`` like
SQLite's, then "database is locked" as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Self

from django.db import OperationalError
from django.db.backends.sqlite3 import base

_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLAC")


class _Cursor(base.SQLiteCursorWrapper):
    """Takes the write queue's lock around a write statement run in autocommit mode."""

    _siyu_db: DatabaseWrapper

    def _needs_lock(self, query: str) -> bool:
        return (
            not self.connection.in_transaction and not self._siyu_db._locked and query.lstrip()[:6].upper() in _WRITES
        )

    def _locked(self, run: Callable[..., Self], query: str, *args: Any) -> Self:
        if not self._needs_lock(query):
            return run(query, *args)
        db = self._siyu_db
        db._acquire()
        try:
            return run(query, *args)
        finally:
            if not self.connection.in_transaction:
                db._release()

    def execute(self, query: str, params: Any = None) -> Self:
        return self._locked(super().execute, query, params)

    def executemany(self, query: str, param_list: Any) -> Self:
        return self._locked(super().executemany, query, param_list)


class _FairLock:
    """A first-come first-served lock for the threads of one process, with a timeout (a plain
    ``threading.Lock`` lets a thread that releases it take it straight back, starving the others)."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._next = 0  # the next ticket to hand out
        self._serving = 0  # the ticket that holds the lock (or may take it)
        self._abandoned: set[int] = set()  # tickets whose holders gave up waiting

    def acquire(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cv:
            ticket = self._next
            self._next += 1
            while self._serving != ticket:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._abandoned.add(ticket)
                    return False
                self._cv.wait(left)
            return True

    def release(self) -> None:
        with self._cv:
            self._serving += 1
            while self._serving in self._abandoned:
                self._abandoned.discard(self._serving)
                self._serving += 1
            self._cv.notify_all()


# Threads of one process queue on a lock of the process first (in arrival order, each woken when
# its turn comes), so that one thread per process at most polls the file locks.
_process_locks: dict[tuple[int, str], _FairLock] = {}
_process_locks_guard = threading.Lock()


def _process_lock(path: str) -> _FairLock:
    key = (os.getpid(), path)
    with _process_locks_guard:
        lock = _process_locks.get(key)
        if lock is None:
            lock = _process_locks[key] = _FairLock()
        return lock


class DatabaseWrapper(base.DatabaseWrapper):
    _local_lock: _FairLock | None = None
    _lock_fd: int | None = None
    _gate_fd: int | None = None
    _lock_pid = 0  # a forked child must not share its parent's open lock files
    _locked = False

    def _write_lock_path(self) -> str | None:
        name = str(self.settings_dict["NAME"])
        if self.is_in_memory_db() or not name:
            return None
        return name + ".write-lock"

    def _acquire(self) -> None:
        """Take the write lock through a gate (a second lock file): a writer holds the gate while
        it waits for the lock, and lets it go once it has the lock. A holder that commits and at
        once wants the lock again must pass the gate first, so it queues behind the writer
        already waiting instead of taking the lock back before that one's next poll (without the
        gate, a process writing back to back starved the others: the emulator's API waited
        seconds behind a stream of scans). Threads of one process queue on ``_process_lock``
        before that."""
        if self._locked:
            return
        if self._lock_fd is None or self._lock_pid != os.getpid():
            path = self._write_lock_path()
            if path is None:
                return
            self._lock_fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._gate_fd = os.open(path + ".gate", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._lock_pid = os.getpid()
            self._local_lock = _process_lock(path)
        local_lock, lock_fd, gate_fd = self._local_lock, self._lock_fd, self._gate_fd
        assert local_lock is not None and lock_fd is not None and gate_fd is not None  # opened together above
        deadline = time.monotonic() + float(self.settings_dict.get("OPTIONS", {}).get("timeout", 5))
        if not local_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise OperationalError("database is locked (write queue)")
        try:
            self._take(gate_fd, deadline, 0.002)
            try:
                # alone at the lock now: poll it finely, it is idle until we notice its release
                self._take(lock_fd, deadline, 0.0003)
            finally:
                fcntl.flock(gate_fd, fcntl.LOCK_UN)
        except BaseException:
            local_lock.release()
            raise
        self._locked = True

    @staticmethod
    def _take(fd: int, deadline: float, cap: float) -> None:
        """Lock ``fd``, polling every 0.1 ms growing to ``cap`` (so a wedged holder ends in an
        error, not a hang)."""
        delay = 0.0001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise OperationalError("database is locked (write queue)") from None
                time.sleep(delay)
                delay = min(delay * 1.5, cap)

    def _release(self) -> None:
        if self._locked:
            self._locked = False
            assert self._lock_fd is not None and self._local_lock is not None  # set while locked
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            self._local_lock.release()

    def create_cursor(self, name: Any = None) -> _Cursor:
        cursor: _Cursor = self.connection.cursor(factory=_Cursor)
        cursor._siyu_db = self
        return cursor

    def _start_transaction_under_autocommit(self) -> None:
        self._acquire()
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]  # django-stubs omit BaseDatabaseWrapper's private hooks
        except BaseException:
            self._release()
            raise

    def _commit(self) -> None:
        try:
            super()._commit()  # type: ignore[misc]  # django-stubs omit BaseDatabaseWrapper's private hooks
        finally:
            if self.connection is None or not self.connection.in_transaction:
                self._release()

    def _rollback(self) -> None:
        try:
            super()._rollback()  # type: ignore[misc]  # django-stubs omit BaseDatabaseWrapper's private hooks
        finally:
            self._release()

    def _close(self) -> None:
        try:
            super()._close()  # type: ignore[misc]  # django-stubs omit BaseDatabaseWrapper's private hooks
        finally:
            self._release()
            for fd in (self._lock_fd, self._gate_fd):
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._lock_fd = self._gate_fd = None
