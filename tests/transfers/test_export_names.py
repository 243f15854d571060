"""Fast layer: the churn CSV's file name is in the console's time zone (Beijing), like the customer
export's (issue 16, item 8)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.utils import timezone

from tests.helpers import client_for, make_user

pytestmark = pytest.mark.django_db


def test_churn_and_customer_exports_are_named_in_beijing_time(monkeypatch):
    # 2026-03-01 20:30 UTC is 2026-03-02 04:30 in Beijing
    monkeypatch.setattr(timezone, "now", lambda: datetime(2026, 3, 1, 20, 30, 5, tzinfo=UTC))
    c = client_for(make_user("op", "operator"))
    churn = c.get("/transfers/churn/export.csv")
    customers = c.get("/customers/export.csv")
    assert churn.status_code == customers.status_code == 200
    assert 'filename="churn-20260302-043005.csv"' in churn["Content-Disposition"]
    assert 'filename="customers-20260302-043005.csv"' in customers["Content-Disposition"]
