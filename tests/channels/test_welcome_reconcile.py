"""Issue 14, defect 8: a welcome row a killed worker left ``pending`` (committed before the call,
WeCom's answer never recorded) is marked ``unknown`` once the welcome_code's 20 s window is long
past, by the worker's recurring timer; counts and the code's page show it as 未知."""

from __future__ import annotations

import time

from siyu.accounts.models import Profile
from siyu.channels import schedule, selectors, services
from siyu.channels.models import ChannelCode, WelcomeSend
from siyu.core import timers
from siyu.core.models import Timer
from tests.customers.test_customers_console import client_for


def _row(code, wc, status=WelcomeSend.PENDING, age_s=0.0):
    return WelcomeSend.objects.create(
        welcome_code=wc,
        code=code,
        userid="u1",
        external_userid=f"wm{wc}",
        status=status,
        started_at=time.time() - age_s,
    )


def test_pending_welcome_older_than_the_window_becomes_unknown(transactional_db):
    code = ChannelCode.objects.create(name="码", config_id="cfg-rec")
    old = _row(code, "wc-old", age_s=services.WELCOME_RECONCILE_AFTER_S + 5)
    fresh = _row(code, "wc-fresh", age_s=1)  # may still be in flight: left alone
    sent = _row(code, "wc-sent", status=WelcomeSend.SENT, age_s=3600)

    # the worker's recurring timer does it: scheduled once per slot, however often ensured
    schedule.ensure_reconcile_scheduled()
    schedule.ensure_reconcile_scheduled()
    pending = Timer.objects.filter(kind=services.WELCOME_RECONCILE_KIND, status="pending")
    assert pending.count() == 1
    pending.update(run_after=time.time() - 1)
    assert timers.run_due("test-worker") == 1

    old.refresh_from_db(), fresh.refresh_from_db(), sent.refresh_from_db()
    assert old.status == WelcomeSend.UNKNOWN and "may or may not" in old.error
    assert fresh.status == WelcomeSend.PENDING and sent.status == WelcomeSend.SENT
    # ...and the next run is scheduled
    assert Timer.objects.filter(kind=services.WELCOME_RECONCILE_KIND, status="pending").count() == 1

    # a late answer still wins over unknown
    services._record_welcome(old.id, {"text": {"content": "hi"}}, None)
    old.refresh_from_db()
    assert old.status == WelcomeSend.SENT
    old.status = WelcomeSend.UNKNOWN
    old.save()

    from siyu.accounts.selectors import DataScope

    counts = selectors.welcome_counts(DataScope(everything=True), [code.id])[code.id]
    assert counts["unknown"] == 1 and counts["pending"] == 1 and counts["sent"] == 1
    page = client_for("rec-admin", Profile.ADMIN).get(f"/channels/{code.id}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="welcome-unknown">1<' in html and "未知" in html
