"""A synthetic event family for tests: ``<Event>siyu_test_effect</Event>`` with ``Key`` and ``SleepMs``."""

import os
import time

from siyu.wecom.inbox import handles


@handles("siyu_test_effect")
def record(event: dict):
    sleep_ms = int(event.get("SleepMs") or 0)
    if sleep_ms:
        time.sleep(sleep_ms / 1000)  # the read phase: as if calling WeCom

    def apply():
        from tests.effects.models import Effect

        Effect.objects.create(key=event["Key"], worker=str(os.getpid()), at=time.time())

    return apply
