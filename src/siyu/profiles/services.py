"""Writes and rules of the profiles app.

Sections (two parts of issue 17 write here; keep them apart):
- identity resolution and member upserts (``resolve_keys``, ``upsert_members``, ``normalise_phone``);
- merges: ``merge`` / ``unmerge`` / ``resolve_conflict`` (flat clusters, every step in the history);
- linking WeCom customers: ``link_backfill`` (set-based) and ``link_customers`` (incremental);
- custom fields: ``clean_custom_value`` (also used by imports), field CRUD and profile edits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Field
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.core import inputs
from siyu.customers import selectors as customer_selectors
from siyu.profiles.models import CustomField, IdentityConflict, Profile, ProfileHistory, ProfileKey

Kind = ProfileKey.Kind
History = ProfileHistory.Kind


# =================================================================================================
# Merges (part B). A person is a live profile (merged_into IS NULL) and the profiles merged into
# it. Merges are flat: merging X into S re-points every profile merged into X to S, and the
# history row says which (so unmerging X restores them). Keys, orders and events never move.
# =================================================================================================
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
            "other": other.id,
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
            ProfileHistory.objects.filter(profile_id=survivor.id, kind=History.MERGED, detail__other=p.id)
            .order_by("-at", "-id")
            .first()
        )
        detail: Mapping[str, Any] = record.detail if record is not None else {}
        back = [int(i) for i in detail.get("repointed", [])]
        Profile.objects.filter(id__in=back, merged_into_id=survivor.id).update(merged_into_id=p.id)
        changed = False
        for name, old in (detail.get("filled") or {}).items():
            if name in FILLABLE and _json_value(getattr(survivor, name)) == _json_value(getattr(p, name)):
                field = Profile._meta.get_field(name)
                setattr(survivor, name, field.to_python(old) if isinstance(field, Field) else old)
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


def merge_older(a_id: int, b_id: int, *, operator: str = "", reason: str = "auto") -> Profile:
    """Merge two persons, the older (smaller id) surviving: the automatic rule."""
    a, b = live_profile(a_id).id, live_profile(b_id).id
    return merge(min(a, b), max(a, b), operator=operator, reason=reason)


def record_conflict(profile_id: int, other_id: int, *, reason: str, keys: Mapping[str, str], source: str = "") -> None:
    """An IdentityConflict between two persons (once per pair and reason), in both histories."""
    pair = sorted((live_profile(profile_id).id, live_profile(other_id).id))
    if pair[0] == pair[1]:
        return
    _conflict, created = IdentityConflict.objects.get_or_create(
        profile_id=pair[0],
        other_id=pair[1],
        reason=reason,
        defaults={"keys": dict(keys), "source": source},
    )
    if created:
        for a, b in (pair, pair[::-1]):
            ProfileHistory.objects.create(
                profile_id=a, kind=History.CONFLICT, detail={"other": b, "reason": reason, "keys": dict(keys)}
            )


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
    a unionid share it). Customers already linked whose unionid has no key yet go through
    ``link_customers`` (the merge rules). Returns how many customers were linked."""
    src_sql, src_params = customer_selectors.identity_queryset().query.sql_with_params()
    pg = connection.vendor == "postgresql"
    now = timezone.now()
    ext = Kind.EXTERNAL_USERID.value
    uni = Kind.UNIONID.value
    with transaction.atomic(), connection.cursor() as cur:
        if pg:
            cur.execute("LOCK TABLE profiles_profile IN SHARE ROW EXCLUSIVE MODE")
        cur.execute("DROP TABLE IF EXISTS prof_link_tmp")
        cur.execute("DROP TABLE IF EXISTS prof_link_new")
        cur.execute(
            "CREATE TEMP TABLE prof_link_tmp (customer_id bigint PRIMARY KEY, external_userid varchar(64), "
            "unionid varchar(64), name varchar(128), gender integer, person_id bigint)"
        )
        cur.execute(
            "INSERT INTO prof_link_tmp (customer_id, external_userid, unionid, name, gender) "
            f"SELECT c.id, c.external_userid, c.unionid, c.name, c.gender FROM ({src_sql}) c "
            "WHERE NOT EXISTS (SELECT 1 FROM profiles_profilekey k WHERE k.kind = %s AND k.value = c.external_userid)",
            [*src_params, ext],
        )
        cur.execute("SELECT COUNT(*) FROM prof_link_tmp")
        row = cur.fetchone()
        n = int(row[0]) if row else 0
        if not n:
            cur.execute("DROP TABLE prof_link_tmp")
            return 0
        cur.execute("CREATE INDEX prof_link_tmp_u ON prof_link_tmp (unionid)")
        # a unionid key names a person already: join it
        cur.execute(
            "UPDATE prof_link_tmp SET person_id = (SELECT COALESCE(p.merged_into_id, p.id) FROM profiles_profilekey k "
            "JOIN profiles_profile p ON p.id = k.profile_id WHERE k.kind = %s AND k.value = prof_link_tmp.unionid) "
            "WHERE unionid <> ''",
            [uni],
        )
        cur.execute("SELECT COALESCE(MAX(id), 0) FROM profiles_profile")
        row = cur.fetchone()
        base = int(row[0]) if row else 0
        # one new profile per customer without a unionid, and per new unionid (its first customer)
        cur.execute(
            "CREATE TEMP TABLE prof_link_new AS "
            "SELECT customer_id, %s + ROW_NUMBER() OVER (ORDER BY customer_id) AS pid "
            "FROM prof_link_tmp WHERE person_id IS NULL AND (unionid = '' OR customer_id IN "
            "(SELECT MIN(customer_id) FROM prof_link_tmp WHERE person_id IS NULL AND unionid <> '' GROUP BY unionid))",
            [base],
        )
        cur.execute("CREATE UNIQUE INDEX prof_link_new_c ON prof_link_new (customer_id)")
        cur.execute(
            "UPDATE prof_link_tmp SET person_id = (SELECT n.pid FROM prof_link_new n "
            "WHERE n.customer_id = prof_link_tmp.customer_id) WHERE person_id IS NULL "
            "AND customer_id IN (SELECT customer_id FROM prof_link_new)"
        )
        cur.execute(
            "UPDATE prof_link_tmp SET person_id = (SELECT t.person_id FROM prof_link_tmp t JOIN prof_link_new n "
            "ON n.customer_id = t.customer_id WHERE t.unionid = prof_link_tmp.unionid) "
            "WHERE person_id IS NULL AND unionid <> ''"
        )
        empty = _vendor_json("'{}'")
        cur.execute(
            "INSERT INTO profiles_profile (id, name, unionid, phone, member_no, gender, member_level, points, "
            "join_store, attributes, custom, created_at, updated_at) "
            f"SELECT n.pid, t.name, t.unionid, '', '', t.gender, '', 0, '', {empty}, {empty}, %s, %s "
            "FROM prof_link_new n JOIN prof_link_tmp t ON t.customer_id = n.customer_id",
            [now, now],
        )
        cur.execute(
            "INSERT INTO profiles_profilekey (profile_id, kind, value, customer_id, source, created_at) "
            "SELECT person_id, %s, external_userid, customer_id, 'wecom', %s FROM prof_link_tmp",
            [ext, now],
        )
        cur.execute(
            "INSERT INTO profiles_profilekey (profile_id, kind, value, customer_id, source, created_at) "
            "SELECT n.pid, %s, t.unionid, NULL, 'wecom', %s FROM prof_link_new n "
            "JOIN prof_link_tmp t ON t.customer_id = n.customer_id WHERE t.unionid <> ''",
            [uni, now],
        )
        created = _vendor_json('\'{"source": "wecom"}\'')
        cur.execute(
            "INSERT INTO profiles_profilehistory (profile_id, kind, detail, operator, at) "
            f"SELECT pid, %s, {created}, '', %s FROM prof_link_new",
            [History.CREATED.value, now],
        )
        # customers joining a person that existed: a key_added row each
        cur.execute(
            "SELECT customer_id, person_id, external_userid FROM prof_link_tmp "
            "WHERE customer_id NOT IN (SELECT customer_id FROM prof_link_new)"
        )
        joined = cur.fetchall()
        if pg:
            cur.execute(
                "SELECT setval(pg_get_serial_sequence('profiles_profile', 'id'), "
                "(SELECT COALESCE(MAX(id), 1) FROM profiles_profile))"
            )
        cur.execute("DROP TABLE prof_link_new")
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


