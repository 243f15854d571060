"""Writes and rules of the profiles app.

Sections (two parts of issue 17 write here; keep them apart):
- identity resolution and member upserts (``resolve_keys``, ``upsert_members``, ``normalise_phone``):
  the ingestion part's (commerce imports, REST batches);
- merges by hand: ``merge`` / ``unmerge`` / ``resolve_conflict`` (flat clusters, every step in the history);
- linking WeCom customers: ``link_backfill`` (set-based) and ``link_step`` (incremental, a worker timer);
- custom fields: ``clean_custom_value`` (the one check of a value: console, REST and imports), field
  definitions and profile edits.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Field, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.core import bulk, inputs, paging
from siyu.customers import selectors as customer_selectors
from siyu.profiles.models import CustomField, IdentityConflict, Profile, ProfileHistory, ProfileKey

# --- keys -------------------------------------------------------------------------------------

# The order a row's keys are resolved in (docs/cdp.md "Identity"): the first key that names a
# person decides where the row goes when the rules keep two persons apart.
KEY_ORDER: tuple[str, ...] = ("unionid", "member_no", "phone", "external_userid", "openid")
KEY_MAX_LEN = 128  # ProfileKey.value

_NON_DIGITS = re.compile(r"\D+")


def normalise_phone(value: object) -> str:
    """Digits only; a leading ``+86`` / ``86`` dropped from a 13-digit mainland mobile
    (``+86 138-0013-8000`` → ``13800138000``; ``008613800138000`` too). "" when no digit is left."""
    if value is None:
        return ""
    digits = str(value)
    if not (digits.isascii() and digits.isdigit()):
        digits = _NON_DIGITS.sub("", digits)
    if digits.startswith("0086") and len(digits) == 15 and digits[4] == "1":
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13 and digits[2] == "1":
        digits = digits[2:]
    return digits


def normalise_key(kind: str, value: object) -> str:
    """The stored form of a key's value: phones normalised, others stripped; "" = no key."""
    if value is None:
        return ""
    if kind == "phone":
        return normalise_phone(value)
    return str(value).strip()


def row_keys(keys: Mapping[str, object]) -> list[tuple[str, str]]:
    """A row's usable keys in resolution order, normalised (empty and over-long values dropped)."""
    out: list[tuple[str, str]] = []
    for kind in KEY_ORDER:
        v = normalise_key(kind, keys.get(kind))
        if v and len(v) <= KEY_MAX_LEN:
            out.append((kind, v))
    return out


# --- identity resolution ------------------------------------------------------------------------


@dataclass
class _Pending:
    """A profile this batch creates (a negative id until it is inserted)."""

    tmp: int
    keys: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _Batch:
    source: str
    owner: dict[tuple[str, str], int] = field(default_factory=dict)  # key -> owning profile (stored)
    live: dict[int, int] = field(default_factory=dict)  # profile -> its person (live profile)
    unionids: dict[int, set[str]] = field(default_factory=dict)  # person -> the cluster's unionids
    pending: dict[int, _Pending] = field(default_factory=dict)  # tmp id -> new profile
    alias: dict[int, int] = field(default_factory=dict)  # folded tmp id -> the person it joined
    new_keys: dict[int, list[tuple[str, str]]] = field(default_factory=dict)  # stored person -> keys
    merges: list[tuple[int, int, dict[str, str]]] = field(default_factory=list)  # (survivor, merged, keys)
    conflicts: dict[tuple[int, int], dict[str, str]] = field(default_factory=dict)
    next_tmp: int = -1

    def person(self, pid: int) -> int:
        while pid in self.alias:
            pid = self.alias[pid]
        return self.live.get(pid, pid)


def _older(a: int, b: int) -> bool:
    """Is profile ``a`` older than ``b``? Stored profiles (positive ids, by id) before this batch's
    new ones (negative ids, in creation order)."""
    return (a < 0, abs(a)) < (b < 0, abs(b))


def _load(batch: _Batch, all_keys: set[tuple[str, str]]) -> None:
    """One query per key kind for the batch's keys, one for their profiles' persons, one for the
    unionids of those persons' clusters."""
    by_kind: dict[str, list[str]] = {}
    for kind, value in all_keys:
        by_kind.setdefault(kind, []).append(value)
    for kind, values in by_kind.items():
        for value, pid in bulk.select_in(ProfileKey, ("value", "profile"), {"kind": kind}, "value", values):
            batch.owner[(kind, value)] = pid
    owners = sorted(set(batch.owner.values()))
    for pid, into in bulk.select_in(Profile, ("id", "merged_into"), {}, "id", owners):
        batch.live[pid] = into or pid
    persons = sorted(set(batch.live.values()))
    for owner, owner_into, unionid in _cluster_unionids(persons):
        batch.unionids.setdefault(owner_into or owner, set()).add(unionid)


def _cluster_unionids(persons: list[int]) -> list[tuple[int, int | None, str]]:
    """(key's profile, that profile's merged_into, unionid) of every unionid key of these persons'
    clusters. Two index reads (the profiles merged into the persons, then the unionid keys of the
    persons and of those), not one join with ``profile_id IN (...) OR merged_into_id IN (...)``:
    PostgreSQL planned that as a read of every unionid key of the table, each batch, above all
    while an import fills empty tables (no statistics yet)."""
    into: dict[int, int | None] = dict.fromkeys(persons)
    into.update(bulk.select_in(Profile, ("id", "merged_into"), {}, "merged_into", persons))
    got = bulk.select_in(ProfileKey, ("profile", "value"), {"kind": "unionid"}, "profile", sorted(into))
    return [(pid, into[pid], value) for pid, value in got]


def _new_person(batch: _Batch) -> int:
    tmp = batch.next_tmp
    batch.next_tmp -= 1
    batch.pending[tmp] = _Pending(tmp)
    batch.live[tmp] = tmp
    return tmp


def _give_key(batch: _Batch, person: int, key: tuple[str, str]) -> None:
    batch.owner[key] = person
    if person < 0:
        batch.pending[person].keys.append(key)
    else:
        batch.new_keys.setdefault(person, []).append(key)
    if key[0] == "unionid":
        batch.unionids.setdefault(person, set()).add(key[1])


def _merge(batch: _Batch, a: int, b: int, keys: dict[str, str]) -> int:
    """Join persons ``a`` and ``b`` (the older survives); returns the survivor."""
    survivor, young = (a, b) if _older(a, b) else (b, a)
    if young < 0:  # a profile of this batch, not stored yet: fold it (its keys go with it, unstored)
        for key in batch.pending.pop(young).keys:
            _give_key(batch, survivor, key)
        batch.alias[young] = survivor
    else:
        batch.merges.append((survivor, young, keys))
        for pid, person in list(batch.live.items()):
            if person == young:
                batch.live[pid] = survivor
        for key in batch.new_keys.pop(young, []):  # not stored yet: they go to the person
            _give_key(batch, survivor, key)
    batch.unionids.setdefault(survivor, set()).update(batch.unionids.pop(young, set()))
    return survivor


