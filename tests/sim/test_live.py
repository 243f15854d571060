"""The demo's live world: random but real events, each sending its callback."""

from __future__ import annotations

import time


def test_live_world_produces_events(sim):
    since = max([c["id"] for c in sim.control("callbacks", {"since": 0, "limit": 100000})["callbacks"]] or [0])
    sim.control("world/live", {"enabled": True, "interval_s": 0.05})
    try:
        deadline = time.time() + 20
        events = []
        while time.time() < deadline and len(events) < 5:
            time.sleep(0.5)
            events = sim.control("callbacks", {"since": since})["callbacks"]
    finally:
        sim.control("world/live", {"enabled": False})
    assert len(events) >= 5
    assert {e["event"] for e in events} <= {"change_external_contact", "change_external_chat"}


def test_live_world_validates_interval(sim):
    assert sim.control("world/live", {"interval_s": 0}, expect_ok=False)["ok"] is False
