"""Reading customer groups."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypedDict

from django.db.models import Count, Exists, F, Max, Model, OuterRef, QuerySet
from django.utils.translation import gettext as _

from siyu.accounts.selectors import DataScope
from siyu.groups.models import GroupChat as GroupChat  # re-exported: the row type other apps annotate with
from siyu.groups.models import GroupMember, GroupTag, GroupTagging
from siyu.org import selectors as org_selectors


def group_count(scope: DataScope) -> int | None:
    """Groups not dismissed, owned by employees within the viewer's scope."""
    if not GroupChat.objects.exists():
        return None
    qs = GroupChat.objects.filter(status=GroupChat.ACTIVE)
    ids = org_selectors.employee_ids_for_scope(scope)
    return qs.count() if ids is None else qs.filter(owner_id__in=ids).count()


# --- the console's group pages ---------------------------------------------------------------
def groups_for_scope(scope: DataScope) -> QuerySet[GroupChat]:
    """Customer groups the viewer may see: every group for admins and operators, groups owned by
    the store's subtree for a store manager, a guide's own groups."""
    qs = GroupChat.objects.select_related("owner")
    ids = org_selectors.employee_ids_for_scope(scope)
    return qs if ids is None else qs.filter(owner_id__in=ids)


def group_list(
    scope: DataScope,
    *,
    owner_id: int | None = None,
    department_id: int | None = None,
    status: str = "",
    q: str = "",
    tag_id: int | None = None,
) -> QuerySet[GroupChat]:
    """The group list with its filters (owner, owner's department subtree, status, name, group
    tag), newest first."""
    qs = groups_for_scope(scope)
    if owner_id is not None:
        qs = qs.filter(owner_id=owner_id)
    if department_id is not None:
        qs = qs.filter(owner_id__in=org_selectors.employee_ids_in_subtree(department_id))
    if status in dict(GroupChat.STATUS):
        qs = qs.filter(status=status)
    if q:
        qs = qs.filter(name__icontains=q)
    if tag_id is not None:
        qs = with_any_tag(qs, [tag_id])
    return qs.order_by("-created_at", "-id").prefetch_related("taggings__tag")


def group_owners(scope: DataScope) -> QuerySet[Model]:  # of org's Employee (not on its public face)
    """Employees owning at least one group the viewer may see (the owner filter's choices)."""
    owner_ids = groups_for_scope(scope).exclude(owner__isnull=True).values("owner_id")
    return org_selectors.employees_by_ids(owner_ids)


class OutOfScope(Exception):
    """The group exists but the viewer's scope does not include it."""


def group_detail(scope: DataScope, group_id: int) -> GroupChat | None:
    """A group the viewer may see; None when it does not exist, ``OutOfScope`` when it is not the
    viewer's."""
    group = GroupChat.objects.select_related("owner").filter(id=group_id).first()
    if group is None:
        return None
    if not groups_for_scope(scope).filter(id=group_id).exists():
        raise OutOfScope(group_id)
    return group


def name_members(stays: Iterable[GroupMember]) -> list[GroupMember]:
    """Set each stay's display name and its invitor's name (employees by their org name)."""
    stays = list(stays)
    invitors = {i for s in stays if (i := s.invitor_userid)}
    names = org_selectors.names_by_userid(invitors)
    for s in stays:
        if s.type == GroupMember.EMPLOYEE:
            s.display_name = (s.employee.name if s.employee else "") or s.name or s.userid
        else:
            s.display_name = s.group_nickname or s.name or (s.customer.name if s.customer else "") or s.userid
        s.invitor_name = names.get(s.invitor_userid) or s.invitor_userid
    return stays


def member_querysets(group: GroupChat) -> dict[str, Any]:
    """For the paged member page: ``current`` members (employees first, then customers, by join
    time) and the ``history`` (every stay, newest first) as querysets, with the counts of current
    employees and customers. Name the rows of a page with ``name_members``."""
    stays = GroupMember.objects.filter(group=group).select_related("customer", "employee")
    current = stays.filter(left_at__isnull=True).order_by("type", F("join_time").asc(nulls_last=True), "id")
    counts = dict(current.order_by().values_list("type").annotate(n=Count("id")).values_list("type", "n"))
    return {
        "current": current,
        "history": stays.order_by("-join_time", "-id"),
        "employees": counts.get(GroupMember.EMPLOYEE, 0),
        "customers": counts.get(GroupMember.CUSTOMER, 0),
    }


def group_members(group: GroupChat) -> dict[str, Any]:
    """Current members (employees first, then customers, by join time) and the join/leave history
    (every stay, newest first), with display names and invitors resolved (all of them: the REST
    API's group detail)."""
    qs = member_querysets(group)
    current = name_members(qs["current"])
    return {
        "current": current,
        "employees": qs["employees"],
        "customers": qs["customers"],
        "history": name_members(qs["history"]),
    }


