"""Reads of the profiles app (scoped by the viewer's DataScope)."""

from __future__ import annotations

from typing import Any

from siyu.profiles.models import CustomField, Profile


# --- for the segment builder (added by part E, segments console) ----------------------------------
def custom_field_list(active_only: bool = True) -> list[dict[str, Any]]:
    """The operator's custom fields in their order: key, label, type, options."""
    qs = CustomField.objects.all()
    if active_only:
        qs = qs.filter(active=True)
    return [
        {"key": f.key, "label": f.label, "type": f.type, "options": [str(o) for o in (f.options or [])]}
        for f in qs.order_by("order", "id")
    ]


def gender_choices() -> list[tuple[int, str]]:
    """A profile's gender: (value, label)."""
    return [(int(k), str(v)) for k, v in Profile.Gender.choices]
