"""Reading customer groups."""

from __future__ import annotations

from siyu.groups.models import GroupChat


def group_count(scope) -> int | None:
    """Groups not dismissed, owned by employees within the viewer's scope."""
    from siyu.org.selectors import employee_ids_for_scope

    if not GroupChat.objects.exists():
        return None
    qs = GroupChat.objects.filter(status=GroupChat.ACTIVE)
    ids = employee_ids_for_scope(scope)
    return qs.count() if ids is None else qs.filter(owner_id__in=ids).count()
