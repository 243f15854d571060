"""Fast layer (database only): churn alerts of the past imported in bulk (``siyu demo``'s history),
recorded as already told (nothing is sent now), once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from siyu.transfers import services
from siyu.transfers.models import ChurnEvent

pytestmark = pytest.mark.django_db


def test_churn_history_is_recorded_once_and_never_pending():
    now = timezone.now()
    rows = [("del_follow_user", f"wm{i:030d}", "nobody", now - timedelta(days=i)) for i in range(5)] + [
        ("del_external_contact", "wm" + "9" * 30, "nobody", now)
    ]
    assert services.import_churn_history(rows) == 6
    assert services.import_churn_history(rows) == 0
    assert services.import_churn_history([]) == 0
    assert ChurnEvent.objects.count() == 6
    assert not ChurnEvent.objects.filter(notify_status=ChurnEvent.PENDING).exists()
    assert ChurnEvent.objects.filter(kind=ChurnEvent.BY_EMPLOYEE).count() == 1
