"""Reads of the profiles app (scoped by the viewer's DataScope).

A person is a *live* profile (``merged_into IS NULL``) with the profiles merged into it (merges
are flat). ``cluster_ids(person_id)`` lists them; ``live_id(profile_id)`` names the person of any
profile. SQL consumers map a row's profile to its person with ``COALESCE(p.merged_into_id, p.id)``
joined on ``profiles_profile p`` (see ``LIVE_ID_SQL``), or in the ORM with
``live_id_expression("profile")``.

Scope: admins and operators see every person; a scoped viewer (store manager, guide) sees the
persons with a WeCom customer the customer list shows them (``customers.selectors.customer_queryset``:
followed, or once followed, by an employee in their scope). Out of scope is 404 for the console
pages and the API alike (``person_in_scope``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db import connection
from django.db.models import F, Field, Max, Q, QuerySet
from django.db.models.expressions import Combinable
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils.translation import gettext_lazy as _

from siyu.accounts.selectors import DataScope
from siyu.core import paging
from siyu.customers import selectors as customer_selectors
from siyu.customers.selectors import id_set
from siyu.profiles.models import CustomField, IdentityConflict, Profile, ProfileHistory, ProfileKey

# the person of a profile row ``p`` in SQL
LIVE_ID_SQL = "COALESCE(p.merged_into_id, p.id)"


def live_id_expression(prefix: str = "") -> Combinable:
    """``COALESCE(merged_into_id, id)`` of the profile at ``prefix`` (e.g. "profile" on a model
    with a ``profile`` foreign key): annotate, group or filter other apps' rows by person."""
    path = f"{prefix}__" if prefix else ""
    return Coalesce(F(f"{path}merged_into_id"), F(f"{path}id"))


def live_id(profile_id: int) -> int | None:
    """The person ``profile_id`` belongs to (itself when live); None when unknown."""
    row = Profile.objects.filter(id=profile_id).values_list("id", "merged_into_id").first()
    return (row[1] or row[0]) if row else None


def cluster_ids(person_id: int) -> list[int]:
    """The profiles that make the person: ``person_id`` first, then those merged into it."""
    merged = Profile.objects.filter(merged_into_id=person_id).order_by("id").values_list("id", flat=True)
    return [person_id, *merged]


def person_ids_of_customers(customer_ids: list[int]) -> dict[int, int]:
    """Customer id → the person of its ``external_userid`` key."""
    out: dict[int, int] = {}
    for cid, pid, merged in ProfileKey.objects.filter(customer_id__in=customer_ids).values_list(
        "customer_id", "profile_id", "profile__merged_into_id"
    ):
        out[cid] = merged or pid
    return out


# --- scope ---------------------------------------------------------------------------------------
def _scoped_profiles(scope: DataScope) -> QuerySet[Profile, Any]:
    customers = customer_selectors.customer_queryset(scope).values("id")
    return (
        Profile.objects.filter(id__in=ProfileKey.objects.filter(customer_id__in=customers).values("profile_id"))
        .annotate(live=live_id_expression())
        .values("live")
    )


def person_queryset(scope: DataScope) -> QuerySet[Profile]:
    """The live profiles the viewer may see (unordered)."""
    if scope.nothing:
        return Profile.objects.none()
    qs = Profile.objects.filter(merged_into__isnull=True)
    if scope.everything:
        return qs
    return qs.filter(id__in=_scoped_profiles(scope))


def scoped_person_ids(scope: DataScope) -> set[int] | None:
    """The ids of the persons the viewer may see; None = every live profile (no restriction)."""
    if scope.everything:
        return None
    return set(person_queryset(scope).values_list("id", flat=True))


def person_in_scope(scope: DataScope, profile_id: int) -> Profile:
    """The person (live profile) of ``profile_id`` if the viewer may see it, else Http404."""
    pid = live_id(profile_id)
    if pid is None:
        raise Http404
    person = person_queryset(scope).filter(id=pid).first()
    if person is None:
        raise Http404
    return person


def https_url(url: str) -> str:
    """WeCom gives avatars as http:// URLs on hosts that also answer https (the console's CSP
    allows only https images from them); anything else is not shown."""
    if url.startswith("http://"):
        url = "https://" + url[len("http://") :]
    return url if url.startswith("https://") else ""


# --- list (keyset pages, newest first) ------------------------------------------------------------
PER_PAGE = 50


