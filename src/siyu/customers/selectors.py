"""Reading customers: lookups other apps use (the customer list comes with the console)."""

from __future__ import annotations

from collections.abc import Iterable

from siyu.customers.models import Customer, SyncRun


def customer_ids_by_external(external_userids: Iterable[str]) -> dict[str, int]:
    """Customer ids by external_userid, for the ids that are customers here."""
    ids = [e for e in set(external_userids) if e]
    if not ids:
        return {}
    return dict(Customer.objects.filter(external_userid__in=ids).values_list("external_userid", "id"))


def latest_sync_run() -> SyncRun | None:
    return SyncRun.objects.order_by("-id").first()
