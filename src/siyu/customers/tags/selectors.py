"""Reading the corp tag library for the tag management page (客户标签)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypedDict

from django.db.models import Count, Q

from siyu.accounts.selectors import DataScope
from siyu.customers.models import FollowRelation, FollowTag, Tag, TagGroup
from siyu.org import selectors as org_selectors


def tag_customer_counts(scope: DataScope) -> dict[int, int]:
    """Tag row id → customers carrying it on an active relation, counting only the relations of
    employees within the viewer's scope."""
    qs = FollowTag.objects.filter(tag__deleted=False, relation__status=FollowRelation.ACTIVE)
    ids = org_selectors.employee_ids_for_scope(scope)
    if ids is not None:
        qs = qs.filter(relation__employee_id__in=ids)
    return dict(qs.values("tag_id").annotate(n=Count("customer_id", distinct=True)).values_list("tag_id", "n"))


def tag_library(scope: DataScope) -> list[dict[str, Any]]:
    """Live tag groups in WeCom's order (larger order first), each with its live tags and their
    customer counts within ``scope``."""
    counts = tag_customer_counts(scope)
    groups = list(TagGroup.objects.filter(deleted=False).order_by("-order", "id"))
    tags: dict[int, list[Tag]] = {}
    for t in Tag.objects.filter(deleted=False, group__deleted=False).order_by("-order", "id"):
        t.customer_count = counts.get(t.id, 0)
        tags.setdefault(t.group_id, []).append(t)
    out = []
    for i, g in enumerate(groups):
        items = tags.get(g.id, [])
        out.append({"group": g, "tags": items, "first": i == 0, "last": i == len(groups) - 1})
    return out


def live_tag_total() -> int:
    return Tag.objects.filter(deleted=False, group__deleted=False).count()


def wecom_tag_ids(ids: Iterable[int]) -> list[str]:
    """WeCom's tag_id of each of these tag rows (other apps store our row ids)."""
    ids = list(ids)
    return list(Tag.objects.filter(id__in=ids).values_list("tag_id", flat=True)) if ids else []


# --- pickers (siyu.core.pickers): the corp tag library is the same for every role -------------
class PickerRow(TypedDict):
    value: str
    label: str
    sub: str
    group: str


def _tag_row(t: Tag, by: str) -> PickerRow:
    return {"value": t.tag_id if by == "tag_id" else str(t.id), "label": t.name, "sub": "", "group": t.group.name}


def search_tags(q: str, *, by: str = "id", limit: int = 100) -> tuple[list[PickerRow], bool]:
    """Live tags whose name or group name contains ``q`` (every one when empty), grouped by tag
    group in WeCom's order, at most ``limit``. ``by``: the value is our row id ("id") or WeCom's
    tag id ("tag_id")."""
    qs = Tag.objects.filter(deleted=False, group__deleted=False).select_related("group")
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(group__name__icontains=q))
    rows = list(qs.order_by("-group__order", "group_id", "-order", "id")[: limit + 1])
    return [_tag_row(t, by) for t in rows[:limit]], len(rows) > limit


def tag_items(values: Iterable[str], scope: object = None, *, by: str = "id") -> dict[str, PickerRow]:
    """The picker rows of these tags (row ids, or WeCom tag ids with ``by="tag_id"``) that are live."""
    values = [v for v in dict.fromkeys(values) if v]
    if not values:
        return {}
    qs = Tag.objects.filter(deleted=False, group__deleted=False).select_related("group")
    if by == "tag_id":
        qs = qs.filter(tag_id__in=values)
    else:
        qs = qs.filter(id__in=[int(v) for v in values if v.isdigit() and len(v) < 19])
    return {row["value"]: row for row in (_tag_row(t, by) for t in qs)}


def group_tags(group_pk: int) -> tuple[str, dict[str, int]] | None:
    """A live tag group's WeCom ``group_id`` and its live tags' row ids by name (None when the
    group is gone). For apps that keep tags of their own in a group (insights' mirror)."""
    group = TagGroup.objects.filter(id=group_pk, deleted=False).values_list("group_id", flat=True).first()
    if group is None:
        return None
    tags = dict(Tag.objects.filter(group_id=group_pk, deleted=False).values_list("name", "id"))
    return group, tags


def group_choices() -> list[tuple[int, str]]:
    """(row id, name) of the live tag groups, in WeCom's order: a form's choice of a group."""
    return list(TagGroup.objects.filter(deleted=False).order_by("-order", "id").values_list("id", "name"))


def tag_groups_for_picking() -> list[dict[str, Any]]:
    """Live tag groups in WeCom's order with their live tags (no counts: the sidebar's editor)."""
    tags: dict[int, list[Tag]] = {}
    for t in Tag.objects.filter(deleted=False, group__deleted=False).order_by("-order", "id"):
        tags.setdefault(t.group_id, []).append(t)
    return [
        {"group": g, "tags": tags[g.id]}
        for g in TagGroup.objects.filter(deleted=False).order_by("-order", "id")
        if g.id in tags
    ]