def search_q(q: str) -> Q:
    """Name contains, or an exact phone / member number / unionid / customer key (any profile of
    the cluster: keys never move). The profile's own phone, member number and unionid columns
    repeat one of its keys, so the keys answer for them."""
    q = q.strip()[:64]
    digits = "".join(ch for ch in q if ch.isdigit())
    keys = Q(value=q)
    if digits and len(digits) >= 11:
        phone = digits[2:] if len(digits) == 13 and digits.startswith("86") else digits
        keys |= Q(kind=ProfileKey.Kind.PHONE, value=phone)
    holders = (
        Profile.objects.filter(id__in=ProfileKey.objects.filter(keys).values("profile_id"))
        .annotate(live=live_id_expression())
        .values("live")
    )
    return Q(name__icontains=q) | Q(id__in=holders)


def encode_cursor(pk: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([pk]).encode()).decode().rstrip("=")


def decode_cursor(token: str) -> int | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        value = json.loads(raw)
    except (ValueError, TypeError):
        return None
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], int) and 0 < value[0] < 2**62:
        return int(value[0])
    return None


@dataclass
class PersonPage:
    rows: list[Profile]
    next_cursor: str = ""
    prev_cursor: str = ""
    first: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def person_page(
    scope: DataScope, q: str = "", *, after: str = "", before: str = "", limit: int = PER_PAGE
) -> PersonPage:
    """One page of the viewer's persons, newest first (keyset on id: never an OFFSET or a count)."""
    qs = person_queryset(scope)
    if q.strip():
        qs = qs.filter(search_q(q))
    a = decode_cursor(after) if after else None
    b = decode_cursor(before) if before else None
    if b is not None:
        rows = list(qs.filter(id__gt=b).order_by("id")[: limit + 1])
        has_more = len(rows) > limit
        rows = rows[:limit][::-1]
        page = PersonPage(rows, first=not has_more)
        if rows:
            page.next_cursor = encode_cursor(rows[-1].id)
            if has_more:
                page.prev_cursor = encode_cursor(rows[0].id)
        return page
    if a is not None:
        qs = qs.filter(id__lt=a)
    rows = list(qs.order_by("-id")[: limit + 1])
    page = PersonPage(rows[:limit], first=a is None)
    if len(rows) > limit:
        page.next_cursor = encode_cursor(rows[limit - 1].id)
    if a is not None and page.rows:
        page.prev_cursor = encode_cursor(page.rows[0].id)
    return page


# --- one person -------------------------------------------------------------------------------------
class KeyRow(TypedDict):
    kind: str
    kind_label: str
    value: str
    profile_id: int
    customer_id: int | None
    source: str


# the console's names of the key kinds (never WeCom's field names: see tests/security/test_raw_names.py)
KIND_LABELS: dict[str, Any] = {
    ProfileKey.Kind.EXTERNAL_USERID: _("企业微信客户"),
    ProfileKey.Kind.UNIONID: _("微信开放平台 ID"),
    ProfileKey.Kind.PHONE: _("手机号"),
    ProfileKey.Kind.MEMBER_NO: _("会员号"),
    ProfileKey.Kind.OPENID: _("小程序用户 ID"),
}


def keys_of(cluster: list[int]) -> list[KeyRow]:
    labels = KIND_LABELS
    return [
        KeyRow(
            kind=k.kind,
            kind_label=str(labels.get(k.kind, k.kind)),
            value=k.value,
            profile_id=k.profile_id,
            customer_id=k.customer_id,
            source=k.source,
        )
        for k in ProfileKey.objects.filter(profile_id__in=cluster).order_by("kind", "id")
    ]


def merged_profiles(person_id: int) -> list[Profile]:
    return list(Profile.objects.filter(merged_into_id=person_id).order_by("id"))


def history(cluster: list[int], limit: int = 200) -> list[ProfileHistory]:
    return list(ProfileHistory.objects.filter(profile_id__in=cluster).order_by("-at", "-id")[:limit])


def customer_ids_of(cluster: list[int]) -> list[int]:
    return list(
        ProfileKey.objects.filter(profile_id__in=cluster, customer__isnull=False)
        .order_by("id")
        .values_list("customer_id", flat=True)
    )


def fields(*, active_only: bool = True) -> list[CustomField]:
    qs = CustomField.objects.all()
    if active_only:
        qs = qs.filter(active=True)
    return list(qs.order_by("order", "id"))