def _found(batch: _Batch, keys: list[tuple[str, str]]) -> list[int]:
    """The persons a row's keys name, in key order, each once."""
    found: list[int] = []
    for key in keys:
        pid = batch.owner.get(key)
        if pid is not None:
            p = batch.person(pid)
            if p not in found:
                found.append(p)
    return found


def _new_unionid_conflict(batch: _Batch, found: list[int], keys_doc: dict[str, str]) -> int | None:
    """A row whose own (new) unionid differs from the unionids of persons its other keys name:
    the unionid names a person of its own (the first key decides), in conflict with them."""
    row_unionid = keys_doc.get("unionid", "")
    if not row_unionid or ("unionid", row_unionid) in batch.owner:
        return None
    others = [p for p in found if batch.unionids.get(p, set()) - {row_unionid}]
    if not others:
        return None
    target = _new_person(batch)
    _give_key(batch, target, ("unionid", row_unionid))
    for other in others:
        batch.conflicts.setdefault((target, other), keys_doc)
    return target


def _resolve_row(batch: _Batch, keys: list[tuple[str, str]]) -> int:
    """Where one row's keys take it (updating the batch's in-memory state)."""
    found = _found(batch, keys)
    keys_doc = dict(keys)
    if not found:
        target = _new_person(batch)
        for key in keys:
            _give_key(batch, target, key)
        return target
    apart = _new_unionid_conflict(batch, found, keys_doc)
    if apart is not None:
        return apart
    target = found[0]
    conflicted = False
    for other in found[1:]:
        mine, theirs = batch.unionids.get(target, set()), batch.unionids.get(other, set())
        if mine and theirs and mine != theirs:
            conflicted = True
            batch.conflicts.setdefault((target, other), keys_doc)
            continue
        target = _merge(batch, target, other, keys_doc)
    if not conflicted:
        for key in keys:
            if key not in batch.owner:
                _give_key(batch, target, key)
    return target


def resolve_keys(
    rows_keys: Sequence[Mapping[str, object]], *, source: str, dry_run: bool = False, operator: str = ""
) -> list[int | None]:
    """Resolve each row's customer keys to a person (a live profile id), creating and merging
    profiles by the rules of docs/cdp.md, for a whole batch at once.

    ``rows_keys[i]`` maps key kinds (``unionid``, ``member_no``, ``phone``, ``external_userid``,
    ``openid``; other entries are ignored) to values; phones are normalised (``normalise_phone``),
    empty values ignored. Returns, per row, the live profile id, or None when the row has no
    usable key. With ``dry_run`` nothing is written and a row that would create a profile gets a
    negative placeholder id (rows sharing a new person share it).

    Rules: keys are looked at in the order unionid, member_no, phone, external_userid, openid.
    Keys that name nobody are added to the person found (or to a new profile). Keys naming two
    persons merge them (the older survives: its ``merged_into`` stays NULL, the younger one's and
    every profile merged into the younger one point at the survivor) unless both carry different
    non-empty unionids: then the row goes to the person its first key names, its new keys to
    nobody, and an ``IdentityConflict`` (reason ``unionid_mismatch``) is recorded. A row whose
    own unionid is new but whose other keys name a person with another unionid creates a person
    for that unionid, in conflict with the other. A stored key never moves.

    ``source`` goes into the new keys' ``source`` column (``import``, ``api``, ``wecom``,
    ``manual``... cut to 16 characters) and the history's detail. History rows: ``created``
    (detail ``{"keys": {kind: value}, "source"}``), ``key_added`` (``{"keys": [[kind, value]...],
    "source"}``), ``merged`` on the younger profile (``{"into": survivor, "repointed": [ids that
    were merged into it and now point at the survivor], "keys": the row's keys, "source"}``) and on
    the survivor (``{"merged": younger, "repointed": [...], ...}``), ``conflict`` on both
    (``{"other": id, "reason", "keys", "source"}``).

    Set-based: one query per key kind to look up the batch's keys (plus two for their persons),
    bulk inserts of the new profiles, keys and history; call it with batches (e.g. 1,000-5,000 rows).
    Writes run in one transaction (joined when the caller has one).
    """
    return _resolve(rows_keys, source=source, dry_run=dry_run, operator=operator)[0]


def _resolve(
    rows_keys: Sequence[Mapping[str, object]], *, source: str, dry_run: bool, operator: str
) -> tuple[list[int | None], set[int]]:
    """``resolve_keys``, plus the ids of the persons this batch created."""
    batch = _Batch(source=source[:16] or "import")
    parsed = [row_keys(k) for k in rows_keys]
    if dry_run:
        out_dry = [None if r is None else batch.person(r) for r in _resolve_rows(batch, parsed)]
        return out_dry, {r for r in out_dry if r is not None and r < 0}
    with transaction.atomic():
        _serialise_resolution()
        resolved = _resolve_rows(batch, parsed)
        created = _write(batch, operator)
    out: list[int | None] = []
    for r in resolved:
        if r is None:
            out.append(None)
            continue
        p = batch.person(r)
        out.append(created[p] if p < 0 else p)
    return out, set(created.values())


def _resolve_rows(batch: _Batch, parsed: list[list[tuple[str, str]]]) -> list[int | None]:
    """The batch's stored keys read, then each row resolved in memory (placeholders for new persons)."""
    _load(batch, {key for keys in parsed for key in keys})
    return [_resolve_row(batch, keys) if keys else None for keys in parsed]


RESOLUTION_LOCK = 0x5359_5550_524F  # pg_advisory_xact_lock key of identity resolution ("SYUPRO")


