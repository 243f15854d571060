"""Reads of the profiles app (scoped by the viewer's DataScope)."""

from __future__ import annotations

from typing import Any

from django.db.models import F, QuerySet
from django.db.models.functions import Coalesce

from siyu.accounts.selectors import DataScope
from siyu.customers import selectors as customer_selectors
from siyu.org import selectors as org_selectors
from siyu.profiles.models import CustomField, Profile, ProfileKey


def all_profiles() -> QuerySet[Profile]:
    """Every profile row, merged ones included (``merged_into_id`` set)."""
    return Profile.objects.all()


def customer_persons() -> QuerySet[ProfileKey, dict[str, Any]]:
    """(``customer_id``, ``person``): each WeCom customer with the live profile (person) it belongs
    to: its ``external_userid`` key's profile, or the profile that one is merged into."""
    return (
        ProfileKey.objects.filter(kind=ProfileKey.Kind.EXTERNAL_USERID, customer_id__isnull=False)
        .annotate(person=Coalesce(F("profile__merged_into_id"), F("profile_id")))
        .values("customer_id", "person")
    )


def persons_of_customers(customer_ids: Any) -> QuerySet[ProfileKey, dict[str, Any]]:
    """The persons (live profile ids, ``person``) of the customers ``customer_ids`` (a values
    queryset or a list): a subquery for ``id__in``."""
    return customer_persons().filter(customer_id__in=customer_ids).values("person")  # type: ignore[misc]


def person_queryset(scope: DataScope) -> QuerySet[Profile]:
    """The persons (live profiles) a viewer may see: everyone's for ``everything``; otherwise those
    with a WeCom customer followed, or once followed, by an employee in the scope (the customer
    list's rule)."""
    live = Profile.objects.filter(merged_into__isnull=True)
    if scope.nothing:
        return live.none()
    employees = org_selectors.employee_ids_for_scope(scope)
    if employees is None:
        return live
    relations = customer_selectors.follow_relations().filter(employee_id__in=sorted(employees))
    return live.filter(id__in=persons_of_customers(relations.values("customer_id")))


def custom_field_types() -> list[tuple[str, str]]:
    """(key, type) of the active custom fields."""
    return list(CustomField.objects.filter(active=True).values_list("key", "type"))


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