def field_by_id(field_id: int) -> CustomField:
    f = CustomField.objects.filter(id=field_id).first()
    if f is None:
        raise Http404
    return f


def custom_rows(profile: Profile, custom_fields: list[CustomField]) -> list[dict[str, Any]]:
    """The person's custom values in field order, for display: ``{field, value, text}``."""
    out = []
    for f in custom_fields:
        v = profile.custom.get(f.key)
        text = "、".join(str(x) for x in v) if isinstance(v, list) else ("" if v is None else str(v))
        out.append({"field": f, "value": v, "text": text})
    return out


def mask_phone(phone: str) -> str:
    """138****8000: the middle digits hidden."""
    if len(phone) >= 7:
        return f"{phone[:3]}****{phone[-4:]}"
    return "****" if phone else ""


# --- conflicts -------------------------------------------------------------------------------------
def conflicts(status: str = "open", limit: int = 200) -> list[IdentityConflict]:
    qs = IdentityConflict.objects.select_related("profile", "other")
    if status:
        qs = qs.filter(status=status)
    return list(qs.order_by("-created_at", "-id")[:limit])


def open_conflict_count() -> int:
    return IdentityConflict.objects.filter(status=IdentityConflict.Status.OPEN).count()


def conflict_by_id(conflict_id: int) -> IdentityConflict:
    c = IdentityConflict.objects.select_related("profile", "other").filter(id=conflict_id).first()
    if c is None:
        raise Http404
    return c


def conflicts_of(cluster: list[int]) -> list[IdentityConflict]:
    return list(
        IdentityConflict.objects.filter(Q(profile_id__in=cluster) | Q(other_id__in=cluster))
        .select_related("profile", "other")
        .order_by("-created_at")[:50]
    )


# --- the 360° page ----------------------------------------------------------------------------------
def _customer_details(scope: DataScope, customer_ids: list[int]) -> list[customer_selectors.CustomerDetail]:
    """The person's WeCom customers as the customer page shows them (the viewer's relations, tags
    and groups only); customers the viewer's scope holds no relation of are left out."""
    out = []
    for cid in customer_ids:
        try:
            out.append(customer_selectors.customer_detail(scope, cid, events_limit=0))
        except (Http404, PermissionDenied):
            continue
    return out


def profile_view(scope: DataScope, profile_id: int, *, full_phone: bool) -> dict[str, Any]:
    """Everything the 360° page shows but the registered sections, within the viewer's scope."""
    person = person_in_scope(scope, profile_id)
    cluster = cluster_ids(person.id)
    customers = _customer_details(scope, customer_ids_of(cluster))
    avatars = customer_selectors.avatars(d["customer"].id for d in customers)
    seen_mobiles = {m for d in customers for r in d["relations"] for m in (r.remark_mobiles or [])}
    phone = person.phone
    shown_phone = phone if (full_phone or phone in seen_mobiles) else mask_phone(phone)
    custom_fields = fields()
    return {
        "person": person,
        "cluster": cluster,
        "keys": keys_of(cluster),
        "customers": customers,
        "avatar": https_url(next((avatars[d["customer"].id] for d in customers if d["customer"].id in avatars), "")),
        "phone": shown_phone,
        "phone_masked": bool(phone) and shown_phone != phone,
        "merged": merged_profiles(person.id),
        "attributes": sorted((str(k), v) for k, v in person.attributes.items())
        if isinstance(person.attributes, dict)
        else [],
        "custom": custom_rows(person, custom_fields),
        "custom_fields": custom_fields,
        "history": history_rows(history(cluster)),
        "conflicts": conflicts_of(cluster),
    }


# --- history, for display ----------------------------------------------------------------------------
_REASONS = {
    "manual": _("手工合并"),
    "unionid": _("同一微信开放平台 ID"),
    "member_no": _("同一会员号"),
    "phone": _("同一手机号"),
    "conflict": _("处理冲突时合并"),
    "auto": _("自动合并"),
    "unionid_mismatch": _("微信开放平台 ID 不同"),
}
_RESOLVED = {"merged": _("已合并"), "kept_apart": _("保持独立")}


def reason_label(reason: str) -> str:
    return str(_REASONS.get(reason, reason))


def _field_label(name: str) -> str:
    if name.startswith("custom."):
        f = CustomField.objects.filter(key=name[7:]).values_list("label", flat=True).first()
        return f or name[7:]
    try:
        model_field = Profile._meta.get_field(name)
    except FieldDoesNotExist:
        return name
    return str(model_field.verbose_name) if isinstance(model_field, Field) else name


