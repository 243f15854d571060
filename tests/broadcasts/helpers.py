"""Shared pieces of the broadcast tests: a synced product against the module's emulator."""

from __future__ import annotations

import struct
import time
import zlib

from siyu.accounts.selectors import DataScope
from siyu.broadcasts import planning, services
from siyu.broadcasts.models import Batch, Broadcast, Recipient
from siyu.customers.models import FollowRelation, FollowTag, Tag
from siyu.sync.services import run_full_sync

EVERYTHING = DataScope(everything=True)


def png_bytes(w: int = 4, h: int = 4) -> bytes:
    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * w for _ in range(h))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def sync_product() -> None:
    run = run_full_sync(restart=True)
    assert run.status == "done", run.error


def busiest_tag(min_customers: int = 5, skip: tuple = ()) -> Tag:
    """A tag carried by several active customers."""
    from django.db.models import Count

    rows = (
        FollowTag.objects.filter(relation__status=FollowRelation.ACTIVE)
        .exclude(tag_id__in=[t.id for t in skip])
        .values("tag_id")
        .annotate(n=Count("customer_id", distinct=True))
        .order_by("-n")
    )
    for row in rows:
        if row["n"] >= min_customers:
            return Tag.objects.get(id=row["tag_id"])
    raise AssertionError("no tag with enough customers")


def customer_broadcast(name: str, tags: list[int], text: str = "你好 {员工姓名}", attachments=None, **aud) -> Broadcast:
    return services.save_draft(
        kind=Broadcast.CUSTOMER,
        name=name,
        text=text,
        attachments=attachments or [],
        audience={"tags": tags, "tag_mode": "any", **aud},
        scope=EVERYTHING,
    )


def run_now(b: Broadcast) -> Broadcast:
    """Submit and execute in-process (what the worker's task does)."""
    services.submit(b)
    b.refresh_from_db()
    return services.Executor(b).run()


def estimate(b: Broadcast) -> dict:
    return planning.estimate(b)


def planned_targets(b: Broadcast, state: str | None = None) -> set[str]:
    qs = Recipient.objects.filter(broadcast=b)
    if state:
        qs = qs.filter(state=state)
    return set(qs.values_list("target", flat=True))


def wait_confirmed(b: Broadcast, timeout: float = 30) -> None:
    """Read the results until every batch's are in (the emulator's employees confirm after a delay)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        services.sync(b)
        if not Batch.objects.filter(broadcast=b, results_synced=False).exists():
            return
        time.sleep(0.5)
    raise AssertionError("employees did not confirm in time")


def after_first_plan_step(monkeypatch, change) -> dict[str, int]:
    """Run ``change()`` once planning has started (after its first step): members who join or
    leave a segment while its send is being planned. Answers the step count (``{"n": ...}``)."""
    steps = {"n": 0}
    real_step = planning.plan_step

    def step_then_change(*args, **kwargs):
        done = real_step(*args, **kwargs)
        steps["n"] += 1
        if steps["n"] == 1:
            change()
        return done

    monkeypatch.setattr(planning, "plan_step", step_then_change)
    return steps
