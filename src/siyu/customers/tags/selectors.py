"""Reading the corp tag library for the tag management page (客户标签)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Count

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
