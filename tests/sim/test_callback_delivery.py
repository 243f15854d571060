"""How the emulator delivers callbacks: URL verification, the 5 s answer, retries (接收消息与事件 概述)."""

from __future__ import annotations

import time

import pytest

from tests.receiver import CallbackReceiver, receiving


def emit(sim, key: str) -> int:
    return sim.control("callbacks/emit", {"event": "siyu_test_effect", "fields": {"Key": key}})["ids"][0]


def status_of(sim, cb_id: int) -> dict:
    return next(c for c in sim.control("callbacks", {"since": cb_id - 1})["callbacks"] if c["id"] == cb_id)


def wait_status(sim, cb_id: int, status: int, timeout: float = 20) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        row = status_of(sim, cb_id)
        if row["status"] == status:
            return row
        time.sleep(0.1)
    raise AssertionError(f"callback {cb_id} never reached status {status}: {status_of(sim, cb_id)}")


@pytest.fixture
def fast_retries(sim_rules):
    sim_rules(callback_retry_delay_s=0.1, callback_timeout_s=1.0)


def test_url_is_verified_before_it_is_accepted(sim):
    with receiving(sim, verify=True) as rx:
        assert rx.verified == 1


def test_url_with_wrong_answer_is_refused(sim):
    rx = CallbackReceiver(sim.corp_id, token="someOtherToken")  # cannot check the signature → 403
    try:
        r = sim.control(
            "config",
            {
                "callback_url": rx.url,
                "callback_token": "simTestCallbackToken",
                "callback_aes_key": rx.aes_key,
                "verify": True,
            },
            expect_ok=False,
        )
        assert r["ok"] is False and "回调地址请求不通过" in r["error"]
    finally:
        rx.close(sim)


def test_failed_delivery_is_retried_until_answered(sim, fast_retries):
    with receiving(sim, fail_first=2) as rx:
        cb = emit(sim, "retry-until-ok")
        row = wait_status(sim, cb, 1)
        assert row["attempts"] == 3
        assert len(rx.wait_for(lambda e: e.get("Key") == "retry-until-ok")) == 1


def test_three_retries_then_given_up(sim, fast_retries):
    with receiving(sim, fail_first=100) as rx:
        cb = emit(sim, "never-ok")
        row = wait_status(sim, cb, 2)
        assert row["attempts"] == 4  # the first delivery and "总共重试三次"
        assert rx.attempts == 4
        assert row["last_error"] == "HTTP 500"


def test_an_answer_slower_than_the_timeout_counts_as_undelivered(sim, fast_retries):
    with receiving(sim, delay_s=1.5) as rx:
        cb = emit(sim, "too-slow")
        deadline = time.time() + 10
        while status_of(sim, cb)["attempts"] < 2 and time.time() < deadline:
            time.sleep(0.1)
        row = status_of(sim, cb)
        assert row["attempts"] >= 2 and row["last_error"] == "ReadTimeout"  # timed out, sent again
        rx.delay_s = 0
        wait_status(sim, cb, 1)
