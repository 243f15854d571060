"""Issue 14, defect 8 at the level it was found: a real ``siyu worker`` killed (SIGKILL) while its
urgent lane's send_welcome_msg calls are in flight. WeCom (the emulator) accepts them, but the
worker dies before recording the answers: the rows stay ``pending``. A second worker never sends
them again (at most once); the reconciliation marks them ``unknown``, so nothing stays pending."""

from __future__ import annotations

import os
import signal
import time

import pytest

from siyu.channels import services
from siyu.channels.models import WelcomeSend
from siyu.sync.services import run_full_sync
from tests.core.test_worker import _worker, _worker_env
from tests.sim.helpers import employee, wait_for

N = 12
LATENCY_MS = 4000


def _sends(sim) -> int:
    return len(sim.control("api_log", {"path": "externalcontact/send_welcome_msg", "limit": 100000})["calls"])


@pytest.mark.slow  # about 30 s; test_welcome_reconcile covers the rule in the default run
def test_worker_killed_during_welcome_sends_leaves_no_row_pending(live_callbacks, sim_rules):
    sim = live_callbacks
    run_full_sync(workers=2)
    u = employee(sim)
    code = services.create_code({"name": "杀进程", "users": [u], "welcome": {"text": "hi", "attachments": []}})
    before = _sends(sim)

    sim_rules(api_latency_ms=LATENCY_MS)  # every WeCom call takes 4 s: the kill lands mid-call
    scans = sim.control("scan_many", {"config_id": code.config_id, "n": N})["scans"]
    codes = {s["welcome_code"] for s in scans}
    env = _worker_env(SIYU_WORKER_LEASE_S="2")
    first = _worker(env)
    try:
        # every row committed as pending before its call: the calls are under way
        wait_for(lambda: WelcomeSend.objects.filter(welcome_code__in=codes).count() == N, timeout=60)
        time.sleep(0.5)
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    # Under load the first rows' calls may already have been answered and recorded; the rest
    # (at least the last row's, whose call began under 4 s before the kill) are still pending.
    rows = WelcomeSend.objects.filter(welcome_code__in=codes)
    pending = rows.filter(status=WelcomeSend.PENDING).count()
    assert pending >= 1
    assert rows.filter(status=WelcomeSend.SENT).count() + pending == N

    # WeCom accepted the sends the dead worker made
    wait_for(
        lambda: len(sim.control("welcome_log", {"config_id": code.config_id, "used": 1})["welcome_codes"]) == N,
        timeout=30,
    )
    sim.reset_rules()
    second = _worker(env)  # takes over the leased inbox rows: finds the welcome rows, sends nothing
    second.wait(timeout=120)
    assert _sends(sim) - before == N
    assert rows.filter(status=WelcomeSend.PENDING).count() == pending

    # the reconciliation, once the 20 s window is long past
    assert services.reconcile_welcomes(now=time.time() + services.WELCOME_RECONCILE_AFTER_S + 1) == pending
    assert not rows.filter(status=WelcomeSend.PENDING).exists()
    assert rows.filter(status=WelcomeSend.UNKNOWN).count() == pending
    assert rows.filter(status=WelcomeSend.SENT).count() + pending == N