def _add_key(person_id: int, kind: str, value: str, *, customer_id: int | None = None) -> bool:
    """Add a key to a person (never moves one): False when the key names a profile already."""
    _key, created = ProfileKey.objects.get_or_create(
        kind=kind, value=value, defaults={"profile_id": person_id, "customer_id": customer_id, "source": "wecom"}
    )
    if created:
        detail: dict[str, Any] = {"keys": {kind: value}, "source": "wecom"}
        if customer_id:
            detail["customer"] = customer_id
        ProfileHistory.objects.create(profile_id=person_id, kind=History.KEY_ADDED, detail=detail)
    return created


def _person_of_key(kind: str, value: str) -> int | None:
    row = ProfileKey.objects.filter(kind=kind, value=value).values_list("profile_id", "profile__merged_into_id").first()
    return (row[1] or row[0]) if row else None


def link_customer(c: customer_selectors.CustomerIdentity) -> int:
    """Link one WeCom customer row to its person (creating, attaching or merging per the rules);
    returns the person's id."""
    ext, uni = c["external_userid"], (c["unionid"] or "").strip()
    with transaction.atomic():
        person = _person_of_key(Kind.EXTERNAL_USERID, ext)
        by_union = _person_of_key(Kind.UNIONID, uni) if uni else None
        if person is None:
            if by_union is None:
                p = Profile.objects.create(name=c["name"][:128], unionid=uni, gender=c["gender"] or 0)
                ProfileHistory.objects.create(profile=p, kind=History.CREATED, detail={"source": "wecom"})
                person = p.id
            else:
                person = by_union
            _add_key(person, Kind.EXTERNAL_USERID, ext, customer_id=c["id"])
            if uni and by_union is None:
                _add_key(person, Kind.UNIONID, uni)
            return person
        if not uni or by_union == person:
            return person
        if by_union is None:
            mine = cluster_unionids(person)
            if mine and uni not in mine:
                return person  # WeCom gave another unionid than the person's: never two on one person
            _add_key(person, Kind.UNIONID, uni)
            Profile.objects.filter(id=person, unionid="").update(unionid=uni)
            return person
        # the unionid names another person: the same human, unless their unionids differ
        if merge_refusal(person, by_union):
            record_conflict(person, by_union, reason="unionid_mismatch", keys={"external_userid": ext, "unionid": uni})
            return person
        return merge_older(person, by_union, reason="unionid").id


