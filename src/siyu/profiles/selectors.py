"""Reads of the profiles app (scoped by the viewer's DataScope)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import numpy as np
import numpy.typing as npt
from django.db import connection
from django.db.models import Exists, OuterRef, QuerySet

from siyu.accounts.selectors import DataScope
from siyu.customers import selectors as customer_selectors
from siyu.customers.selectors import id_set
from siyu.profiles.models import Profile, ProfileKey

IntArray = npt.NDArray[np.int64]

# --- persons and scope (minimal; the contract of docs/cdp.md, added by insights, part C) ---------


def person_queryset(scope: DataScope) -> QuerySet[Profile]:
    """The live profiles (persons) the viewer may see: all for admins and operators; otherwise
    those with a WeCom customer followed by, or once followed by, an employee in their scope."""
    live = Profile.objects.filter(merged_into__isnull=True)
    if scope.nothing:
        return live.none()
    customers = customer_selectors.scoped_customer_ids(scope)
    if customers is None:
        return live
    # a person's WeCom customers may hang on any profile of its cluster
    keys = ProfileKey.objects.filter(customer_id__in=customers)
    return live.filter(
        Exists(keys.filter(profile_id=OuterRef("pk"))) | Exists(keys.filter(profile__merged_into_id=OuterRef("pk")))
    )


# --- reads for insights' recompute (numpy arrays: millions of rows) ------------------------------


def person_map() -> tuple[IntArray, IntArray]:
    """``(profile_ids, person_ids)`` of every profile: its person is ``COALESCE(merged_into, id)``."""
    table = connection.ops.quote_name(Profile._meta.db_table)
    parts: list[IntArray] = []
    with connection.cursor() as cur:
        cur.execute(f"SELECT id, COALESCE(merged_into_id, id) FROM {table}")
        while rows := cur.fetchmany(250_000):
            parts.append(np.array(rows, dtype=np.int64))
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    both = np.concatenate(parts)
    return both[:, 0].copy(), both[:, 1].copy()


def clusters(profile_ids: Iterable[int]) -> dict[int, list[int]]:
    """The persons of ``profile_ids`` (each profile's live profile) with their whole clusters:
    ``{person_id: [person_id, merged profile ids...]}``."""
    ids = list({int(i) for i in profile_ids})
    if not ids:
        return {}
    persons: set[int] = set()
    for pid, merged in Profile.objects.filter(id__in=id_set(ids)).values_list("id", "merged_into_id"):
        persons.add(merged or pid)
    out: dict[int, list[int]] = {}
    live = set(Profile.objects.filter(id__in=id_set(persons), merged_into__isnull=True).values_list("id", flat=True))
    for p in live:
        out[p] = [p]
    for pid, person in Profile.objects.filter(merged_into_id__in=id_set(live)).values_list("id", "merged_into_id"):
        out[person].append(pid)
    return out


def merged_profile_ids(profile_ids: Iterable[int]) -> list[int]:
    """Those of ``profile_ids`` that are merged into another (no longer persons of their own)."""
    return list(
        Profile.objects.filter(id__in=id_set(profile_ids), merged_into__isnull=False).values_list("id", flat=True)
    )


def profiles_changed_since(at: datetime | None, limit: int = 50_000) -> tuple[list[int], datetime | None]:
    """Profiles written after ``at`` (by ``updated_at``: merges and unmerges touch it), at most
    ``limit``, and the newest ``updated_at`` read (``at`` when none)."""
    qs = Profile.objects.all()
    if at is not None:
        qs = qs.filter(updated_at__gt=at)
    rows = list(qs.order_by("updated_at").values_list("id", "updated_at")[:limit])
    if not rows:
        return [], at
    return [r[0] for r in rows], rows[-1][1]


def customer_links(profile_ids: Iterable[int] | None = None) -> tuple[IntArray, IntArray]:
    """``(profile_ids, customer_ids)`` of the WeCom customer keys (of ``profile_ids``, or all)."""
    qs = ProfileKey.objects.filter(customer_id__isnull=False)
    if profile_ids is not None:
        qs = qs.filter(profile_id__in=id_set(profile_ids))
    rows = np.array(list(qs.values_list("profile_id", "customer_id").iterator(chunk_size=100_000)), dtype=np.int64)
    if not len(rows):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return rows[:, 0].copy(), rows[:, 1].copy()


def profiles_of_customers(customer_ids: Iterable[int]) -> list[int]:
    """The profiles holding these WeCom customers' keys."""
    return list(
        ProfileKey.objects.filter(customer_id__in=id_set(customer_ids)).values_list("profile_id", flat=True).distinct()
    )
