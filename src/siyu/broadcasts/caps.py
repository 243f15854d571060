"""WeCom's receive caps, mirrored from the emulator's rules (siyu.wecom_sim.rules) so an estimate
names the same rule WeCom applies. Counted from our ``Receipt`` ledger (what was received).

add_msg_template doc 92135 (updated 2025-11): a customer / a group receives at most as many mass
messages per natural month as the month has days; the admin may switch to 7 per natural week or
1 per day; before that, 4 per natural month. Periods are China time (UTC+8).
Moments: no current doc states a per-customer cap (WeCom 3.0 showed 1 a day / 4 a month); off by
default, set SIYU_MOMENT_DAILY_CAP / SIYU_MOMENT_MONTHLY_CAP to mirror a corp that has one.

Settings (Django settings or the environment): SIYU_MASS_CUSTOMER_QUOTA, SIYU_MASS_GROUP_QUOTA
(days_in_month | weekly_7 | daily_1 | monthly_4), SIYU_MOMENT_DAILY_CAP, SIYU_MOMENT_MONTHLY_CAP.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from django.conf import settings

CN = timezone(timedelta(hours=8))
MODES = ("days_in_month", "weekly_7", "daily_1", "monthly_4")


def _setting(name: str, default):
    """A cap setting (declared in siyu.settings); unset or empty means ``default``."""
    value = getattr(settings, name, None)
    return default if value in (None, "") else value


@dataclass(frozen=True)
class Cap:
    kind: str  # single | group | moment
    rule: str  # the reason code: cap:<mode>
    start: int
    end: int
    limit: int


def _month(at: int) -> tuple[int, int, int]:
    d = datetime.fromtimestamp(at, CN)
    start = datetime(d.year, d.month, 1, tzinfo=CN)
    days = calendar.monthrange(d.year, d.month)[1]
    return int(start.timestamp()), int(start.timestamp()) + days * 86400, days


def _day(at: int) -> int:
    d = datetime.fromtimestamp(at, CN)
    return int(datetime(d.year, d.month, d.day, tzinfo=CN).timestamp())


def mass_cap(kind: str, at: int) -> Cap:
    """The receive cap in force at ``at`` for ``kind`` single (customers) or group."""
    mode = str(_setting("SIYU_MASS_CUSTOMER_QUOTA" if kind == "single" else "SIYU_MASS_GROUP_QUOTA", "days_in_month"))
    if mode not in MODES:
        raise ValueError(f"unknown mass-message quota mode {mode!r}")
    if mode == "days_in_month":
        s, e, days = _month(at)
        return Cap(kind, f"cap:{mode}", s, e, days)
    if mode == "monthly_4":
        s, e, _ = _month(at)
        return Cap(kind, f"cap:{mode}", s, e, 4)
    if mode == "weekly_7":
        d0 = _day(at)
        s = d0 - datetime.fromtimestamp(at, CN).weekday() * 86400
        return Cap(kind, f"cap:{mode}", s, s + 7 * 86400, 7)
    d0 = _day(at)
    return Cap(kind, f"cap:{mode}", d0, d0 + 86400, 1)


def moment_caps(at: int) -> list[Cap]:
    out = []
    daily = int(_setting("SIYU_MOMENT_DAILY_CAP", 0))
    monthly = int(_setting("SIYU_MOMENT_MONTHLY_CAP", 0))
    if daily:
        d0 = _day(at)
        out.append(Cap("moment", "cap:moment_daily", d0, d0 + 86400, daily))
    if monthly:
        s, e, _ = _month(at)
        out.append(Cap("moment", "cap:moment_monthly", s, e, monthly))
    return out