def _serialise_resolution() -> None:
    """One identity resolution at a time, from reading the keys to the commit: two batches that
    meet the same new key in parallel (two imports, an import and the WeCom link) would each find
    nobody and give it to a profile of their own, one of them losing the key. SQLite's IMMEDIATE
    transactions serialise writers already; PostgreSQL takes a transaction-level advisory lock
    (released at the commit of the caller's transaction)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [RESOLUTION_LOCK])


def _write(batch: _Batch, operator: str) -> dict[int, int]:
    """Store the batch's new profiles, keys, merges, conflicts and their history; returns the new
    profiles' ids by placeholder."""
    now = timezone.now()
    history: list[dict[str, Any]] = []
    pending = sorted(batch.pending.values(), key=lambda p: -p.tmp)
    created: dict[int, int] = {}
    if pending:
        rows = []
        for p in pending:
            first = dict(reversed(p.keys))  # the first key of each kind
            rows.append(
                {
                    "name": "",
                    "unionid": first.get("unionid", ""),
                    "phone": first.get("phone", "")[:20],
                    "member_no": first.get("member_no", "")[:64],
                    "gender": 0,
                    "member_level": "",
                    "points": 0,
                    "join_store": "",
                    "attributes": {},
                    "custom": {},
                    "created_at": now,
                    "updated_at": now,
                }
            )
        ids = [r[0] for r in bulk.insert(Profile, rows, returning=["id"])]
        for p, pid in zip(pending, ids, strict=True):
            created[p.tmp] = pid
            history.append(
                _hist(pid, "created", {"keys": dict(p.keys), "source": batch.source}, operator, now),
            )

    def real(pid: int) -> int:
        p = batch.person(pid)
        return created[p] if p < 0 else p

    key_rows: list[dict[str, Any]] = []
    for p in pending:
        key_rows += [_key_row(created[p.tmp], k, batch.source, now) for k in p.keys]
    for person, keys in batch.new_keys.items():
        key_rows += [_key_row(person, k, batch.source, now) for k in keys]
        history.append(
            _hist(person, "key_added", {"keys": [list(k) for k in keys], "source": batch.source}, operator, now)
        )
    _fill_display_keys(batch.new_keys)
    if key_rows:
        bulk.insert(ProfileKey, key_rows, conflict=["kind", "value"])

    for survivor, young, row_keys_doc in batch.merges:
        history += _store_merge(survivor, young, row_keys_doc, batch.source, operator, now)

    history += _store_conflicts(batch, real, operator, now)
    if history:
        bulk.insert(ProfileHistory, history)
    return created


def _store_conflicts(batch: _Batch, real: Callable[[int], int], operator: str, now: datetime) -> list[dict[str, Any]]:
    """Record the batch's conflicts (once per pair and reason); returns their history rows."""
    conflict_rows = []
    for (a, b), keys in batch.conflicts.items():
        pa, pb = real(a), real(b)
        if pa == pb:
            continue
        conflict_rows.append(
            {
                "profile": pa,
                "other": pb,
                "reason": "unionid_mismatch",
                "keys": keys,
                "source": batch.source[:64],
                "status": IdentityConflict.Status.OPEN,
                "resolved_by": "",
                "created_at": now,
            }
        )
    if not conflict_rows:
        return []
    # a conflict already recorded (an import sent again) is not recorded, nor written to history, twice
    new = bulk.insert(
        IdentityConflict, conflict_rows, conflict=["profile", "other", "reason"], returning=["profile", "other"]
    )
    history: list[dict[str, Any]] = []
    keys_of = {(r["profile"], r["other"]): r["keys"] for r in conflict_rows}
    for pa, pb in new:
        detail = {"reason": "unionid_mismatch", "keys": keys_of[(pa, pb)], "source": batch.source}
        history.append(_hist(pa, "conflict", {"other": pb, **detail}, operator, now))
        history.append(_hist(pb, "conflict", {"other": pa, **detail}, operator, now))
    return history


def _key_row(pid: int, key: tuple[str, str], source: str, now: datetime) -> dict[str, Any]:
    return {"profile": pid, "kind": key[0], "value": key[1], "customer": None, "source": source, "created_at": now}


def _hist(pid: int, kind: str, detail: dict[str, Any], operator: str, now: datetime) -> dict[str, Any]:
    return {"profile": pid, "kind": kind, "detail": detail, "operator": operator, "at": now}


def _fill_display_keys(new_keys: Mapping[int, Sequence[tuple[str, str]]]) -> None:
    """Copy a stored profile's first new unionid / phone / member number into its display column
    when that is empty (the profile page and segments read them): one prepared UPDATE per column,
    run for many profiles (``WHERE ... = ''`` keeps a value already there)."""
    limits = {"unionid": 64, "phone": 20, "member_no": 64}
    by_column: dict[str, list[tuple[str, int]]] = {k: [] for k in limits}
    for pid, keys in new_keys.items():
        for kind, value in dict(reversed(keys)).items():
            if kind in by_column:
                by_column[kind].append((value[: limits[kind]], pid))
    qn = connection.ops.quote_name
    table = qn(Profile._meta.db_table)
    if connection.vendor == "postgresql":
        # one statement a column, the values bound as binary arrays (an executemany through
        # Django's cursor is one client-side formatted statement a profile: thousands an import)
        import psycopg  # lazy: only on PostgreSQL

        connection.ensure_connection()
        with psycopg.Cursor(connection.connection) as pg_cur:
            for column, params in by_column.items():
                if params:
                    col = qn(column)
                    pg_cur.execute(
                        f"UPDATE {table} AS p SET {col} = v.val FROM unnest(%b::text[], %b::bigint[]) AS v(val, pid)"
                        f" WHERE p.id = v.pid AND p.{col} = ''",
                        [[v for v, _ in params], [pid for _, pid in params]],
                    )
        return
    with connection.cursor() as cur:
        for column, params in by_column.items():
            if params:
                col = qn(column)
                cur.executemany(f"UPDATE {table} SET {col} = %s WHERE id = %s AND {col} = ''", params)


def _store_merge(
    survivor: int, young: int, keys: Mapping[str, str], source: str, operator: str, now: datetime
) -> list[dict[str, Any]]:
    """Point ``young`` (and every profile merged into it) at ``survivor``; keys, orders and events
    stay where they are. Returns the history rows."""
    repointed = sorted(Profile.objects.filter(merged_into_id=young).values_list("id", flat=True))
    Profile.objects.filter(Q(id=young) | Q(merged_into_id=young)).update(merged_into_id=survivor, updated_at=now)
    Profile.objects.filter(id=survivor).update(updated_at=now)
    detail = {"repointed": repointed, "keys": dict(keys), "source": source, "reason": "auto"}
    rows = [
        _hist(young, "merged", {"into": survivor, **detail}, operator, now),
        _hist(survivor, "merged", {"merged": young, **detail}, operator, now),
    ]
    rows += [_hist(pid, "merged", {"into": survivor, "via": young, **detail}, operator, now) for pid in repointed]
    return rows


# --- member data ----------------------------------------------------------------------------------


class FieldErrors(Exception):
    """A row's field errors ({field: message}); the row is not written."""

    def __init__(self, errors: dict[str, str]):
        super().__init__(errors)
        self.errors = errors


def custom_fields() -> dict[str, CustomField]:
    """The active custom fields by key (for validating imported values)."""
    return {f.key: f for f in CustomField.objects.filter(active=True)}