def link_customers(rows: Iterable[customer_selectors.CustomerIdentity]) -> int:
    n = 0
    for row in rows:
        link_customer(row)
        n += 1
    return n


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
    link_customers(changed)
    if changed:
        since, since_id = changed[-1]["updated_at"], changed[-1]["id"]
    return {"after_id": after_id, "since": since.isoformat(), "since_id": since_id, "more": len(new) + len(changed)}


# =================================================================================================
# Custom fields and profile edits (part B). ``clean_custom_value`` is the one check of a custom
# value: the console form, the REST PATCH and the imports (part A) all call it.
# =================================================================================================
MAX_TEXT = 500
KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_OPTIONS = 100


def clean_custom_value(field: CustomField, raw: object) -> object:
    """The stored form of ``raw`` for ``field``, or None for "no value" (the key is removed).
    Raises ValidationError (a Chinese message) when the value does not fit the field's type:
    text → str (≤ 500), number → int or float, date → "YYYY-MM-DD", choice → one of the options,
    multi → a list of options (a list, or a text split on commas)."""
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
            raise ValidationError(_("请从选项中选择：%(opts)s。") % {"opts": "、".join(options)})
        return value
    if t == CustomField.Type.MULTI:
        return _clean_multi(raw, options)
    raise ValidationError(_("未知的字段类型。"))


def _clean_text(raw: object) -> str:
    if not isinstance(raw, str | int | float) or isinstance(raw, bool):
        raise ValidationError(_("请输入文本。"))
    text = str(raw).strip()
    if len(text) > MAX_TEXT:
        raise ValidationError(_("文本不能超过 %(n)s 个字符。") % {"n": MAX_TEXT})
    try:
        return inputs.check_text(text)
    except ValueError as exc:
        raise ValidationError(_("文本中有不允许的字符。")) from exc


def _clean_multi(raw: object, options: list[str]) -> list[str] | None:
    items = [s.strip() for s in raw.split(",")] if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ValidationError(_("请选择一个或多个选项。"))
    values = list(dict.fromkeys(i.strip() for i in items if i.strip()))
    bad = [v for v in values if v not in options]
    if bad:
        raise ValidationError(_("不是可选的选项：%(bad)s。") % {"bad": "、".join(bad[:5])})
    return sorted(values, key=options.index) or None


def _clean_number(raw: object) -> int | float:
    if isinstance(raw, bool):
        raise ValidationError(_("请输入数字。"))
    try:
        d = Decimal(str(raw).strip().replace(",", ""))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationError(_("请输入数字。")) from exc
    if not d.is_finite() or abs(d) >= Decimal(10) ** 15:
        raise ValidationError(_("数字超出范围。"))
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
            raise ValidationError(_("请输入日期（如 2024-05-20）。")) from exc
    if not date(1900, 1, 1) <= d <= date(2100, 12, 31):
        raise ValidationError(_("日期超出范围。"))
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
        except ValidationError as exc:
            errors[key] = exc.messages
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
