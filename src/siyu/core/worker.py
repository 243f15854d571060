"""``siyu worker``: one loop for the callback inbox, timers and Django background tasks.

Any number of workers may run (PostgreSQL: SKIP LOCKED claims). A worker killed mid-batch
loses nothing: its leased rows become ready again when the lease runs out, and a Django task it
left RUNNING is re-queued once its heartbeat is stale.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from django.db import close_old_connections, connection, transaction
from django.db.utils import OperationalError
from django.utils import timezone
from django_tasks_db.management.commands.db_worker import Worker as DBWorker
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction, is_locked_database_exception

from siyu.core import timers
from siyu.core.models import WorkerHeartbeat

logger = logging.getLogger("siyu.worker")

HEARTBEAT_S = 5.0
PURGE_EVERY_S = 600.0  # how often a worker purges old finished timers
STALE_S = 60.0
URGENT_POLL_S = 0.02  # how often the urgent lane looks for high-priority inbox rows
URGENT_BATCH = 100
# Threads serving the urgent lane: while one records a batch's outcomes or claims the next, the
# other's calls are in flight (a batch's WeCom calls are most of its time, but not all of it).
URGENT_THREADS = 2
# While the urgent lane has work (adds with a welcome code), the main loop shares the machine
# with it by whether the lane keeps up (each urgent batch's lag: from its oldest row's arrival to
# its claim):
# - keeping up: ordinary batches of at most KEEPUP_BATCH rows, so a steady stream of adds (a
#   live-stream campaign: tens per second for an hour) has its re-reads, tags and remarks done as
#   it goes instead of piling up;
# - falling behind (a batch later than URGENT_BEHIND_S: a burst above what the machine does at
#   once), until the batches have stayed under URGENT_CALM_S late for URGENT_CALM_FOR_S or the
#   lane is idle: a trickle of YIELD_BATCH rows per YIELD_S, so the lane keeps the CPU and WeCom
#   (welcome codes expire after 20 s; the rest can wait). It never stops, however long the burst.
#   An ordinary add costs several times a welcome (a re-read, the customer's upsert and timeline,
#   its tags and remark: three WeCom calls and a dozen writes): on a 2-core machine with 300
#   adds/s (bench/welcome.py), a trickle of 20 rows/s put the welcomes' p99 at 7-10 s; one of
#   2.5 rows/s, at 1.1-1.3 s. Without the hysteresis (a plain lag threshold), the lane and the
#   main loop took turns, and one run at 200 adds/s had a p99 of 1.6 s instead of about 0.5 s.
KEEPUP_BATCH = 10
URGENT_BEHIND_S = 0.25
URGENT_CALM_S = 0.1
URGENT_CALM_FOR_S = 2.0
YIELD_S = 2.0
YIELD_BATCH = 5

# Functions run once each time a worker starts (apps register them from ``AppConfig.ready()``
# with ``on_start``), e.g. making sure a recurring timer is scheduled. They must be idempotent.
Hook = TypeVar("Hook", bound=Callable[[], object])
STARTUP_HOOKS: list[Callable[[], object]] = []


def on_start(fn: Hook) -> Hook:
    if fn not in STARTUP_HOOKS:
        STARTUP_HOOKS.append(fn)
    return fn


@dataclass(frozen=True)
class Inbox:
    """The callback inbox's drains, registered by ``siyu.wecom`` (the kernel does not import it):
    ``pending(limit=, worker_id=, lane=) -> int`` and ``urgent(limit=, worker_id=) -> (n, lag)``."""

    pending: Callable[..., int]
    urgent: Callable[..., tuple[int, float]]


INBOX: Inbox | None = None


def serve_inbox(pending: Callable[..., int], urgent: Callable[..., tuple[int, float]]) -> None:
    global INBOX
    INBOX = Inbox(pending, urgent)


class Worker:
    def __init__(
        self,
        worker_id: str | None = None,
        interval: float = 0.1,
        batch: int = 100,
        tasks: bool = True,
        urgent: bool = True,
        nice: int = 0,
    ):
        self.worker_id = worker_id or f"{socket.gethostname()[:32]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.interval = interval
        self.batch = batch
        self.tasks = tasks
        # A second thread that serves only high-priority inbox rows (adds with a WelcomeCode...),
        # so that they never wait behind a batch of ordinary events.
        self.urgent = urgent
        self._urgent_threads: list[threading.Thread] = []
        self._urgent_busy_until = 0.0  # monotonic time until which the main loop gives way
        self._urgent_active = 0  # urgent batches under way that followed a non-empty one
        self._urgent_behind = False  # the urgent lane is falling behind (see URGENT_BEHIND_S)
        self._urgent_calm_since: float | None = None
        self._urgent_lock = threading.Lock()
        self._last_yielded_batch = 0.0
        self.nice = nice
        self.running = True
        self._last_beat = 0.0
        self._last_purge = 0.0
        self._processed = 0
        self._tasks_worker: DBWorker | None = None

    # --- lifecycle --------------------------------------------------------------------------
    def stop(self, *_args: object) -> None:
        self.running = False

    def install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def heartbeat(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_beat < HEARTBEAT_S:
            return
        self._last_beat = now
        ts = timezone.now()
        WorkerHeartbeat.objects.update_or_create(
            worker_id=self.worker_id,
            defaults={
                "hostname": socket.gethostname()[:128],
                "pid": os.getpid(),
                "last_seen": ts,
                "processed": self._processed,
            },
            create_defaults={
                "hostname": socket.gethostname()[:128],
                "pid": os.getpid(),
                "last_seen": ts,
                "started_at": ts,
                "processed": self._processed,
            },
        )
        self.requeue_orphaned_tasks()
        if force or now - self._last_purge >= PURGE_EVERY_S:
            self._last_purge = now
            timers.purge_done()

    # --- Django tasks (django-tasks, database backend) ---------------------------------------
    def _django_task_worker(self) -> DBWorker:
        if self._tasks_worker is None:
            self._tasks_worker = DBWorker(
                queue_names=["*"],
                interval=0,
                batch=True,
                backend_name="default",
                startup_delay=False,
                max_tasks=None,
                worker_id=self.worker_id,
                excluded_queue_names=[],
            )
        return self._tasks_worker

    def run_one_task(self) -> int:
        tasks = DBTaskResult.objects.ready().filter(backend_name="default")
        try:
            with exclusive_transaction(tasks.db):
                result = tasks.get_locked()
                if result is not None:
                    result.claim(self.worker_id)
        except OperationalError as e:
            if is_locked_database_exception(e):
                return 0
            raise
        if result is None:
            return 0
        self._django_task_worker().run_task(result)
        return 1

    def requeue_orphaned_tasks(self) -> int:
        """Tasks left RUNNING by a worker whose heartbeat stopped go back to READY."""
        stale = timezone.now() - timedelta(seconds=STALE_S)
        alive = set(WorkerHeartbeat.objects.filter(last_seen__gte=stale).values_list("worker_id", flat=True))
        n = 0
        with transaction.atomic():
            for r in DBTaskResult.objects.running().filter(started_at__lt=stale):
                if not alive.intersection(r.worker_ids or []):
                    DBTaskResult.objects.filter(id=r.id).update(status="READY", started_at=None)
                    n += 1
        if n:
            logger.warning("re-queued %d task(s) left running by dead workers", n)
        return n

    # --- the loop ------------------------------------------------------------------------------
    def _inbox_batch(self) -> int | None:
        """How many ordinary inbox rows to take now (None: give way to the urgent lane)."""
        if not self._urgent_active and time.monotonic() >= self._urgent_busy_until:
            self._urgent_behind, self._urgent_calm_since = False, None
            return self.batch
        if not self._urgent_behind:
            return min(self.batch, KEEPUP_BATCH)
        if time.monotonic() - self._last_yielded_batch < YIELD_S:
            return None
        self._last_yielded_batch = time.monotonic()
        return min(self.batch, YIELD_BATCH)

    def _note_urgent_lag(self, lag: float) -> None:
        """After a non-empty urgent batch: is the lane falling behind, or calm again?"""
        if lag > URGENT_BEHIND_S:
            self._urgent_behind, self._urgent_calm_since = True, None
        elif lag >= URGENT_CALM_S:
            self._urgent_calm_since = None
        elif self._urgent_calm_since is None:
            self._urgent_calm_since = time.monotonic()
        elif time.monotonic() - self._urgent_calm_since >= URGENT_CALM_FOR_S:
            self._urgent_behind = False

    def run_once(self) -> int:
        inbox = INBOX
        lane = "normal" if any(t.is_alive() for t in self._urgent_threads) else "all"
        limit = self._inbox_batch() if lane == "normal" else self.batch
        n = inbox.pending(limit=limit, worker_id=self.worker_id, lane=lane) if limit and inbox else 0
        n += timers.run_due(self.worker_id, limit=self.batch)
        if self.tasks:
            n += self.run_one_task()
        self._processed += n
        return n

    def _urgent_loop(self) -> None:
        n = 0
        try:
            while self.running:
                busy = bool(n)  # more is likely: the main loop gives way during this batch too
                if busy:
                    with self._urgent_lock:
                        self._urgent_active += 1
                try:
                    n, lag = INBOX.urgent(limit=URGENT_BATCH, worker_id=self.worker_id) if INBOX else (0, 0.0)
                    if n:
                        self._note_urgent_lag(lag)
                        self._urgent_busy_until = time.monotonic() + 0.2
                except Exception:
                    logger.exception("urgent lane error")
                    close_old_connections()
                    n = 0
                    time.sleep(1)
                finally:
                    if busy:
                        with self._urgent_lock:
                            self._urgent_active -= 1
                self._processed += n
                if not n:
                    time.sleep(URGENT_POLL_S)
        finally:
            connection.close()

    def lower_priority(self) -> None:
        """Lower the CPU priority of the main loop's thread (and of the threads it starts) by
        ``nice``, keeping the urgent lane's. Acknowledging WeCom's callbacks within 5 s (else it
        retries, and eventually stops sending) matters more than how fast the backlog drains: on a
        shared machine the backlog yields the CPU to the web processes that answer callbacks, and
        its rows wait safely. A welcome does not wait: its code expires 20 s after the add, so the
        urgent lane keeps the priority the web processes have. (Linux: nice is per thread, and a
        thread inherits its creator's.)"""
        if self.nice <= 0:
            return
        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + self.nice))
        except (OSError, AttributeError):
            logger.warning("could not lower the worker's CPU priority")

    def start_urgent_lane(self) -> None:
        if not self.urgent:
            return
        self._urgent_threads = [t for t in self._urgent_threads if t.is_alive()]
        for i in range(len(self._urgent_threads), URGENT_THREADS):
            t = threading.Thread(target=self._urgent_loop, name=f"worker-urgent-{i}", daemon=True)
            t.start()
            self._urgent_threads.append(t)

    def run_startup_hooks(self) -> None:
        for fn in STARTUP_HOOKS:
            try:
                fn()
            except Exception:
                logger.exception("worker start-up hook %s failed", getattr(fn, "__qualname__", fn))

    def run(self, max_idle_s: float | None = None) -> None:
        logger.info("worker %s started", self.worker_id)
        self.heartbeat(force=True)
        self.run_startup_hooks()
        self.start_urgent_lane()
        self.lower_priority()
        idle_since = time.monotonic()
        while self.running:
            close_old_connections()
            started = time.monotonic()
            before = self._processed
            try:
                n = self.run_once()
            except Exception:
                logger.exception("worker loop error")
                n = 0
                time.sleep(1)
            self.heartbeat()
            if n:
                idle_since = time.monotonic()
                continue
            if self._processed != before or self._urgent_active:
                # the urgent lane worked meanwhile (or still is): not idle, though this loop was
                idle_since = time.monotonic()
            else:
                # time spent on quiet (polling) work is not idleness: only the sleeps count
                idle_since += time.monotonic() - started
            if max_idle_s is not None and time.monotonic() - idle_since > max_idle_s:
                break
            time.sleep(self.interval)
        self.running = False
        for t in self._urgent_threads:
            t.join()
        if max_idle_s is not None:
            # "run till idle": what the urgent lane had not claimed when it stopped is done here
            # (with no urgent thread alive, run_once takes every lane)
            while self.run_once():
                pass
        WorkerHeartbeat.objects.filter(worker_id=self.worker_id).delete()
        logger.info("worker %s stopped", self.worker_id)