MEMBER_FIELDS = ("name", "gender", "member_level", "points", "birthday", "join_store", "member_joined_at")


@dataclass
class MemberResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    profile_ids: list[int | None] = field(default_factory=list)


def upsert_members(
    rows: Sequence[Mapping[str, Any]], *, source: str, dry_run: bool = False, operator: str = ""
) -> MemberResult:
    """Write member data onto the persons the rows' keys resolve to (one batch, one transaction).

    Each row is already checked by the caller (commerce's ingestion): ``keys`` (a mapping of key
    kinds, the member number among them), ``fields`` (any of ``MEMBER_FIELDS`` with Python values:
    ``gender`` 0/1/2, ``points`` int, ``birthday`` a date, ``member_joined_at`` an aware datetime),
    ``attributes`` (a dict merged into the profile's), ``custom`` ({key: value}, values checked by
    ``clean_custom_value``; None clears). A row counts as ``created`` when its person is new,
    ``updated`` when a value changed, else ``unchanged`` (nothing written). Field changes are
    ``field_changed`` history rows (``{"fields": {name: [old, new]}, "source"}``).
    """
    result = MemberResult()
    ids, created = _resolve([r["keys"] for r in rows], source=source, dry_run=dry_run, operator=operator)
    result.profile_ids = ids
    existing = {p.id: p for p in Profile.objects.filter(id__in=[i for i in ids if i and i > 0])}
    now = timezone.now()
    changed_profiles: dict[int, Profile] = {}
    history: list[dict[str, Any]] = []
    counted_new: set[int] = set()
    for row, pid in zip(rows, ids, strict=True):
        if pid is None:
            continue
        profile = existing.get(pid)
        changes = _member_changes(profile, row) if profile is not None else {}
        if pid in created and pid not in counted_new:
            counted_new.add(pid)
            result.created += 1
        elif changes or profile is None:
            result.updated += 1
        else:
            result.unchanged += 1
        if changes and profile is not None:
            changed_profiles[pid] = profile
            history.append(_hist(pid, "field_changed", {"fields": _jsonable(changes), "source": source}, operator, now))
    if not dry_run and changed_profiles:
        with transaction.atomic():
            for p in changed_profiles.values():
                p.updated_at = now
            Profile.objects.bulk_update(
                list(changed_profiles.values()), [*MEMBER_FIELDS, "attributes", "custom", "updated_at"], batch_size=500
            )
            bulk.insert(ProfileHistory, history)
    return result


