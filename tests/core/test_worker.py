"""Exactly-once processing: WeCom's retries, and a worker killed in the middle of a batch."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection

from siyu.core.worker import Worker
from siyu.wecom.models import CallbackInbox
from siyu.wecom_sim.wire import build_xml, envelope
from tests.conftest import CALLBACK_AES_KEY, CALLBACK_TOKEN, point_product_at
from tests.effects.models import Effect
from tests.sim.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_same_callback_delivered_three_times_is_processed_once(live_callbacks):
    sim = live_callbacks
    ids = sim.control("callbacks/emit", {"event": "siyu_test_effect", "fields": {"Key": "retry-1", "SleepMs": 0}})[
        "ids"
    ]

    def delivered():
        cbs = [c for c in sim.control("callbacks", {"since": ids[0] - 1})["callbacks"] if c["id"] == ids[0]]
        return cbs and cbs[0]["status"] == 1

    wait_for(delivered)
    for _ in range(2):  # WeCom sends the same event again (no answer seen, or a replay)
        sim.control("callbacks/redeliver", {"ids": ids})
        wait_for(delivered)
    assert CallbackInbox.objects.filter(event="siyu_test_effect").count() == 1
    Worker(interval=0.05).run(max_idle_s=0.5)
    assert Effect.objects.filter(key="retry-1").count() == 1
    row = CallbackInbox.objects.get(event="siyu_test_effect")
    assert row.status == CallbackInbox.DONE and row.attempts == 1


def _post_events(client, n: int, sleep_ms: int, prefix: str, create_time: int | None = None) -> None:
    key = base64.b64decode(CALLBACK_AES_KEY + "=")
    for i in range(n):
        xml = build_xml(
            {
                "ToUserName": "ww5iyu0000demo0001",
                "FromUserName": "sys",
                "CreateTime": create_time or int(time.time()),
                "MsgType": "event",
                "Event": "siyu_test_effect",
                "Key": f"{prefix}-{i}",
                "SleepMs": sleep_ms,
            }
        )
        params, body = envelope(xml, CALLBACK_TOKEN, key, "ww5iyu0000demo0001")
        query = "&".join(f"{k}={v}" for k, v in params.items())
        assert client.post(f"/wecom/callback/?{query}", body, content_type="text/xml").status_code == 200


def _worker_env(**extra: str) -> dict:
    """The environment of a worker process that shares this test's database (SQLite or PostgreSQL)."""
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="tests.settings",
        PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "src")]),
        **extra,
    )
    name = connection.settings_dict["NAME"]
    if connection.vendor == "postgresql":
        env["DATABASE_URL"] = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" + name
    else:
        env["DATABASE_URL"] = f"sqlite:///{name}"
    return env


def _worker(env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "siyu.cli", "worker", "--exit-when-idle", "3", "--interval", "0.05"],
        env=env,
        cwd=str(ROOT),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_worker_killed_mid_batch_loses_nothing_and_duplicates_nothing(client, sim, transactional_db):
    point_product_at(sim)
    n = 300
    _post_events(client, n, sleep_ms=10, prefix="kill")
    assert CallbackInbox.objects.filter(status="pending").count() == n

    env = _worker_env(SIYU_WORKER_LEASE_S="2")
    first = _worker(env)
    wait_for(lambda: Effect.objects.filter(key__startswith="kill-").count() >= n // 3, timeout=60)
    os.kill(first.pid, signal.SIGKILL)  # no clean-up: leased rows stay leased
    first.wait()
    done_before = Effect.objects.filter(key__startswith="kill-").count()
    assert done_before < n

    second = _worker(env)
    second.wait(timeout=120)
    keys = list(Effect.objects.filter(key__startswith="kill-").values_list("key", flat=True))
    assert len(keys) == n, f"{len(keys)} effects for {n} events"
    assert len(set(keys)) == n, "an event was processed twice"
    assert CallbackInbox.objects.filter(status=CallbackInbox.DONE).count() == n
    assert len(set(Effect.objects.values_list("worker", flat=True))) == 2  # both workers did part of it


def test_two_workers_share_the_queue_without_duplicates(client, sim, transactional_db):
    """Claims are exclusive: SKIP LOCKED on PostgreSQL, IMMEDIATE transactions on SQLite."""
    point_product_at(sim)
    n = 200
    # reads run 8 at a time: slow enough that one worker cannot drain all before the other starts
    _post_events(client, n, sleep_ms=100, prefix="pair")
    env = _worker_env()
    workers = [_worker(env), _worker(env)]
    for w in workers:
        w.wait(timeout=120)
    keys = list(Effect.objects.filter(key__startswith="pair-").values_list("key", flat=True))
    assert len(keys) == n and len(set(keys)) == n
    assert len(set(Effect.objects.filter(key__startswith="pair-").values_list("worker", flat=True))) == 2
