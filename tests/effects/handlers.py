"""A synthetic event family for tests: ``<Event>siyu_test_effect</Event>`` with ``Key`` and ``SleepMs``."""

import os
import time

from siyu.wecom.inbox import handles


@handles("siyu_test_effect")
def record(event: dict):
    sleep_ms = int(event.get("SleepMs") or 0)
    if sleep_ms:
        time.sleep(sleep_ms / 1000)  # the read phase: as if calling WeCom
    if event.get("Fail") == "read":
        raise RuntimeError("read phase failed (test)")

    def apply():
        from tests.effects.models import Effect

        if event.get("Fail") == "apply":
            Effect.objects.create(key=event["Key"] + "-partial", worker=str(os.getpid()), at=time.time())
            raise RuntimeError("write phase failed (test)")
        Effect.objects.create(key=event["Key"], worker=str(os.getpid()), at=time.time())

    return apply


def _record_many(items: list) -> None:
    from tests.effects.models import Effect

    for _key, fail in items:
        if fail:
            raise RuntimeError("merged write failed (test)")
    Effect.objects.bulk_create([Effect(key=key, worker=f"batch-of-{len(items)}", at=time.time()) for key, _ in items])


@handles("siyu_test_batched")
def record_batched(event: dict):
    """Like ``siyu_test_effect``, with a write phase the inbox may merge (``inbox.Batched``)."""
    from siyu.wecom.inbox import Batched

    return Batched(_record_many, (event["Key"], event.get("Fail") == "apply"))
