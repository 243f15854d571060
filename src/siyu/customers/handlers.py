"""change_external_contact and change_external_tag callbacks (part 3 §2.1, §2.3).

Each handler reads WeCom first (no transaction) and returns the write, which the inbox commits
together with the event's done mark. Writes are upserts and state changes, so processing an event
twice changes nothing the second time.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from siyu.customers import services
from siyu.customers.models import Customer, FollowRelation
from siyu.customers.services import JSON
from siyu.org import selectors as org_selectors
from siyu.org import services as org_services
from siyu.wecom.inbox import Batched, handles


def _event_time(event: JSON) -> datetime:
    return services.from_ts(event.get("CreateTime")) or timezone.now()


def _read_customer(external_userid: str) -> JSON | None:
    """Everything needed to store a customer: their detail (get), corp tags we do not know yet and
    followers we have not read yet."""
    detail = services.fetch_customer(external_userid)
    if detail is None:
        return None
    rows = services.rows_from_detail(detail)
    tag_ids = services.row_tag_ids(rows)
    unknown_tags = tag_ids.difference(services.known_tags(tag_ids))
    userids = {r["follow_info"]["userid"] for r in rows}
    unknown_users = userids.difference(org_selectors.employee_ids(userids))
    return {
        "rows": rows,
        "tag_groups": services.fetch_tag_groups(tag_ids=sorted(unknown_tags)) if unknown_tags else [],
        "users": [u for u in (org_services.fetch_user(uid) for uid in sorted(unknown_users)) if u],
    }


def _store_customer(read: JSON, event_time: datetime) -> None:
    _store_customers([(read, event_time)])


def _store_customers(items: list[tuple[JSON, datetime]]) -> None:
    """Store the re-reads of several callbacks with one bulk upsert (the inbox merges them:
    ``inbox.Batched``); each customer's timeline entries keep their own event's time."""
    for read, _ in items:
        if read["users"]:
            org_services.apply_users(read["users"])
        if read["tag_groups"]:
            services.apply_tag_groups(read["tag_groups"])
    rows = [r for read, _ in items for r in read["rows"]]
    times = {r["external_contact"]["external_userid"]: at for read, at in items for r in read["rows"]}
    services.write_follow_rows(rows, source="callback", event_times=times, with_personal_tags=True)


@handles(
    "change_external_contact",
    "add_external_contact",
    "add_half_external_contact",
    "edit_external_contact",
    rereads=True,
)
def on_customer_changed(event: JSON):
    """An add (the relation appears: ``added``, or ``rejoined`` if it had been lost) or an edit
    (remarks and tags: ``remark_changed`` / ``tagged`` / ``untagged``). WeCom sends no diff, so
    the customer is re-read with externalcontact/get and the differences are derived."""
    external_userid = event.get("ExternalUserID") or ""
    if not external_userid:
        return None
    read = _read_customer(external_userid)
    if read is None:
        return None  # no relation left to read: a later del_* event says what happened
    state = event.get("State") or ""
    if state:
        # the contact way's state: the relation keeps it even if the read happened not to carry it
        for row in read["rows"]:
            if row["follow_info"].get("userid") == event.get("UserID") and not row["follow_info"].get("state"):
                row["follow_info"]["state"] = state
    return Batched(_store_customers, (read, _event_time(event)))


@handles("change_external_contact", "del_external_contact", "del_follow_user")
def on_relation_ended(event: JSON):
    """del_external_contact: the employee deleted the customer (or a transfer moved them:
    Source=DELETE_BY_TRANSFER); del_follow_user: the customer deleted the employee."""
    external_userid = event.get("ExternalUserID") or ""
    userid = event.get("UserID") or ""
    if not (external_userid and userid):
        return None
    if event.get("ChangeType") == "del_follow_user":
        status = FollowRelation.LOST_BY_CUSTOMER
    elif event.get("Source") == "DELETE_BY_TRANSFER":
        status = FollowRelation.TRANSFERRED
    else:
        status = FollowRelation.LOST_BY_EMPLOYEE
    known = FollowRelation.objects.filter(customer__external_userid=external_userid, employee__userid=userid).exists()
    # A relation we never stored: read the customer so the loss lands on a known relation (WeCom
    # still lists a customer-side deletion for the employee).
    read = None if known else _read_customer(external_userid)
    at = _event_time(event)
    detail = {"source": event["Source"]} if event.get("Source") else {}

    def apply():
        if read is not None:
            _store_customer(read, at)
        services.set_relation_status(external_userid, userid, status, at, detail=detail)

    return apply


@handles("change_external_contact", "transfer_fail")
def on_transfer_failed(event: JSON):
    """The takeover member (UserID) did not get the customer: customer_refused or
    customer_limit_exceed. Recorded on the customer's timeline for the transfer records."""
    external_userid = event.get("ExternalUserID") or ""
    userid = event.get("UserID") or ""
    if not (external_userid and userid):
        return None
    known = Customer.objects.filter(external_userid=external_userid).exists()
    read = None if known else _read_customer(external_userid)
    at = _event_time(event)

    def apply():
        if read is not None:
            _store_customer(read, at)
        services.record_transfer_failure(external_userid, userid, event.get("FailReason") or "", at)

    return apply


@handles("change_external_tag", "create", "update", "delete", "shuffle", rereads=True)
def on_tag_changed(event: JSON):
    """Corp tag changes. A delete needs no read (the tag or group is gone); a create, update or a
    group's shuffle re-reads that tag or group; a shuffle without Id (the groups' order) re-reads
    every group. Rule-group (规则组) tags — StrategyId set — are not in get_corp_tag_list and are
    not mirrored."""
    if (event.get("StrategyId") or "0") != "0":
        return None
    change = event.get("ChangeType")
    obj_id = event.get("Id") or ""
    is_group = event.get("TagType") == "tag_group" or change == "shuffle"
    if change == "delete":
        if not obj_id:
            return None

        def apply_delete():
            if is_group:
                services.delete_tag_groups([obj_id])
            else:
                services.delete_tags([obj_id])

        return apply_delete
    if not obj_id:
        groups = services.fetch_tag_groups()
        return lambda: services.apply_tag_groups(groups, full=True)
    if is_group:
        groups = services.fetch_tag_groups(group_ids=[obj_id])
        return lambda: services.apply_tag_groups(groups, scope_group_ids=[obj_id])
    groups = services.fetch_tag_groups(tag_ids=[obj_id])
    return lambda: services.apply_tag_groups(groups)
