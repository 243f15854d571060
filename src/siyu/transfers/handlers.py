"""Callbacks continuity listens to (besides the customers app's own handlers for the same events):

- transfer_fail: a waiting handover item ends (customer_refused / customer_limit_exceed).
- del_follow_user / del_external_contact (not DELETE_BY_TRANSFER): a churn event, and the
  immediate alert task when the rule says so (enqueued in the inbox row's transaction: with the
  database task backend the alert exists exactly when the event was recorded).
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone

from siyu.transfers import services, tasks
from siyu.transfers.models import ChurnEvent, ChurnRule
from siyu.wecom.inbox import handles


def _at(event: dict):
    created = str(event.get("CreateTime") or "")
    return datetime.fromtimestamp(int(created), tz=UTC) if created.isdigit() else timezone.now()


@handles("change_external_contact", "transfer_fail")
def on_transfer_fail(event: dict):
    x, takeover = event.get("ExternalUserID") or "", event.get("UserID") or ""
    reason = event.get("FailReason") or ""
    if not (x and takeover):
        return None
    at = _at(event)
    return lambda: services.on_transfer_fail(x, takeover, reason, at)


@handles("change_external_contact", "del_follow_user", "del_external_contact")
def on_churn(event: dict):
    x, userid = event.get("ExternalUserID") or "", event.get("UserID") or ""
    if not (x and userid) or event.get("Source") == "DELETE_BY_TRANSFER":
        return None
    kind = ChurnEvent.BY_CUSTOMER if event.get("ChangeType") == "del_follow_user" else ChurnEvent.BY_EMPLOYEE
    at = _at(event)

    def apply():
        ev = services.record_churn(kind, x, userid, at)
        if ev is not None and ev.mode == ChurnRule.IMMEDIATE and ev.notify_status == ChurnEvent.PENDING:
            tasks.notify_churn.enqueue([ev.id])  # the task row commits with the event (DB task backend)

    return apply