def with_any_tag(qs: QuerySet[GroupChat], tag_ids: list[int]) -> QuerySet[GroupChat]:
    """The groups of ``qs`` carrying any of these group tags."""
    return qs.filter(Exists(GroupTagging.objects.filter(group_id=OuterRef("pk"), tag_id__in=tag_ids)))


def group_tags() -> list[GroupTag]:
    """Every group tag, by name (corp-wide, like the customer tag library)."""
    return list(GroupTag.objects.order_by("name"))


def tag_ids_of(group: GroupChat) -> list[int]:
    return sorted(group.taggings.values_list("tag_id", flat=True))


# --- reads the customers app uses (registered with it from GroupsConfig.ready) -------------------
def customer_stays(owner_ids: Iterable[int] | None = None) -> QuerySet[GroupMember]:
    """Every stay of a customer in a group (current and past; GroupMember rows), limited to
    groups owned by ``owner_ids`` unless None (groups_for_scope's rule)."""
    qs = GroupMember.objects.filter(customer_id__isnull=False)
    return qs if owner_ids is None else qs.filter(group__owner_id__in=sorted(owner_ids))


def active_chats(owner_ids: Iterable[int] | None = None) -> QuerySet[GroupChat]:
    """Groups not dismissed, owned by ``owner_ids`` unless None."""
    qs = GroupChat.objects.filter(status=GroupChat.ACTIVE)
    return qs if owner_ids is None else qs.filter(owner_id__in=sorted(owner_ids))


def group_counts_by_employee(employee_ids: list[int] | None = None) -> dict[int, dict[str, int]]:
    """Per employee: active ``groups`` owned (org's employee counts)."""
    qs = GroupChat.objects.filter(status=GroupChat.ACTIVE)
    if employee_ids is not None:
        qs = qs.filter(owner_id__in=employee_ids)
    return {eid: {"groups": n} for eid, n in qs.values("owner_id").annotate(n=Count("id")).values_list("owner_id", "n")}


def chat_pk(chat_id: str) -> int | None:
    return GroupChat.objects.filter(chat_id=chat_id).values_list("id", flat=True).first()


def group_pk(**lookup: object) -> int | None:
    """The row id of the group matching ``lookup`` (``chat_id=...`` or ``id=...``), None if unknown."""
    return GroupChat.objects.filter(**lookup).values_list("id", flat=True).first()


# --- reads other apps use (broadcasts, transfers) --------------------------------------------
def chats(
    ids: list[int] | None = None, *, tag_ids: list[int] | None = None, owner_ids: Iterable[int] | None = None
) -> QuerySet[GroupChat]:
    """Groups (a queryset, for composing into one SQL statement): only ``ids`` unless None,
    carrying any of ``tag_ids``, owned by ``owner_ids`` unless None."""
    qs = GroupChat.objects.all()
    if ids:
        qs = qs.filter(id__in=ids)
    if tag_ids:
        qs = with_any_tag(qs, tag_ids)
    if owner_ids is not None:
        qs = qs.filter(owner_id__in=sorted(owner_ids))
    return qs


def group_names(ids: Iterable[int | None]) -> dict[int, str]:
    ids = [i for i in set(ids) if i]
    return dict(GroupChat.objects.filter(id__in=ids).values_list("id", "name")) if ids else {}


def max_group_id() -> int:
    """The largest group id (0 when there is none)."""
    return GroupChat.objects.order_by("-id").values_list("id", flat=True).first() or 0


def group_ids_by_chat(chat_ids: Iterable[str]) -> dict[str, int]:
    """Group ids by chat_id, for the chat_ids that are groups here."""
    chat_ids = list(chat_ids)
    return dict(GroupChat.objects.filter(chat_id__in=chat_ids).values_list("chat_id", "id")) if chat_ids else {}


def _unhanded(owner_lookup: dict[str, object]) -> QuerySet[GroupChat]:
    """Active groups of these owners whose handover is not complete (owner_status 3: 离职继承完成)."""
    return GroupChat.objects.filter(status=GroupChat.ACTIVE, **owner_lookup).exclude(owner_status=3)


def unhanded_group_counts(owner_userids: Iterable[str]) -> dict[str, int]:
    """Per owner userid: active groups not yet handed over."""
    rows = _unhanded({"owner__userid__in": list(owner_userids)}).values("owner__userid").annotate(n=Count("id"))
    return {r["owner__userid"]: r["n"] for r in rows}


def unhanded_groups_of(owner_id: int) -> list[GroupChat]:
    """An owner's active groups not yet handed over, by id."""
    return list(_unhanded({"owner_id": owner_id}).order_by("id"))