def _member_changes(profile: Profile, row: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Apply a member row to ``profile`` in memory; returns {field: (old, new)} of what changed."""
    changes: dict[str, tuple[Any, Any]] = {}
    for name, value in (row.get("fields") or {}).items():
        if name not in MEMBER_FIELDS:
            continue
        old = getattr(profile, name)
        if old != value:
            changes[name] = (old, value)
            setattr(profile, name, value)
    attrs = row.get("attributes")
    if attrs:
        merged = {**profile.attributes, **attrs}
        if merged != profile.attributes:
            changes["attributes"] = (profile.attributes, merged)
            profile.attributes = merged
    custom = row.get("custom")
    if custom:
        merged = dict(profile.custom)
        for k, v in custom.items():
            if v is None:
                merged.pop(k, None)
            else:
                merged[k] = v
        if merged != profile.custom:
            changes["custom"] = (profile.custom, merged)
            profile.custom = merged
    return changes


def _jsonable(changes: Mapping[str, tuple[Any, Any]]) -> dict[str, list[Any]]:
    def j(v: Any) -> Any:
        if isinstance(v, datetime | date):
            return v.isoformat()
        if isinstance(v, Decimal):
            return str(v)
        return v

    return {k: [j(a), j(b)] for k, (a, b) in changes.items()}


def person_ids(profile_ids: Iterable[int]) -> dict[int, int]:
    """The person (live profile) of each profile id."""
    ids = list(set(profile_ids))
    return {pid: into or pid for pid, into in Profile.objects.filter(id__in=ids).values_list("id", "merged_into_id")}


# =================================================================================================
# Merges (part B). A person is a live profile (merged_into IS NULL) and the profiles merged into
# it. Merges are flat: merging X into S re-points every profile merged into X to S, and the
# history row says which (so unmerging X restores them). Keys, orders and events never move.
# =================================================================================================
Kind = ProfileKey.Kind
History = ProfileHistory.Kind


class MergeRefused(ValueError):
    """The rules forbid this merge (e.g. two different unionids); the message says why."""


# member data a merge copies onto the survivor where the survivor has none (unmerge restores them)
FILLABLE = ("name", "unionid", "phone", "member_no", "gender", "birthday", "member_level", "points", "join_store")
_EMPTY: tuple[object, ...] = ("", None, 0)


def live_profile(profile_id: int) -> Profile:
    """The live profile (the person) ``profile_id`` belongs to; Profile.DoesNotExist if unknown."""
    p = Profile.objects.get(id=profile_id)
    return Profile.objects.get(id=p.merged_into_id) if p.merged_into_id else p


def _cluster(person_id: int) -> list[int]:
    return [person_id, *Profile.objects.filter(merged_into_id=person_id).values_list("id", flat=True)]


def cluster_unionids(person_id: int) -> set[str]:
    """The unionids a person's cluster holds (keys and the profiles' own column)."""
    ids = _cluster(person_id)
    keys = set(ProfileKey.objects.filter(profile_id__in=ids, kind=Kind.UNIONID).values_list("value", flat=True))
    cols = set(Profile.objects.filter(id__in=ids).exclude(unionid="").values_list("unionid", flat=True))
    return keys | cols


def merge_refusal(a_id: int, b_id: int) -> str:
    """Why two persons may not be merged ("" when they may)."""
    if a_id == b_id:
        return _("这是同一个客户档案。")
    ua, ub = cluster_unionids(a_id), cluster_unionids(b_id)
    if ua and ub and ua != ub:
        return _("两个档案的微信开放平台 ID 不同：同一个微信用户只有一个这样的 ID，所以他们不是同一个人，不能合并。")
    return ""


def _json_value(value: object) -> object:
    return value.isoformat() if isinstance(value, date | datetime) else value


def merge(survivor_id: int, other_id: int, *, operator: str = "", reason: str = "manual") -> Profile:
    """Merge the person ``other_id`` into the person ``survivor_id`` (both taken as the live
    profiles they belong to). Raises MergeRefused when the rules forbid it. Returns the survivor."""
    with transaction.atomic():
        survivor = live_profile(survivor_id)
        other = live_profile(other_id)
        # lock both rows (PostgreSQL; SQLite serialises writers anyway)
        locked = {p.id: p for p in Profile.objects.select_for_update().filter(id__in=[survivor.id, other.id])}
        survivor, other = locked[survivor.id], locked[other.id]
        if survivor.merged_into_id or other.merged_into_id:
            raise MergeRefused(_("档案已被合并，请刷新后重试。"))
        why = merge_refusal(survivor.id, other.id)
        if why:
            raise MergeRefused(why)
        repointed = list(Profile.objects.filter(merged_into_id=other.id).values_list("id", flat=True))
        Profile.objects.filter(id__in=repointed).update(merged_into_id=survivor.id)
        filled: dict[str, object] = {}
        for name in FILLABLE:
            mine, theirs = getattr(survivor, name), getattr(other, name)
            if mine in _EMPTY and theirs not in _EMPTY:
                filled[name] = _json_value(mine)
                setattr(survivor, name, theirs)
        custom_filled = [k for k, v in other.custom.items() if k not in survivor.custom and v not in ("", None, [])]
        for k in custom_filled:
            survivor.custom[k] = other.custom[k]
        survivor.save()
        Profile.objects.filter(id=other.id).update(merged_into_id=survivor.id, updated_at=timezone.now())
        detail = {
            "merged": other.id,
            "other_name": other.name,
            "repointed": repointed,
            "filled": filled,
            "custom_filled": custom_filled,
            "reason": reason,
        }
        ProfileHistory.objects.create(profile=survivor, kind=History.MERGED, detail=detail, operator=operator)
        ProfileHistory.objects.create(
            profile=other,
            kind=History.MERGED,
            detail={"into": survivor.id, "into_name": survivor.name, "reason": reason},
            operator=operator,
        )
        for pid in repointed:
            ProfileHistory.objects.create(
                profile_id=pid,
                kind=History.MERGED,
                detail={"into": survivor.id, "into_name": survivor.name, "repointed_from": other.id, "reason": reason},
                operator=operator,
            )
    return survivor


def unmerge(profile_id: int, *, operator: str = "") -> Profile:
    """Make the merged profile ``profile_id`` a person of its own again: the profiles that were
    merged into it before it was merged (re-pointed to the survivor then) follow it back, and the
    member data the merge copied onto the survivor is put back where the survivor still holds it."""
    with transaction.atomic():
        p = Profile.objects.select_for_update().get(id=profile_id)
        if not p.merged_into_id:
            raise MergeRefused(_("这个档案没有被合并，无需拆分。"))
        survivor = Profile.objects.select_for_update().get(id=p.merged_into_id)
        record = (
            ProfileHistory.objects.filter(profile_id=survivor.id, kind=History.MERGED, detail__merged=p.id)
            .order_by("-at", "-id")
            .first()
        )
        detail: Mapping[str, Any] = record.detail if record is not None else {}
        back = [int(i) for i in detail.get("repointed", [])]
        Profile.objects.filter(id__in=back, merged_into_id=survivor.id).update(merged_into_id=p.id)
        changed = False
        for name, old in (detail.get("filled") or {}).items():
            if name in FILLABLE and _json_value(getattr(survivor, name)) == _json_value(getattr(p, name)):
                model_field = Profile._meta.get_field(name)
                setattr(survivor, name, model_field.to_python(old) if isinstance(model_field, Field) else old)
                changed = True
        for k in detail.get("custom_filled") or []:
            if k in survivor.custom and survivor.custom.get(k) == p.custom.get(k):
                del survivor.custom[k]
                changed = True
        if changed:
            survivor.save()
        p.merged_into = None
        p.save(update_fields=["merged_into", "updated_at"])
        ProfileHistory.objects.create(
            profile=survivor,
            kind=History.UNMERGED,
            detail={"other": p.id, "other_name": p.name, "restored": back},
            operator=operator,
        )
        ProfileHistory.objects.create(
            profile=p,
            kind=History.UNMERGED,
            detail={"from": survivor.id, "from_name": survivor.name, "restored": back},
            operator=operator,
        )
    return p


def resolve_conflict(
    conflict_id: int, action: str, *, operator: str, survivor_id: int | None = None
) -> IdentityConflict:
    """``action``: ``keep_apart`` or ``merge`` (only where the rules allow it: never two
    different unionids; ``survivor_id`` is one of the two, else the older survives)."""
    with transaction.atomic():
        c = IdentityConflict.objects.select_for_update().get(id=conflict_id)
        if c.status != IdentityConflict.Status.OPEN:
            raise MergeRefused(_("这个冲突已经处理过了。"))
        if action == "merge":
            a, b = live_profile(c.profile_id).id, live_profile(c.other_id).id
            if survivor_id is not None and survivor_id not in (c.profile_id, c.other_id, a, b):
                raise MergeRefused(_("保留的档案必须是冲突中的两个档案之一。"))
            keep = live_profile(survivor_id).id if survivor_id is not None else min(a, b)
            merge(keep, b if keep == a else a, operator=operator, reason="conflict")
            c.status = IdentityConflict.Status.MERGED
        elif action == "keep_apart":
            c.status = IdentityConflict.Status.KEPT_APART
        else:
            raise MergeRefused(_("未知的处理方式。"))
        c.resolved_by = operator
        c.resolved_at = timezone.now()
        c.save(update_fields=["status", "resolved_by", "resolved_at"])
        for pid, other in ((c.profile_id, c.other_id), (c.other_id, c.profile_id)):
            ProfileHistory.objects.create(
                profile_id=pid,
                kind=History.CONFLICT,
                detail={"other": other, "reason": c.reason, "resolved": c.status},
                operator=operator,
            )
    return c


# =================================================================================================
# Linking WeCom customers (part B). Every customer is a person: an ``external_userid`` key (with
# ``customer`` set) and its ``unionid`` key when WeCom gives one. The backfill is set-based (one
# transaction of INSERT ... SELECT); the incremental link walks the customers' id and updated_at
# watermarks (a worker timer, see ``profiles.tasks``) and resolves each changed customer row.
# =================================================================================================
LINK_BATCH = 500


def _vendor_json(sql_literal: str) -> str:
    return f"CAST({sql_literal} AS jsonb)" if connection.vendor == "postgresql" else sql_literal


def link_backfill() -> int:
    """Give every customer without an ``external_userid`` key a person, set-based: the person
    their unionid already names (a member imported first), else a new profile (customers sharing
    a unionid share one). Customers already linked whose unionid has no key yet go through
    ``link_customers`` (the merge rules). Returns how many customers were linked.

    One transaction, a handful of statements over a temporary table: a new person's id is
    ``base + customer id`` (base: the largest profile id; ids need not be dense), so no row is
    numbered or looked up twice. 1,000,000 customers: see bench/profiles_link.py."""
    src_sql, src_params = customer_selectors.identity_queryset().query.sql_with_params()
    pg = connection.vendor == "postgresql"
    now = timezone.now()
    ext = Kind.EXTERNAL_USERID.value
    uni = Kind.UNIONID.value
    with transaction.atomic(), connection.cursor() as cur:
        if pg:
            cur.execute("LOCK TABLE profiles_profile IN SHARE ROW EXCLUSIVE MODE")
        cur.execute("SELECT COALESCE(MAX(id), 0) FROM profiles_profile")
        row = cur.fetchone()
        base = int(row[0]) if row else 0
        cur.execute("DROP TABLE IF EXISTS prof_link_tmp")
        cur.execute(
            "CREATE TEMP TABLE prof_link_tmp (customer_id bigint PRIMARY KEY, external_userid varchar(64), "
            "unionid varchar(64), name varchar(128), gender integer, person_id bigint, is_new integer)"
        )
        # the person a known unionid names; a customer without a unionid: a new person of its own
        cur.execute(
            "INSERT INTO prof_link_tmp (customer_id, external_userid, unionid, name, gender, person_id, is_new) "
            "SELECT c.id, c.external_userid, c.unionid, c.name, c.gender, "
            "COALESCE(p.merged_into_id, p.id, CASE WHEN c.unionid = '' THEN %s + c.id END), "
            "CASE WHEN p.id IS NULL THEN 1 ELSE 0 END "
            f"FROM ({src_sql}) c "
            "LEFT JOIN profiles_profilekey k ON k.kind = %s AND k.value = c.unionid AND c.unionid <> '' "
            "LEFT JOIN profiles_profile p ON p.id = k.profile_id "
            "WHERE NOT EXISTS (SELECT 1 FROM profiles_profilekey x WHERE x.kind = %s AND x.value = c.external_userid)",
            [base, *src_params, uni, ext],
        )
        cur.execute("SELECT COUNT(*) FROM prof_link_tmp")
        row = cur.fetchone()
        n = int(row[0]) if row else 0
        if not n:
            cur.execute("DROP TABLE prof_link_tmp")
            return 0
        # a new unionid: one new person per unionid, numbered after its first customer
        # (is_new never changes: the index and the subquery see the same rows while person_id is set)
        cur.execute("CREATE INDEX prof_link_tmp_u ON prof_link_tmp (unionid, customer_id) WHERE is_new = 1")
        cur.execute(
            "UPDATE prof_link_tmp SET person_id = %s + (SELECT MIN(t.customer_id) FROM prof_link_tmp t "
            "WHERE t.is_new = 1 AND t.unionid = prof_link_tmp.unionid) WHERE person_id IS NULL",
            [base],
        )
        leaders = "FROM prof_link_tmp WHERE is_new = 1 AND person_id = %s + customer_id"
        empty = _vendor_json("'{}'")
        cur.execute(
            "INSERT INTO profiles_profile (id, name, unionid, phone, member_no, gender, member_level, points, "
            "join_store, attributes, custom, created_at, updated_at) "
            f"SELECT person_id, name, unionid, '', '', gender, '', 0, '', {empty}, {empty}, %s, %s {leaders} "
            "ORDER BY person_id",
            [now, now, base],
        )
        cur.execute(
            "INSERT INTO profiles_profilekey (profile_id, kind, value, customer_id, source, created_at) "
            "SELECT person_id, %s, external_userid, customer_id, 'wecom', %s FROM prof_link_tmp "
            "ORDER BY external_userid",  # in the unique index's order: appends, not random page splits
            [ext, now],
        )
        cur.execute(
            "INSERT INTO profiles_profilekey (profile_id, kind, value, customer_id, source, created_at) "
            f"SELECT person_id, %s, unionid, NULL, 'wecom', %s {leaders} AND unionid <> '' ORDER BY unionid",
            [uni, now, base],
        )
        created = _vendor_json('\'{"source": "wecom"}\'')
        cur.execute(
            "INSERT INTO profiles_profilehistory (profile_id, kind, detail, operator, at) "
            f"SELECT person_id, %s, {created}, '', %s {leaders} ORDER BY person_id",
            [History.CREATED.value, now, base],
        )
        # customers joining a person that existed (or another customer's new person): a key_added row each
        cur.execute(
            "SELECT customer_id, person_id, external_userid FROM prof_link_tmp "
            "WHERE NOT (is_new = 1 AND person_id = %s + customer_id)",
            [base],
        )
        joined = cur.fetchall()
        if pg:
            cur.execute(
                "SELECT setval(pg_get_serial_sequence('profiles_profile', 'id'), "
                "(SELECT COALESCE(MAX(id), 1) FROM profiles_profile))"
            )
        cur.execute("DROP TABLE prof_link_tmp")
    ProfileHistory.objects.bulk_create(
        [
            ProfileHistory(
                profile_id=pid,
                kind=History.KEY_ADDED,
                detail={"keys": {ext: value}, "customer": cid, "source": "wecom"},
            )
            for cid, pid, value in joined
        ],
        batch_size=1000,
    )
    return n


def link_customers(rows: Iterable[customer_selectors.CustomerIdentity]) -> int:
    """Link WeCom customer rows to their persons by the identity rules (``resolve_keys``: a new
    person, the person their unionid names, or a merge when the unionid joins two; a conflict when
    the unionids differ); their ``external_userid`` keys then point at the customer rows, and a
    person without a name takes the customer's nickname. Returns how many rows were linked."""
    rows = list(rows)
    if not rows:
        return 0
    keys = [{"external_userid": r["external_userid"], "unionid": r["unionid"]} for r in rows]
    by_ext = {r["external_userid"]: r for r in rows}
    with transaction.atomic():
        persons = resolve_keys(keys, source="wecom")
        unpointed = list(
            ProfileKey.objects.filter(kind=Kind.EXTERNAL_USERID, value__in=list(by_ext), customer__isnull=True)
        )
        for k in unpointed:
            k.customer_id = by_ext[k.value]["id"]
        ProfileKey.objects.bulk_update(unpointed, ["customer"], batch_size=500)
        names = {pid: r["name"][:128] for r, pid in zip(rows, persons, strict=True) if pid is not None and r["name"]}
        unnamed = list(Profile.objects.filter(id__in=list(names), name="").only("id", "name"))
        for p in unnamed:
            p.name = names[p.id]
        Profile.objects.bulk_update(unnamed, ["name"], batch_size=500)
    return len(rows)


