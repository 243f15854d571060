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


def customer_count(scope) -> int | None:
    """Customers with at least one active relation, within the viewer's scope."""
    from siyu.customers.models import FollowRelation
    from siyu.org.selectors import employee_ids_for_scope

    if not Customer.objects.exists():
        return None
    ids = employee_ids_for_scope(scope)
    if ids is None:
        return Customer.objects.filter(status=Customer.ACTIVE).count()
    return (
        FollowRelation.objects.filter(employee_id__in=ids, status=FollowRelation.ACTIVE)
        .values("customer_id")
        .distinct()
        .count()
    )


def tag_count(scope) -> int | None:
    """Corp tags in use (corp-wide: every role sees the same tag library)."""
    from siyu.customers.models import Tag

    if not Tag.objects.exists():
        return None
    return Tag.objects.filter(deleted=False).count()
