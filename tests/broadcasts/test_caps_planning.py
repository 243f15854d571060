"""Fast layer (no emulator, no database): the receive caps a broadcast's planning applies, per
quota mode, in China time (add_msg_template doc 92135)."""

from __future__ import annotations

from datetime import datetime

import pytest

from siyu.broadcasts import caps

# Wednesday 2026-02-18 23:30 in China (15:30 UTC): still the 18th there
AT = int(datetime(2026, 2, 18, 23, 30, tzinfo=caps.CN).timestamp())


def cn(*args) -> int:
    return int(datetime(*args, tzinfo=caps.CN).timestamp())


@pytest.mark.parametrize(
    "mode,start,end,limit",
    [
        ("days_in_month", cn(2026, 2, 1), cn(2026, 3, 1), 28),
        ("monthly_4", cn(2026, 2, 1), cn(2026, 3, 1), 4),
        ("weekly_7", cn(2026, 2, 16), cn(2026, 2, 23), 7),  # natural week: Monday to Monday
        ("daily_1", cn(2026, 2, 18), cn(2026, 2, 19), 1),
    ],
)
def test_each_quota_mode_gives_its_period_and_limit(settings, mode, start, end, limit):
    settings.SIYU_MASS_CUSTOMER_QUOTA = mode
    cap = caps.mass_cap("single", AT)
    assert (cap.kind, cap.rule, cap.start, cap.end, cap.limit) == ("single", f"cap:{mode}", start, end, limit)
    assert cap.start <= AT < cap.end


def test_customers_and_groups_have_their_own_mode_and_the_default_is_days_in_month(settings):
    settings.SIYU_MASS_CUSTOMER_QUOTA = "daily_1"
    settings.SIYU_MASS_GROUP_QUOTA = ""
    assert caps.mass_cap("single", AT).limit == 1
    group = caps.mass_cap("group", AT)
    assert group.rule == "cap:days_in_month" and group.limit == 28
    leap = cn(2028, 2, 10)
    assert caps.mass_cap("group", leap).limit == 29


def test_an_unknown_mode_is_refused(settings):
    settings.SIYU_MASS_GROUP_QUOTA = "hourly"
    with pytest.raises(ValueError, match="hourly"):
        caps.mass_cap("group", AT)


def test_moment_caps_are_off_unless_configured(settings):
    settings.SIYU_MOMENT_DAILY_CAP = 0
    settings.SIYU_MOMENT_MONTHLY_CAP = ""
    assert caps.moment_caps(AT) == []
    settings.SIYU_MOMENT_DAILY_CAP = 1
    settings.SIYU_MOMENT_MONTHLY_CAP = "4"
    daily, monthly = caps.moment_caps(AT)
    assert (daily.rule, daily.start, daily.end, daily.limit) == (
        "cap:moment_daily",
        cn(2026, 2, 18),
        cn(2026, 2, 19),
        1,
    )
    assert (monthly.rule, monthly.start, monthly.end, monthly.limit) == (
        "cap:moment_monthly",
        cn(2026, 2, 1),
        cn(2026, 3, 1),
        4,
    )