CATCH_UP = 10_000


def unlinked_unionids() -> list[customer_selectors.CustomerIdentity]:
    """Customers whose unionid no key holds yet (WeCom gave it after they were linked)."""
    rows = (
        customer_selectors.identity_queryset()
        .exclude(unionid="")
        .exclude(unionid__in=ProfileKey.objects.filter(kind=Kind.UNIONID).values("value"))
        .order_by("id")[:CATCH_UP]
    )
    return [customer_selectors.CustomerIdentity(**r) for r in rows]  # type: ignore[typeddict-item]


def link_step(state: Mapping[str, Any]) -> dict[str, Any]:
    """One pass of the incremental link from the watermarks in ``state`` (``after_id``: the last
    customer id seen; ``since`` / ``since_id``: the last (updated_at, id) seen). Without a state
    (a first run, or a worker that lost its timer) the backfill catches up first. Returns the next
    state."""
    if "after_id" not in state:
        start = timezone.now()
        link_backfill()
        # customers linked before WeCom gave their unionid: the merge rules, row by row
        link_customers(unlinked_unionids()[:CATCH_UP])
        max_id = (
            ProfileKey.objects.filter(kind=Kind.EXTERNAL_USERID, customer__isnull=False)
            .order_by("-customer_id")
            .values_list("customer_id", flat=True)
            .first()
        )
        return {"after_id": max_id or 0, "since": start.isoformat(), "since_id": 0}
    after_id = int(state.get("after_id") or 0)
    since = datetime.fromisoformat(str(state.get("since")))
    since_id = int(state.get("since_id") or 0)
    new = customer_selectors.identities_after(after_id, LINK_BATCH)
    link_customers(new)
    if new:
        after_id = new[-1]["id"]
    changed = customer_selectors.identities_changed_since(since, since_id, LINK_BATCH)
    # a settled walk (core.paging.settle): a customer committed late with an earlier time is seen
    fresh, at, since_id = paging.settle(
        "profiles.link", [(r["updated_at"], r["id"], r) for r in changed], since, since_id
    )
    since = at or since
    seen = {r["id"] for r in new}
    link_customers(r[2] for r in fresh if r[1] not in seen)
    return {"after_id": after_id, "since": since.isoformat(), "since_id": since_id, "more": len(new) + len(fresh)}