def _names(rows: list[ProfileHistory]) -> dict[int, str]:
    ids: set[int] = set()
    for h in rows:
        for k in ("merged", "other", "into", "from"):
            v = (h.detail or {}).get(k)
            if isinstance(v, int):
                ids.add(v)
    return dict(Profile.objects.filter(id__in=ids).values_list("id", "name")) if ids else {}


def _key_kinds(keys: object) -> str:
    """The kinds of a history row's keys ({kind: value} or [[kind, value], ...]), by their names."""
    kinds: list[str] = []
    if isinstance(keys, dict):
        kinds = [str(k) for k in keys]
    elif isinstance(keys, list):
        kinds = [str(k[0]) for k in keys if isinstance(k, list | tuple) and k]
    return "、".join(dict.fromkeys(str(KIND_LABELS.get(k, k)) for k in kinds))


def _history_text(h: ProfileHistory, names: dict[int, str]) -> str:
    d = h.detail or {}

    def name(key: str) -> str:
        v = d.get(key)
        return (names.get(v) if isinstance(v, int) else None) or str(_("未命名客户"))

    reason = reason_label(str(d.get("reason", "")))
    K = ProfileHistory.Kind
    if h.kind == K.CREATED:
        return (
            str(_("由企业微信客户建档"))
            if d.get("source") == "wecom"
            else str(_("建档：%(keys)s")) % {"keys": _key_kinds(d.get("keys"))}
        )
    if h.kind == K.KEY_ADDED:
        return _key_kinds(d.get("keys"))
    if h.kind == K.MERGED:
        if "merged" in d:
            return str(_("「%(name)s」并入本档案（%(reason)s）")) % {"name": name("merged"), "reason": reason}
        return str(_("并入「%(name)s」（%(reason)s）")) % {"name": name("into"), "reason": reason}
    if h.kind == K.UNMERGED:
        if "other" in d:
            return str(_("拆分出「%(name)s」")) % {"name": name("other")}
        return str(_("从「%(name)s」拆分出来")) % {"name": name("from")}
    if h.kind == K.CONFLICT:
        text = str(_("与「%(name)s」：%(reason)s")) % {"name": name("other"), "reason": reason}
        if d.get("resolved"):
            text += " → " + str(_RESOLVED.get(str(d["resolved"]), d["resolved"]))
        return text
    if h.kind == K.FIELD_CHANGED:
        changes = d.get("changes") or d.get("fields") or {}
        return "、".join(_field_label(str(k)) for k in changes)
    return ""


def history_rows(rows: list[ProfileHistory]) -> list[dict[str, Any]]:
    """Each history row with a sentence saying what happened (names, never raw ids)."""
    labels = dict(ProfileHistory.Kind.choices)
    names = _names(rows)
    return [{"h": h, "kind_label": labels.get(h.kind, h.kind), "text": _history_text(h, names)} for h in rows]


IntArray = npt.NDArray[np.int64]


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


def profiles_changed_since(
    at: datetime | None, limit: int = 50_000, walk: str = ""
) -> tuple[list[int], datetime | None]:
    """Profiles written after ``at`` (by ``updated_at``: merges and unmerges touch it), at most
    ``limit``, and the next watermark (``core.paging.changed_since``; ``walk``: settled)."""
    return paging.changed_since(Profile.objects.all(), at, limit, walk)


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


# --- reads of the segment engine (siyu.segments) ----------------------------------------------


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


def custom_field_types() -> list[tuple[str, str]]:
    """(key, type) of the active custom fields."""
    return list(CustomField.objects.filter(active=True).values_list("key", "type"))


def max_key_id() -> int:
    """The newest identity key's row id (a primary-key read): the segment engine's sign of new keys."""
    return ProfileKey.objects.aggregate(m=Max("id"))["m"] or 0


# --- reads of the segment console (siyu.segments views) ------------------------------------


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


def customers_of_persons(person_ids: Iterable[int]) -> list[tuple[int, int]]:
    """``(person, customer_id)`` of the WeCom customers of these persons (live profile ids)."""
    qs = customer_persons().filter(person__in=sorted(set(person_ids)))  # type: ignore[misc]  # an annotation
    return [(row["person"], row["customer_id"]) for row in qs]
