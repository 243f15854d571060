"""Writes and rules of the profiles app.

Identity resolution (``resolve_keys``) and member upserts (``upsert_members``) are the ingestion
part's (commerce imports, REST batches); identity operations by hand, WeCom customer linking and
custom-field definitions are written beside them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from siyu.core import bulk
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
    digits = _NON_DIGITS.sub("", str(value))
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
        for start in range(0, len(values), 5000):
            chunk = values[start : start + 5000]
            for value, pid in ProfileKey.objects.filter(kind=kind, value__in=chunk).values_list("value", "profile_id"):
                batch.owner[(kind, value)] = pid
    owners = sorted(set(batch.owner.values()))
    for start in range(0, len(owners), 5000):
        for pid, into in Profile.objects.filter(id__in=owners[start : start + 5000]).values_list(
            "id", "merged_into_id"
        ):
            batch.live[pid] = into or pid
    persons = sorted(set(batch.live.values()))
    for start in range(0, len(persons), 5000):
        some = persons[start : start + 5000]
        rows = ProfileKey.objects.filter(kind="unionid").filter(
            Q(profile_id__in=some) | Q(profile__merged_into_id__in=some)
        )
        for owner, owner_into, unionid in rows.values_list("profile_id", "profile__merged_into_id", "value"):
            batch.unionids.setdefault(owner_into or owner, set()).add(unionid)


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
    _load(batch, {key for keys in parsed for key in keys})
    resolved: list[int | None] = [_resolve_row(batch, keys) if keys else None for keys in parsed]
    if dry_run:
        out_dry = [None if r is None else batch.person(r) for r in resolved]
        return out_dry, {r for r in out_dry if r is not None and r < 0}
    with transaction.atomic():
        created = _write(batch, operator)
    out: list[int | None] = []
    for r in resolved:
        if r is None:
            out.append(None)
            continue
        p = batch.person(r)
        out.append(created[p] if p < 0 else p)
    return out, set(created.values())


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
    """Copy a stored profile's first unionid / phone / member number into its display columns
    when they are empty (the profile page and segments read them)."""
    wanted = {pid: dict(reversed(keys)) for pid, keys in new_keys.items()}
    wanted = {
        pid: {k: v for k, v in ks.items() if k in ("unionid", "phone", "member_no")} for pid, ks in wanted.items()
    }
    wanted = {pid: ks for pid, ks in wanted.items() if ks}
    if not wanted:
        return
    limits = {"unionid": 64, "phone": 20, "member_no": 64}
    for profile in Profile.objects.filter(id__in=list(wanted)).only("id", "unionid", "phone", "member_no"):
        changed = [k for k, v in wanted[profile.id].items() if not getattr(profile, k)]
        for k in changed:
            setattr(profile, k, wanted[profile.id][k][: limits[k]])
        if changed:
            profile.save(update_fields=[*changed, "updated_at"])


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


def clean_custom_value(f: CustomField, value: object) -> Any:
    """A custom field's value checked against its type (raises ValueError with a message).
    None / "" clears the value (returns None). Text: a string (≤ 500); number: int or float;
    date: ISO date string; choice: one of the options; multi: a list (or a "a|b" / "a,b" string)
    of options."""
    if value is None or value == "" or value == []:
        return None
    if f.type == CustomField.Type.TEXT:
        s = str(value).strip()
        if len(s) > 500:
            raise ValueError("too long (max 500)")
        return s
    if f.type == CustomField.Type.NUMBER:
        return _clean_number(value)
    if f.type == CustomField.Type.DATE:
        return _clean_date(value)
    options = [str(o) for o in (f.options or [])]
    if f.type == CustomField.Type.CHOICE:
        s = str(value).strip()
        if s not in options:
            raise ValueError("not one of the options")
        return s
    items = value if isinstance(value, list) else re.split(r"[|,，]", str(value))
    out = []
    for item in items:
        s = str(item).strip()
        if not s:
            continue
        if s not in options:
            raise ValueError(f"not one of the options: {s[:32]}")
        if s not in out:
            out.append(s)
    return out or None


def _clean_number(value: object) -> int | float:
    if isinstance(value, bool):
        raise ValueError("not a number")
    try:
        d = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError("not a number") from None
    if not d.is_finite():
        raise ValueError("not a number")
    return int(d) if d == d.to_integral_value() and abs(d) < 2**53 else float(d)


def _clean_date(value: object) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    try:
        return date.fromisoformat(str(value).strip()[:10]).isoformat()
    except ValueError:
        raise ValueError("not a date (YYYY-MM-DD)") from None


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