# =================================================================================================
# Custom fields and profile edits (part B). ``clean_custom_value`` is the one check of a custom
# value: the console form, the REST PATCH and the imports (part A) all call it.
# =================================================================================================
MAX_TEXT = 500
KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_OPTIONS = 100


class CustomValueError(ValueError):
    """A custom value that does not fit its field; the message (Chinese, through gettext) says why."""


def clean_custom_value(field: CustomField, raw: object) -> Any:
    """The stored form of ``raw`` for ``field``, or None for "no value" (the key is removed).
    Raises CustomValueError (a ValueError) when the value does not fit the field's type:
    text → str (≤ 500, no control characters), number → int or float, date → "YYYY-MM-DD",
    choice → one of the options, multi → a list of options (a list, or a text split on ``|`` or
    commas). The console form, the REST PATCH and the imports all check values with it."""
    if raw is None or (isinstance(raw, str) and not raw.strip()) or (isinstance(raw, list | tuple) and not raw):
        return None
    t = field.type
    if t == CustomField.Type.TEXT:
        return _clean_text(raw)
    if t == CustomField.Type.NUMBER:
        return _clean_number(raw)
    if t == CustomField.Type.DATE:
        return _clean_date(raw)
    options = [str(o) for o in field.options or []]
    if t == CustomField.Type.CHOICE:
        value = str(raw).strip() if isinstance(raw, str | int) and not isinstance(raw, bool) else None
        if value is None or value not in options:
            raise CustomValueError(_("请从选项中选择：%(opts)s。") % {"opts": "、".join(options)})
        return value
    if t == CustomField.Type.MULTI:
        return _clean_multi(raw, options)
    raise CustomValueError(_("未知的字段类型。"))


def _clean_text(raw: object) -> str:
    if not isinstance(raw, str | int | float) or isinstance(raw, bool):
        raise CustomValueError(_("请输入文本。"))
    text = str(raw).strip()
    if len(text) > MAX_TEXT:
        raise CustomValueError(_("文本不能超过 %(n)s 个字符。") % {"n": MAX_TEXT})
    try:
        return inputs.check_text(text)
    except ValueError as exc:
        raise CustomValueError(_("文本中有不允许的字符。")) from exc


def _clean_multi(raw: object, options: list[str]) -> list[str] | None:
    items = re.split(r"[|,，]", raw) if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise CustomValueError(_("请选择一个或多个选项。"))
    values = list(dict.fromkeys(i.strip() for i in items if i.strip()))
    bad = [v for v in values if v not in options]
    if bad:
        raise CustomValueError(_("不是可选的选项：%(bad)s。") % {"bad": "、".join(bad[:5])})
    return sorted(values, key=options.index) or None


def _clean_number(raw: object) -> int | float:
    if isinstance(raw, bool):
        raise CustomValueError(_("请输入数字。"))
    try:
        d = Decimal(str(raw).strip().replace(",", ""))
    except (InvalidOperation, ValueError) as exc:
        raise CustomValueError(_("请输入数字。")) from exc
    if not d.is_finite() or abs(d) >= Decimal(10) ** 15:
        raise CustomValueError(_("数字超出范围。"))
    return int(d) if d == d.to_integral_value() else float(d)


def _clean_date(raw: object) -> str:
    if isinstance(raw, datetime):
        raw = raw.date()
    if isinstance(raw, date):
        d = raw
    else:
        try:
            d = date.fromisoformat(str(raw).strip()[:10])
        except ValueError as exc:
            raise CustomValueError(_("请输入日期（如 2024-05-20）。")) from exc
    if not date(1900, 1, 1) <= d <= date(2100, 12, 31):
        raise CustomValueError(_("日期超出范围。"))
    return d.isoformat()


def clean_custom_values(raw: Mapping[str, object], *, fields: Iterable[CustomField] | None = None) -> dict[str, object]:
    """Check several custom values (``{key: raw}``) against the active fields: the cleaned values
    (None = remove) or ValidationError with ``{key: message}`` (unknown keys are errors too)."""
    by_key = {f.key: f for f in (fields if fields is not None else CustomField.objects.filter(active=True))}
    out: dict[str, object] = {}
    errors: dict[str, list[str]] = {}
    for key, value in raw.items():
        f = by_key.get(key)
        if f is None:
            errors[key] = [_("没有这个自定义字段。")]
            continue
        try:
            out[key] = clean_custom_value(f, value)
        except CustomValueError as exc:
            errors[key] = [str(exc)]
    if errors:
        raise ValidationError(errors)
    return out


