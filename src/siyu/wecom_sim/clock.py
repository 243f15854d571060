"""The emulator's clock: real time plus an offset the control API can advance."""

from __future__ import annotations

import calendar
import datetime as dt
import threading
import time
from zoneinfo import ZoneInfo

CST = ZoneInfo("Asia/Shanghai")
_lock = threading.Lock()
_offset = 0.0
_loaded = False


def _ensure_loaded() -> None:
    global _offset, _loaded
    if _loaded:
        return
    from siyu.wecom_sim.models import SimState

    row = SimState.objects.filter(key="clock").first()
    _offset = float(row.value.get("offset", 0)) if row else 0.0
    _loaded = True


def now_f() -> float:
    _ensure_loaded()
    return time.time() + _offset


def now() -> int:
    return int(now_f())


def offset() -> float:
    _ensure_loaded()
    return _offset


def advance(seconds: float) -> int:
    """Move the clock forward and persist the offset; returns the new time."""
    global _offset
    from siyu.wecom_sim.models import SimState

    if seconds < 0:
        raise ValueError("time only moves forward")
    with _lock:
        _ensure_loaded()
        _offset += seconds
        SimState.objects.update_or_create(key="clock", defaults={"value": {"offset": _offset}})
    return now()


def reload() -> None:
    global _loaded
    _loaded = False


# Calendar helpers: WeCom counts days and months in China Standard Time.
def day_start(ts: int) -> int:
    d = dt.datetime.fromtimestamp(ts, CST).replace(hour=0, minute=0, second=0, microsecond=0)
    return int(d.timestamp())


def month_start(ts: int) -> int:
    d = dt.datetime.fromtimestamp(ts, CST).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return int(d.timestamp())


def week_start(ts: int) -> int:
    d = dt.datetime.fromtimestamp(ts, CST)
    monday = (d - dt.timedelta(days=d.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    return int(monday.timestamp())


def days_in_month(ts: int) -> int:
    d = dt.datetime.fromtimestamp(ts, CST)
    return calendar.monthrange(d.year, d.month)[1]
