"""Fast layer (database only): past adds through codes imported in bulk (``siyu demo``'s history)
feed channel analytics like live adds; importing again adds nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from siyu.accounts.selectors import DataScope
from siyu.channels import selectors, services
from siyu.channels.models import ChannelAdd, ChannelCode, WelcomeSend

pytestmark = pytest.mark.django_db

EVERYTHING = DataScope(everything=True)


def history(code: ChannelCode, n: int = 60) -> list[services.HistoryAdd]:
    now = timezone.now()
    rows: list[services.HistoryAdd] = []
    for i in range(n):
        at = now - timedelta(days=3 * i, hours=1)
        rows.append(
            {
                "code_id": code.id,
                "userid": f"guide{i % 3}",
                "external_userid": f"wm{i:030d}",
                "added_at": at,
                "lost_at": at + timedelta(days=2) if i % 10 == 0 else None,
                "welcome": "sent" if i % 7 else "failed",
            }
        )
    return rows


def test_history_feeds_analytics_and_imports_once():
    code = ChannelCode.objects.create(name="包装卡·会员礼盒", users=["guide0"], welcome={"text": "欢迎{nickname}"})
    rows = history(code)
    assert services.import_history(rows) == {"adds": 60, "welcomes": 60}
    assert services.import_history(rows) == {"adds": 0, "welcomes": 0}
    assert ChannelAdd.objects.count() == 60 and WelcomeSend.objects.count() == 60
    assert services.code_by_name("包装卡·会员礼盒") == code and services.code_by_name("nope") is None

    today = services.local().date()
    by_month = selectors.analytics(EVERYTHING, today - timedelta(days=182), today, dimension="day")
    assert by_month["totals"] == {"new": 60, "lost": 6, "net": 54}
    assert len(by_month["rows"]) == 60  # one add every three days over six months
    by_code = selectors.analytics(EVERYTHING, today - timedelta(days=182), today, dimension="code")
    (row,) = by_code["rows"]
    assert row["label"] == "包装卡·会员礼盒" and row["new"] == 60
    assert row["welcome_rate"] == round(100 * 51 / 60, 1)
    failed = selectors.welcome_failures(EVERYTHING, code)
    assert len(failed) == 9 and all(w.errcode == services.HISTORY_WELCOME_ERRCODE for w in failed)


def test_history_skips_unknown_codes():
    code = ChannelCode.objects.create(name="直播·双11专场", users=["guide0"])
    rows = history(code, 3)
    for r in rows:
        r["code_id"] = code.id + 1000
    assert services.import_history(rows) == {"adds": 0, "welcomes": 0}
