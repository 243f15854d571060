"""A real ``siyu worker`` killed (SIGKILL) while planning and again while executing a
100,000-recipient broadcast: no recipient is lost and none is duplicated — in our rows and in
what WeCom (the emulator) created."""

from __future__ import annotations

import os
import signal
import sqlite3
import time

import pytest

from bench.bulk import seed_emulator, seed_product
from siyu.broadcasts import services
from siyu.broadcasts.models import Batch, Broadcast, Recipient
from tests.conftest import point_product_at
from tests.core.test_worker import _worker, _worker_env
from tests.sim.helpers import wait_for as wait
from tests.simproc import SimProcess

N = 100_000
EMPLOYEES = 8


@pytest.fixture(scope="module")
def big_sim():
    with SimProcess(customers=20, seed=5) as proc:
        seed_emulator(proc.workdir / "sim.sqlite3", N, EMPLOYEES)
        yield proc


@pytest.mark.slow
def test_worker_killed_while_planning_and_sending_loses_and_duplicates_nothing(big_sim, transactional_db):
    sim = big_sim
    t0 = int(time.time()) - 5
    point_product_at(sim)
    seed_product(N, EMPLOYEES)
    from siyu.accounts.selectors import DataScope

    b = services.save_draft(
        kind=Broadcast.CUSTOMER,
        name="十万",
        text="大促",
        attachments=[],
        audience={"tags": []},
        scope=DataScope(everything=True),
    )
    services.submit(b)
    env = _worker_env(SIYU_WORKER_LEASE_S="2", SIYU_BROADCAST_PLAN_CHUNK="1500")

    # 1. kill during planning
    w = _worker(env)
    wait(lambda: Broadcast.objects.filter(id=b.id, phase="plan", plan_cursor__gt=0).exists(), timeout=60)
    os.kill(w.pid, signal.SIGKILL)
    w.wait()
    b.refresh_from_db()
    assert b.phase == "plan" and Recipient.objects.filter(broadcast=b).count() < N

    # 2. a new worker resumes; kill it once some batches went out
    w = _worker(env)
    wait(lambda: Batch.objects.filter(broadcast=b, status=Batch.SENT).count() >= 2, timeout=180)
    os.kill(w.pid, signal.SIGKILL)
    w.wait()
    sent_before = Batch.objects.filter(broadcast=b, status=Batch.SENT).count()
    assert sent_before < Batch.objects.filter(broadcast=b).count()

    # 3. a third worker finishes
    w = _worker(env)
    try:
        wait(lambda: Broadcast.objects.filter(id=b.id, status=Broadcast.SENT).exists(), timeout=300, interval=0.5)
    finally:
        os.kill(w.pid, signal.SIGTERM)
        w.wait(timeout=30)

    # our rows: every customer exactly once, all in a sent batch of ≤ 10,000
    rows = Recipient.objects.filter(broadcast=b)
    assert rows.count() == N
    assert rows.values("target").distinct().count() == N
    assert rows.filter(state=Recipient.DELIVERED).count() == N
    batches = list(Batch.objects.filter(broadcast=b))
    assert all(x.status == Batch.SENT and x.msgid and x.size <= 10_000 for x in batches)
    assert sum(x.size for x in batches) == N

    # WeCom's side: exactly the messages we recorded, each customer in exactly one of them
    con = sqlite3.connect(str(sim.workdir / "sim.sqlite3"), timeout=60)
    msgids = [
        m
        for (m,) in con.execute("SELECT msgid FROM wecom_sim_groupmsg WHERE create_type = 0 AND create_time >= ?", [t0])
    ]
    assert sorted(msgids) == sorted(x.msgid for x in batches)
    total, distinct = con.execute(
        "SELECT COUNT(*), COUNT(DISTINCT r.external_userid) FROM wecom_sim_groupmsgresult r"
        " JOIN wecom_sim_groupmsg m ON m.msgid = r.msg_id"
        " WHERE m.create_type = 0 AND m.create_time >= ? AND r.external_userid LIKE 'wmbk%'",
        [t0],
    ).fetchone()
    con.close()
    assert (total, distinct) == (N, N)