# --- pickers (siyu.core.pickers) ----------------------------------------------------------------
class PickerRow(TypedDict):
    value: str
    label: str
    sub: str
    group: str


def _group_row(g: GroupChat, by: str) -> PickerRow:
    owner = (g.owner.name or g.owner.userid) if g.owner_id and g.owner else ""
    sub = _("群主 %(owner)s · %(n)s 人") % {"owner": owner or "—", "n": g.member_count}
    if g.status != GroupChat.ACTIVE:
        sub = f"{sub} · {g.get_status_display()}"
    return {
        "value": g.chat_id if by == "chat_id" else str(g.id),
        "label": g.name or _("未命名群"),
        "sub": sub,
        "group": "",
    }


def search_groups(scope: DataScope, q: str, *, by: str = "id", limit: int = 20) -> tuple[list[PickerRow], bool]:
    """Active groups within the scope whose name, owner's name (or account) or a group tag's name
    contains ``q`` (every one when empty), newest first, at most ``limit``. Each way is its own
    query walking the primary key backwards (or the owner index) and stopping at ``limit``: fast
    with hundreds of thousands of groups."""
    base = groups_for_scope(scope).filter(status=GroupChat.ACTIVE)
    take = limit + 1

    def newest(qs: QuerySet[GroupChat]) -> list[int]:  # ids only: no join while scanning
        return list(qs.order_by("-id").values_list("id", flat=True)[:take])

    if not q:
        ids = newest(base)
    else:
        found = set(newest(base.filter(name__icontains=q)))
        owners = org_selectors.employee_ids_named(q)
        if owners:
            found.update(newest(base.filter(owner_id__in=owners)))
        tags = list(GroupTag.objects.filter(name__icontains=q).values_list("id", flat=True)[:200])
        if tags:
            found.update(newest(with_any_tag(base, tags)))
        ids = sorted(found, reverse=True)[:take]
    rows = list(groups_for_scope(scope).filter(id__in=ids).order_by("-id")) if ids else []
    return [_group_row(g, by) for g in rows[:limit]], len(rows) > limit


def group_items(values: Iterable[str], scope: DataScope, *, by: str = "id") -> dict[str, PickerRow]:
    """The picker rows of these groups (row ids, or chat ids with ``by="chat_id"``) within the scope."""
    values = [v for v in dict.fromkeys(values) if v]
    if not values:
        return {}
    qs = groups_for_scope(scope)
    if by == "chat_id":
        qs = qs.filter(chat_id__in=values)
    else:
        qs = qs.filter(id__in=[int(v) for v in values if v.isdigit() and len(v) < 19])
    return {row["value"]: row for row in (_group_row(g, by) for g in qs)}


def group_tag_items(values: Iterable[str], scope: object = None) -> dict[str, PickerRow]:
    """The picker rows of these group tags (corp-wide)."""
    ids = [int(v) for v in dict.fromkeys(values) if v.isdigit() and len(v) < 19]
    rows = GroupTag.objects.filter(id__in=ids) if ids else GroupTag.objects.none()
    return {str(t.id): {"value": str(t.id), "label": t.name, "sub": "", "group": ""} for t in rows}


def search_group_tags(q: str, *, limit: int = 100) -> tuple[list[PickerRow], bool]:
    qs = GroupTag.objects.order_by("name")
    if q:
        qs = qs.filter(name__icontains=q)
    rows = list(qs[: limit + 1])
    return [{"value": str(t.id), "label": t.name, "sub": "", "group": ""} for t in rows[:limit]], len(rows) > limit


def names_by_chat(chat_ids: Iterable[str]) -> dict[str, str]:
    """Group name by chat id, for the chat ids that are groups here (a nameless group: "")."""
    chat_ids = [c for c in set(chat_ids) if c]
    return dict(GroupChat.objects.filter(chat_id__in=chat_ids).values_list("chat_id", "name")) if chat_ids else {}


def current_customer_stays() -> QuerySet[GroupMember]:
    """The customers' current stays in groups (not left): ``customer_id``, ``group_id``."""
    return GroupMember.objects.filter(customer_id__isnull=False, left_at__isnull=True)


def max_member_id() -> int:
    """The newest group stay's row id (a primary-key read): the segment engine's sign of new stays."""
    return GroupMember.objects.aggregate(m=Max("id"))["m"] or 0


def tag_names_of(group: GroupChat) -> list[str]:
    return sorted(group.taggings.values_list("tag__name", flat=True))


def current_customer_members(group: GroupChat) -> list[GroupMember]:
    """The group's customers now in it, named (by join time)."""
    qs = member_querysets(group)["current"].filter(type=GroupMember.CUSTOMER)
    return name_members(qs)