def _field_key_error(key: str, instance: CustomField | None) -> str:
    if instance is not None and key != instance.key:
        return _("字段的键创建后不能修改（导入和接口都用它）。")
    if not KEY_RE.match(key):
        return _("键须以小写字母开头，只含小写字母、数字和下划线，最多 32 个字符。")
    others = CustomField.objects.filter(key=key)
    if instance is not None:
        others = others.exclude(id=instance.id)
    if others.exists():
        return _("已有这个键的字段。")
    return ""


def _field_options(raw_opts: object, ftype: str, errors: dict[str, str]) -> list[str]:
    if isinstance(raw_opts, str):
        raw_opts = re.split(r"[\n,，]", raw_opts)
    if not isinstance(raw_opts, list | tuple) or not all(isinstance(o, str) for o in raw_opts):
        errors["options"] = _("选项须是文本列表。")
        return []
    if ftype not in (CustomField.Type.CHOICE, CustomField.Type.MULTI):
        return []
    opts = list(dict.fromkeys(o.strip() for o in raw_opts if o.strip()))
    if not opts:
        errors["options"] = _("单选和多选字段至少要有一个选项。")
    elif len(opts) > MAX_OPTIONS or any(len(o) > 64 for o in opts):
        errors["options"] = _("最多 100 个选项，每个最多 64 个字符。")
    return opts


def clean_field_definition(data: Mapping[str, Any], *, instance: CustomField | None = None) -> dict[str, Any]:
    """Check a custom field's definition (key, label, type, options, order, active): the values to
    store, or ValidationError with ``{field: message}``. Key and type never change once created."""
    errors: dict[str, str] = {}
    key = str(data.get("key", instance.key if instance else "")).strip()
    if msg := _field_key_error(key, instance):
        errors["key"] = msg
    label = str(data.get("label", instance.label if instance else "")).strip()
    if not label or len(label) > 32:
        errors["label"] = _("请填写字段名（最多 32 个字符）。")
    ftype = str(data.get("type", instance.type if instance else ""))
    if ftype not in CustomField.Type.values:
        errors["type"] = _("请选择字段类型。")
    elif instance is not None and ftype != instance.type:
        errors["type"] = _("字段类型创建后不能修改（已有的值会失效）。")
    opts = _field_options(data.get("options", instance.options if instance else []), ftype, errors)
    order = data.get("order", instance.order if instance else 0)
    is_int = not isinstance(order, bool) and isinstance(order, int | str) and str(order).lstrip("-").isdigit()
    if not is_int or abs(int(order)) > 1_000_000:
        errors["order"] = _("排序须是整数。")
    if errors:
        raise ValidationError(errors)
    active = bool(data.get("active", instance.active if instance else True))
    return {"key": key, "label": label, "type": ftype, "options": opts, "order": int(order), "active": active}


def save_field(data: Mapping[str, Any], *, instance: CustomField | None = None) -> CustomField:
    clean = clean_field_definition(data, instance=instance)
    if instance is None:
        return CustomField.objects.create(**clean)
    for k, v in clean.items():
        setattr(instance, k, v)
    instance.save()
    return instance


def delete_field(field: CustomField) -> None:
    """Delete a field's definition (values stay on the profiles, unread, until a field with the
    same key comes back)."""
    field.delete()


# profile attributes an operator may edit, with their checks
EDITABLE = ("name", "member_level", "points", "birthday", "gender", "join_store")


def _clean_attribute(name: str, raw: object) -> object:
    if name in ("name", "member_level", "join_store"):
        limit = {"name": 128, "member_level": 32, "join_store": 64}[name]
        if raw is None:
            return ""
        if not isinstance(raw, str) or len(raw.strip()) > limit:
            raise ValidationError(_("最多 %(n)s 个字符。") % {"n": limit})
        try:
            return inputs.check_text(raw.strip())
        except ValueError as exc:
            raise ValidationError(_("文本中有不允许的字符。")) from exc
    if name == "points":
        if raw is None or raw == "":
            return 0
        value = _clean_number(raw)
        if not isinstance(value, int) or abs(value) > 10**12:
            raise ValidationError(_("积分须是整数。"))
        return value
    if name == "birthday":
        if raw in (None, ""):
            return None
        return date.fromisoformat(_clean_date(raw))
    if name == "gender":
        if raw not in (0, 1, 2, "0", "1", "2"):
            raise ValidationError(_("性别取值为 0（未知）、1（男）、2（女）。"))
        return int(str(raw))
    raise ValidationError(_("这个字段不能修改。"))


def _clean_edit(
    attributes: Mapping[str, object], custom: Mapping[str, object]
) -> tuple[dict[str, object], dict[str, object]]:
    errors: dict[str, list[str]] = {}
    clean_attrs: dict[str, object] = {}
    for name, raw in attributes.items():
        if name not in EDITABLE:
            errors[name] = [_("这个字段不能修改。")]
            continue
        try:
            clean_attrs[name] = _clean_attribute(name, raw)
        except ValidationError as exc:
            errors[name] = exc.messages
        except CustomValueError as exc:
            errors[name] = [str(exc)]
    clean_custom: dict[str, object] = {}
    if custom:
        try:
            clean_custom = clean_custom_values(custom)
        except ValidationError as exc:
            for key, msgs in exc.message_dict.items():
                errors[f"custom.{key}"] = msgs
    if errors:
        raise ValidationError(errors)
    return clean_attrs, clean_custom


def update_profile(
    person_id: int,
    *,
    attributes: Mapping[str, object] | None = None,
    custom: Mapping[str, object] | None = None,
    operator: str = "",
) -> Profile:
    """Edit a person's attributes (``EDITABLE``) and custom values (``{key: raw}``; None or ""
    removes a value). Everything is checked first (ValidationError with ``{field: messages}``,
    custom keys as ``custom.<key>``), then written with one ``field_changed`` history row."""
    clean_attrs, clean_custom = _clean_edit(attributes or {}, custom or {})
    with transaction.atomic():
        p = Profile.objects.select_for_update().get(id=person_id)
        changes: dict[str, list[object]] = {}
        for name, value in clean_attrs.items():
            old = getattr(p, name)
            if old != value:
                changes[name] = [_json_value(old), _json_value(value)]
                setattr(p, name, value)
        for key, value in clean_custom.items():
            old = p.custom.get(key)
            if old != value:
                changes[f"custom.{key}"] = [old, value]
                if value is None:
                    p.custom.pop(key, None)
                else:
                    p.custom[key] = value
        if changes:
            p.save()
            ProfileHistory.objects.create(
                profile=p, kind=History.FIELD_CHANGED, detail={"changes": changes}, operator=operator
            )
    return p
