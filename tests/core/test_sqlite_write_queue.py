"""The SQLite write queue (siyu.core.sqlite): writers wait their turn instead of failing or sleeping
in SQLite's busy handler, autocommit writes included, and no writer starves another."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from siyu.core.sqlite.base import _FairLock
from tests.effects.models import Effect

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLite backend's write queue")


def _in_thread(fn):
    def run():
        try:
            fn()
        finally:
            connection.close()  # this thread's own connection

    t = threading.Thread(target=run)
    t.start()
    return t


def test_an_autocommit_write_waits_for_another_connections_transaction(transactional_db):
    committed = threading.Event()
    started = threading.Event()
    commit_at = []

    def hold():
        with transaction.atomic():
            Effect.objects.create(key="holder", worker="a", at=time.time())
            started.set()
            time.sleep(0.4)
        commit_at.append(time.monotonic())
        committed.set()

    t = _in_thread(hold)
    assert started.wait(5)
    Effect.objects.create(key="waiter", worker="b", at=time.time())  # autocommit: its own transaction
    done = time.monotonic()
    t.join()
    assert committed.is_set()
    assert Effect.objects.get(key="waiter").at >= Effect.objects.get(key="holder").at
    # it got in right after the commit (polling at most 0.3 ms once first in line), not in SQLite's
    # busy handler, which sleeps up to 100 ms between tries
    assert done - commit_at[0] < 0.08


def test_a_writer_committing_back_to_back_does_not_starve_another(transactional_db):
    stop = threading.Event()
    loops = [0]

    def hog():
        while not stop.is_set():
            with transaction.atomic():
                Effect.objects.create(key=f"hog-{loops[0]}", worker="hog", at=time.time())
                time.sleep(0.002)
            loops[0] += 1

    t = _in_thread(hog)
    time.sleep(0.1)
    waits = []
    try:
        for i in range(20):
            t0 = time.monotonic()
            with transaction.atomic():
                Effect.objects.create(key=f"other-{i}", worker="other", at=time.time())
            waits.append(time.monotonic() - t0)
            time.sleep(0.005)
    finally:
        stop.set()
        t.join()
    assert loops[0] > 20, "the other writer never let go"
    assert max(waits) < 0.1, f"waited up to {max(waits) * 1000:.0f} ms behind a stream of short transactions"


def test_the_fair_lock_serves_in_arrival_order_and_skips_who_gave_up():
    lock = _FairLock()
    assert lock.acquire(1)
    order = []

    def waiter(name, timeout):
        if lock.acquire(timeout):
            order.append(name)
            lock.release()
        else:
            order.append(f"{name} gave up")

    first = threading.Thread(target=waiter, args=("first", 5))
    first.start()
    time.sleep(0.05)
    quitter = threading.Thread(target=waiter, args=("quitter", 0.1))
    quitter.start()
    time.sleep(0.05)
    last = threading.Thread(target=waiter, args=("last", 5))
    last.start()
    time.sleep(0.2)  # the quitter's timeout has passed
    lock.release()
    for t in (first, quitter, last):
        t.join(5)
    assert order == ["quitter gave up", "first", "last"]
