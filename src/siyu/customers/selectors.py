"""Reading customers: lookups other apps use, and the console's scoped list, detail and export."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypedDict

from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    Exists,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, TruncDate
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from siyu.accounts.selectors import DataScope
from siyu.core import paging
from siyu.customers.models import (
    BulkTagJob,
    CustomerEvent,
    FollowRelation,
    FollowTag,
    Tag,
)
from siyu.customers.models import Customer as Customer
from siyu.org import selectors as org_selectors

if TYPE_CHECKING:
    from django.utils.functional import _StrPromise  # django-stubs' type of a lazy gettext string

    from siyu.customers.forms import CustomerFilterForm

# A follow relation's status, for other apps that filter on it (``relations__status``).
RelationStatus = FollowRelation.Status


class GroupReads(Protocol):
    """The groups app's reads the customer list and detail need (see ``use_group_reads``). Their
    rows are the groups app's models (GroupMember, GroupChat), which customers may not import: the
    querysets are typed ``QuerySet[Any]`` here."""

    def customer_stays(self, owner_ids: Iterable[int] | None = None) -> QuerySet[Any]: ...
    def active_chats(self, owner_ids: Iterable[int] | None = None) -> QuerySet[Any]: ...
    def chat_pk(self, chat_id: str) -> int | None: ...


_group_reads: GroupReads | None = None


def use_group_reads(reads: GroupReads) -> None:
    """Called by the groups app's ready(): groups depends on customers (its members are customers,
    their joins go on the customer's timeline), so customers never imports groups."""
    global _group_reads
    _group_reads = reads


def _groups() -> GroupReads:
    if _group_reads is None:
        raise RuntimeError("siyu.groups is not installed: no group reads registered")
    return _group_reads


ChannelNames = Callable[[Iterable[str]], dict[str, str]]
_channel_names: ChannelNames | None = None


def use_channel_names(fn: ChannelNames) -> None:
    """Called by the channels app's ready() (channels sits above customers): ``fn(states)`` gives
    the channel code's name of each state it knows, so the customer pages show channels by name."""
    global _channel_names
    _channel_names = fn


def channel_names(states: Iterable[str]) -> dict[str, str]:
    """State → the channel's name, for the states a channel code carries (others are left out)."""
    states = {s for s in states if s}
    return _channel_names(states) if states and _channel_names is not None else {}


def group_chat_pk(chat_id: str) -> int | None:
    """The id of the group ``chat_id`` (the customer list's group filter takes ids)."""
    return _groups().chat_pk(chat_id)


def customer_ids_by_external(external_userids: Iterable[str]) -> dict[str, int]:
    """Customer ids by external_userid, for the ids that are customers here."""
    ids = [e for e in set(external_userids) if e]
    if not ids:
        return {}
    return dict(Customer.objects.filter(external_userid__in=ids).values_list("external_userid", "id"))


def transfers_seen_since(external_userids: Iterable[str], since: datetime) -> dict[str, int]:
    """Per customer, the moves made elsewhere (e.g. WeCom's admin console) since ``since`` that we
    saw as a relation ended by DELETE_BY_TRANSFER (the 90-day on-job transfer limit counts them)."""
    seen: dict[str, int] = {}
    for x in CustomerEvent.objects.filter(
        customer__external_userid__in=list(external_userids),
        kind=CustomerEvent.TRANSFERRED,
        at__gt=since,
        detail__by="transfer",
        detail__source="DELETE_BY_TRANSFER",
    ).values_list("customer__external_userid", flat=True):
        seen[x] = seen.get(x, 0) + 1
    return seen


def relation_counts_by_employee(employee_ids: list[int] | None = None) -> dict[int, dict[str, int]]:
    """Per employee: ``active`` relations and ``lost`` ones (relations that ended)."""
    rels = FollowRelation.objects.all()
    if employee_ids is not None:
        rels = rels.filter(employee_id__in=employee_ids)
    out: dict[int, dict[str, int]] = {}
    for eid, status, n in (
        rels.values("employee_id", "status").annotate(n=Count("id")).values_list("employee_id", "status", "n")
    ):
        slot = out.setdefault(eid, {"active": 0, "lost": 0})
        slot["active" if status == FollowRelation.ACTIVE else "lost"] += n
    return out


def customer_total() -> int:
    """Every customer stored, lost ones included (the full sync's count)."""
    return Customer.objects.count()


def customer_count(scope: DataScope) -> int | None:
    """Customers with at least one active relation, within the viewer's scope."""
    if not Customer.objects.exists():
        return None
    ids = org_selectors.employee_ids_for_scope(scope)
    if ids is None:
        return Customer.objects.filter(status=Customer.ACTIVE).count()
    return (
        FollowRelation.objects.filter(employee_id__in=ids, status=FollowRelation.ACTIVE)
        .values("customer_id")
        .distinct()
        .count()
    )


def tag_count(scope: DataScope) -> int | None:
    """Corp tags in use (corp-wide: every role sees the same tag library)."""
    if not Tag.objects.exists():
        return None
    return Tag.objects.filter(deleted=False).count()


# --- the customer console: scoped list, detail, export rows -------------------------------------
# The list runs on a million customers, so it never counts or offsets the whole result: pages are
# keyset ("seek") pages on the sort key plus the id, and the total is counted up to COUNT_CAP rows
# ("10,000+"). Every read goes through ``customer_queryset(scope, ...)``, so lists, exports, bulk
# actions and the API see exactly the customers the viewer's DataScope allows.

PER_PAGE = 50
COUNT_CAP = 10_000

# WeCom add_way (来源定义, doc 92114; part1-customers.md §2.3). 10–13 are marked unverified there.
ADD_WAYS = [
    (0, _("未知来源")),
    (1, _("扫描二维码")),
    (2, _("搜索手机号")),
    (3, _("名片分享")),
    (4, _("群聊")),
    (5, _("手机通讯录")),
    (6, _("微信联系人")),
    (7, _("微信好友申请")),
    (8, _("安装第三方应用时自动添加")),
    (9, _("搜索邮箱")),
    (10, _("视频号添加")),
    (11, _("日程参与人添加")),
    (12, _("会议参与人添加")),
    (13, _("微信小店等添加")),
    (201, _("内部成员共享")),
    (202, _("管理员/负责人分配")),
]

# sort key → (Customer field, descending)
SORTS = {
    "-added": ("first_added_at", True),
    "added": ("first_added_at", False),
    "name": ("name", False),
    "-name": ("name", True),
    "-updated": ("updated_at", True),
    "updated": ("updated_at", False),
}
DEFAULT_SORT = "-added"


@dataclass
class CustomerFilters:
    """What the list is filtered on. Relation-level filters (employee, department, add time, add
    way, channel state, status) match a customer when ONE follow relation within the viewer's scope
    satisfies them all together ("added by 张三 last month through channel X")."""

    tags: list[int] = field(default_factory=list)  # Tag row ids
    tag_mode: str = "any"  # any | all | none
    employee_id: int | None = None
    department_id: int | None = None
    added_from: date | None = None
    added_to: date | None = None  # inclusive day
    add_way: int | None = None
    state: str = ""
    status: str = ""  # "" | active | lost
    group: str = ""  # "" | any | none | <GroupChat id>
    q: str = ""

    def relation_level(self) -> bool:
        return any(
            v not in (None, "")
            for v in (
                self.employee_id,
                self.department_id,
                self.added_from,
                self.added_to,
                self.add_way,
                self.state,
            )
        )


def _day_start(d: date) -> datetime:
    return timezone.make_aware(datetime.combine(d, time.min))


def _scope_employee_ids(scope: DataScope) -> set[int] | None:
    return org_selectors.employee_ids_for_scope(scope)


# How a page is found. Walking the sort index and checking each customer's conditions stops at the
# first page when matches are dense, but never stops when they are sparse; sorting the matching set
# costs as much as the set is large. So: a relation filter matching few relations (counted up to
# RELATION_PROBE) sorts its set; otherwise the index is walked, but only over the next WALK_BUDGET
# customers (a bounded walk, exact when it fills the page), and the set is sorted when it does not.
RELATION_PROBE = 2_000
WALK_BUDGET = 20_000
# The walk checks "has a matching relation" by one probe of the (customer, added_at, employee)
# index per customer walked (a correlated EXISTS): reading every matching relation first costs as
# much as there are, up to a few hundred thousand for a region over a year.
CORRELATED_WALK = True
# Counting and sorting a matching set start from the smaller of its two sides when the list is
# filtered on both tags and relations: the customers carrying the tag(s), or the matching
# relations; the other side is checked per customer. Both sides are counted up to DRIVE_PROBE.
DRIVE_PROBE = 60_000
# With tags and relation filters only, the matching ids are computed from both sides read whole
# when each has at most SET_READ rows (see _matching_ids); a set this small is sorted, not walked.
SET_READ = 60_000
SET_SORT = 5_000
# On SQLite, when the walk did not fill the page, both sides are read whole if each has at most
# WIDE_SET_READ rows (~70 ms per 100,000 on a 2-core machine).
WIDE_SET_READ = 200_000
# On PostgreSQL, when a side is larger than that, the database computes the set (INTERSECT /
# EXCEPT: hashed set operations over index-only scans) and returns it when it has at most DB_SET
# customers; such a set is sorted, not walked. Where matches are sparse (two tags, a region, a
# year) a walk would not fill a page and the sort of the whole matching set would be planned as a
# scan of every customer.
DB_SET = 20_000


def _relation_conditions(scope: DataScope, f: CustomerFilters) -> bool:
    """Whether the query restricts relations (a relation filter, or a scope below everything)."""
    return f.relation_level() or _scope_employee_ids(scope) is not None


def _filter_employees(scope: DataScope, f: CustomerFilters) -> set[int] | None:
    """The employees whose relations count: the scope's, narrowed by the employee and department
    filters (None = every employee)."""
    employees = _scope_employee_ids(scope)
    if f.employee_id is not None:
        employees = {f.employee_id} if employees is None else employees & {f.employee_id}
    if f.department_id is not None:
        sub = org_selectors.employee_ids_in_subtree(f.department_id)
        employees = sub if employees is None else employees & sub
    return employees


def _relation_q(f: CustomerFilters) -> Q:
    """The relation-level filters other than employees: add time, add way, channel state."""
    rel = Q()
    if f.added_from:
        rel &= Q(added_at__gte=_day_start(f.added_from))
    if f.added_to:
        rel &= Q(added_at__lt=_day_start(f.added_to + timedelta(days=1)))
    if f.add_way is not None:
        rel &= Q(add_way=f.add_way)
    if f.state:
        rel &= Q(state=f.state)
    return rel


def _matching_relations(scope: DataScope, f: CustomerFilters, *, status: bool = True) -> Q | None:
    """The relation-level filters within the scope (with the status filter unless ``status`` is
    False) as one condition on FollowRelation; None when no employee's relations can match."""
    employees = _filter_employees(scope, f)
    rel = _relation_q(f) & (_relation_status_q(f) if status else Q())
    if employees is not None:
        if not employees:
            return None
        rel &= Q(employee_id__in=sorted(employees))
    return rel


def _relation_rows(scope: DataScope, f: CustomerFilters, cap: int) -> int:
    """How many relations match the relation-level filters (status aside) and the scope, counted
    up to ``cap`` (one covering-index range per employee)."""
    rel = _matching_relations(scope, f, status=False)
    if rel is None:
        return 0
    return FollowRelation.objects.filter(rel).order_by().values("id")[:cap].count()


def _relation_status_q(f: CustomerFilters) -> Q:
    """The status filter on the matching relation (when the list filters relations)."""
    if f.status == Customer.ACTIVE:
        return Q(status=FollowRelation.ACTIVE)
    if f.status == Customer.LOST:
        return Q(status__in=FollowRelation.LOST_STATUSES)
    return Q()


def _follow_tags(scope: DataScope, **lookups: Any) -> QuerySet[FollowTag]:
    """The corp tags (FollowTag rows) matching ``lookups`` that count in the viewer's tag filters:
    every relation's for a scope of everything, otherwise only those on the relations of the
    scope's employees (``FollowTag.employee``, one index range per tag and employee): a customer
    shared with another store must not match, or be excluded by, that store's tags, else the filter
    tells the viewer how the other store tagged the customer."""
    qs = FollowTag.objects.filter(**lookups)
    employees = _scope_employee_ids(scope)
    if employees is not None:
        qs = qs.filter(employee_id__in=sorted(employees))
    return qs


def _read_ids(qs: QuerySet[Any, Any], cap: int) -> set[int] | None:
    """The first column of ``qs`` as a set, or None when it has more than ``cap`` rows."""
    sql, params = qs.order_by()[: cap + 1].query.sql_with_params()
    with connection.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
    return None if len(rows) > cap else {r[0] for r in rows}


def _sets_apply(scope: DataScope, f: CustomerFilters) -> bool:
    """Whether the matching set is tags (any / all / none) and relation conditions only: what
    ``_matching_ids`` and ``_db_matching_ids`` compute."""
    return (
        bool(f.tags)
        and f.tag_mode in ("any", "all", "none")
        and _relation_conditions(scope, f)
        and not f.group
        and not f.q.strip()
    )


def _matching_ids(scope: DataScope, f: CustomerFilters, cap: int = SET_READ) -> list[int] | None:
    """The matching customer ids, when the list is filtered on relations and tags only and both
    sides are small enough to read (``cap`` rows each): the customers of the matching relations
    and those of the tags, read from two covering indexes and intersected here (``none``: taken
    away). Cheaper than either database plan for these, which probe one side per row of the other.
    None when a side turns out larger. Only for what ``_list_plan`` chose it for: tags any / all /
    none, relation conditions, no group or text filter."""
    tags = sorted(set(f.tags))
    rel = _matching_relations(scope, f)
    if rel is None:
        return []
    found = _read_ids(FollowRelation.objects.filter(rel).values_list("customer_id"), cap)
    if found is None:
        return None
    if f.tag_mode == "all":
        for t in tags:
            carrying = _read_ids(_follow_tags(scope, tag_id=t).values_list("customer_id"), cap)
            if carrying is None:
                return None
            found &= carrying
    else:
        carrying = _read_ids(_follow_tags(scope, tag_id__in=tags).values_list("customer_id"), cap)
        if carrying is None:
            return None
        found = found - carrying if f.tag_mode == "none" else found & carrying
    return sorted(found)


def _set_query(scope: DataScope, f: CustomerFilters) -> QuerySet[FollowRelation, tuple[int]] | None:
    """The matching customer ids as one set operation for the database (for tags any / all / none
    and relation conditions, as ``_matching_ids`` computes them here): the matching relations'
    customers INTERSECT the tags' customers (``none``: EXCEPT), hashed set operations over
    index-only scans on PostgreSQL. None when no employee's relations can match."""
    tags = sorted(set(f.tags))
    rel = _matching_relations(scope, f)
    if rel is None:
        return None
    found = FollowRelation.objects.filter(rel).order_by().values_list("customer_id")
    if f.tag_mode == "all":
        return found.intersection(*(_follow_tags(scope, tag_id=t).order_by().values_list("customer_id") for t in tags))
    carrying = _follow_tags(scope, tag_id__in=tags).order_by().values_list("customer_id")
    return found.difference(carrying) if f.tag_mode == "none" else found.intersection(carrying)


def _set_count(scope: DataScope, f: CustomerFilters) -> int | None:
    """On PostgreSQL, the count of a list filtered on tags (any / all) and relations only, as the
    set operation of ``_set_query``, where counting row by row up to the cap probes one side per
    row of the other (several hundred ms for a region over a year). None when this does not apply
    (SQLite builds temporary B-trees for set operations: its row-by-row count is the faster one
    there; "none" keeps most of the relations' customers: counting up to the cap stops sooner)."""
    if connection.vendor != "postgresql" or f.tag_mode not in ("any", "all") or not _sets_apply(scope, f):
        return None
    result = _set_query(scope, f)
    return 0 if result is None else result.count()


def _db_matching_ids(scope: DataScope, f: CustomerFilters) -> list[int] | None:
    """On PostgreSQL, the matching customer ids computed by the database (``_set_query``) when
    there are at most DB_SET of them; None otherwise, or on another database."""
    if connection.vendor != "postgresql" or not _sets_apply(scope, f):
        return None
    result = _set_query(scope, f)
    if result is None:
        return []
    ids = _read_ids(result, DB_SET)
    return None if ids is None else sorted(ids)


def _id_set(ids: list[int]) -> RawSQL:
    """``id IN (these ids)`` for any number of ids, as one bound parameter."""

    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::bigint[])", (ids,))
    return RawSQL("SELECT value FROM json_each(%s)", (json.dumps(ids),))


def _few_relations(scope: DataScope, f: CustomerFilters) -> bool:
    """Whether the relations matching the relation-level filters and the scope are fewer than
    RELATION_PROBE."""
    return _relation_rows(scope, f, RELATION_PROBE) < RELATION_PROBE


def _tag_rows(scope: DataScope, tags: list[int], cap: int) -> int:
    """How many of these tags' rows count for the viewer (``_follow_tags``), up to ``cap``."""
    return _follow_tags(scope, tag_id__in=tags).order_by().values("id")[:cap].count()


class _Plan(NamedTuple):
    how: str
    found: list[int] | None
    relations: int | None  # the relations counted (up to DRIVE_PROBE), None when not counted
    # the database found the matching set larger than DB_SET (≥ COUNT_CAP): the count is capped
    # without running that set operation again
    set_over: bool = False


def _list_plan(scope: DataScope, f: CustomerFilters) -> _Plan:
    """How to find the matching set when the list filters both tags and relations, from the two
    sides' sizes (counted on covering indexes up to DRIVE_PROBE):

    - ``("ids", ids)``: both sides are small (SET_READ): read them and intersect (``_matching_ids``);
    - ``("db_ids", ids)``: on PostgreSQL, a side is larger but the matching set is small (DB_SET):
      computed by the database (``_db_matching_ids``);
    - ``("tags", tag_ids)``: start from the customers of these tags (for "any" all the tags, for
      "all" the rarest one), fewer than the matching relations;
    - ``("relations", None)``: start from the relations (also when there is nothing to choose).

    ``relations``: the relations counted (up to DRIVE_PROBE), None when not counted."""
    tags = sorted(set(f.tags))
    if not tags or f.tag_mode not in ("any", "all", "none") or not _relation_conditions(scope, f):
        return _Plan("relations", None, None)
    relations = _relation_rows(scope, f, DRIVE_PROBE)
    if f.tag_mode == "all":
        sizes = sorted((_tag_rows(scope, [t], DRIVE_PROBE), t) for t in tags)
        smallest, largest, drive = sizes[0][0], sizes[-1][0], [sizes[0][1]]
    else:
        smallest = largest = _tag_rows(scope, tags, DRIVE_PROBE)
        drive = tags
    set_over = False
    if _sets_apply(scope, f):
        if relations < SET_READ and largest < SET_READ:
            ids = _matching_ids(scope, f)
            if ids is not None:
                return _Plan("ids", ids, relations)
        else:
            ids = _db_matching_ids(scope, f)
            if ids is not None:
                return _Plan("db_ids", ids, relations)
            set_over = connection.vendor == "postgresql" and DB_SET >= COUNT_CAP
    if f.tag_mode != "none" and smallest < relations:
        return _Plan("tags", drive, relations, set_over)
    return _Plan("relations", None, relations, set_over)


def customer_queryset(  # noqa: C901 - one filter per CustomerFilters field, in the order the planner needs
    scope: DataScope,
    filters: CustomerFilters | None = None,
    *,
    correlated: bool = False,
    drive_tags: list[int] | None = None,
) -> QuerySet[Customer]:
    """Customers the ``scope`` may see, filtered (unordered).

    The relation conditions are ``id IN (matching relations)`` by default: the database reads the
    matching relations once (the right plan to count or sort a bounded set). ``correlated=True``
    writes them as ``EXISTS (a matching relation of this customer)``, checked row by row: the right
    plan to walk the sort index and stop at the first page (see ``customer_page``).
    ``drive_tags`` (from ``_list_plan``): start from the customers carrying these tags,
    ``id IN (their customers)``, and check the relations row by row."""
    f = filters or CustomerFilters()
    if scope.nothing:
        return Customer.objects.none()
    qs = Customer.objects.all()

    # --- relation-level conditions, all on the same relation --------------------------------
    if _relation_conditions(scope, f):
        rel = _matching_relations(scope, f)
        if rel is None:
            return Customer.objects.none()
        if correlated or drive_tags:
            qs = qs.filter(Exists(FollowRelation.objects.filter(rel, customer_id=OuterRef("pk"))))
        else:
            qs = qs.filter(id__in=FollowRelation.objects.filter(rel).values("customer_id"))
        if f.added_to:
            # Implied by the relation's add time (first_added_at is the earliest relation's): lets
            # the planner start the (first_added_at, id) index walk at the range instead of at the
            # newest customer (PostgreSQL otherwise scans ~all newer customers for ORDER BY … LIMIT).
            qs = qs.filter(first_added_at__lt=_day_start(f.added_to + timedelta(days=1)))
    elif f.status in (Customer.ACTIVE, Customer.LOST):
        qs = qs.filter(status=f.status)

    # --- tags (corp tags on the customer's relations; below everything, the scope's relations') --
    tags = sorted(set(f.tags))
    if drive_tags:
        qs = qs.filter(id__in=_follow_tags(scope, tag_id__in=drive_tags).values("customer_id"))
        tags = [t for t in tags if t not in drive_tags] if f.tag_mode == "all" else []
    if tags:
        if f.tag_mode == "all":
            for t in tags:
                qs = qs.filter(Exists(_follow_tags(scope, customer_id=OuterRef("pk"), tag_id=t)))
        elif f.tag_mode == "none":
            qs = qs.exclude(Exists(_follow_tags(scope, customer_id=OuterRef("pk"), tag_id__in=tags)))
        else:
            qs = qs.filter(Exists(_follow_tags(scope, customer_id=OuterRef("pk"), tag_id__in=tags)))

    # --- group membership (current stays) ----------------------------------------------------
    if f.group:
        # the groups the scope sees (customer_detail's rule)
        stays = (
            _groups()
            .customer_stays(_scope_employee_ids(scope))
            .filter(customer_id=OuterRef("pk"), left_at__isnull=True)
        )
        if f.group == "any":
            qs = qs.filter(Exists(stays))
        elif f.group == "none":
            qs = qs.exclude(Exists(stays))
        elif f.group.isdigit():
            qs = qs.filter(Exists(stays.filter(group_id=int(f.group))))

    # --- free text: nickname, corp names, remarks, remark mobiles (Customer.search_text) -------
    q = f.q.strip().lower()
    if q:
        qs = qs.filter(search_text__contains=q)
        allowed = _scope_employee_ids(scope)
        if allowed is not None:
            # search_text holds every relation's remarks and mobiles: below everything, the match
            # must come from the customer's own fields or a relation within the scope, else another
            # store's remark or mobile could be probed through the search
            own = Q(name__icontains=q) | Q(corp_name__icontains=q) | Q(corp_full_name__icontains=q)
            scoped = FollowRelation.objects.filter(customer_id=OuterRef("pk"), employee_id__in=sorted(allowed)).filter(
                Q(remark__icontains=q) | Q(remark_corp_name__icontains=q) | Q(remark_mobiles__icontains=q)
            )
            qs = qs.filter(own | Exists(scoped))
    return qs


# --- keyset pages ------------------------------------------------------------------------------
# A cursor's sort key value: a name, a time (first_added_at, updated_at) or None
CursorValue = str | int | datetime | None


def encode_cursor(value: CursorValue, pk: int) -> str:
    key: object = {"t": value.isoformat()} if isinstance(value, datetime) else value
    raw = json.dumps([key, pk], ensure_ascii=False, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[CursorValue, int] | None:
    """(value, id) from a cursor, or None for junk (a tampered cursor only moves the viewer within
    their own scoped result)."""
    try:
        value, pk = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if isinstance(value, dict):
            value = datetime.fromisoformat(value["t"])
        if not isinstance(pk, int) or not (value is None or isinstance(value, (str, int, datetime))):
            return None
        return value, pk
    except (ValueError, TypeError, KeyError):
        return None


def _seek(field_name: str, desc: bool, value: CursorValue, pk: int) -> Q:
    """Rows strictly after (value, pk) in the order (field, id) both ``desc`` or both ascending.
    Written as ``field <= v AND (field < v OR id < pk)`` so the first conjunct bounds the index
    range on every database."""
    if value is None:  # NULL sort keys (never for first_added_at in practice): order by id only
        return Q(**{f"{field_name}__isnull": True}) & Q(**{"id__lt" if desc else "id__gt": pk})
    lt, lte = ("lt", "lte") if desc else ("gt", "gte")
    return Q(**{f"{field_name}__{lte}": value}) & (Q(**{f"{field_name}__{lt}": value}) | Q(**{f"id__{lt}": pk}))


@dataclass
class CustomerPage:
    rows: list[Customer]
    sort: str
    has_next: bool
    has_prev: bool
    next_cursor: str = ""
    prev_cursor: str = ""
    count: int | None = None
    count_capped: bool = False
    first: bool = True

    @property
    def count_label(self) -> str:
        if self.count is None:
            return ""
        return f"{self.count:,}+" if self.count_capped else f"{self.count:,}"


def capped_count(qs: QuerySet[Any, Any], cap: int = COUNT_CAP) -> tuple[int, bool]:
    """How many rows, counted up to ``cap`` (then reported as ``cap``+)."""
    n = qs.order_by().values("id")[: cap + 1].count()
    return (cap, True) if n > cap else (n, False)


def _upto(field_name: str, desc: bool, value: CursorValue, pk: int) -> Q:
    """Rows up to and including (value, pk) in the order (field, id) both ``desc`` or ascending."""
    gt, gte = ("gt", "gte") if desc else ("lt", "lte")
    return Q(**{f"{field_name}__{gte}": value}) & (Q(**{f"{field_name}__{gt}": value}) | Q(**{f"id__{gte}": pk}))


def _bounded_walk(
    scope: DataScope, f: CustomerFilters, field_name: str, desc: bool, seek: Q | None, limit: int
) -> list[Customer] | None:
    """The first ``limit`` matches in the order, looking only at the next WALK_BUDGET customers
    of the sort index (from the cursor). Exact when it finds ``limit`` rows, or when the index
    holds no more than the budget; None otherwise (the caller sorts the matching set)."""
    order = [F(field_name).desc(), F("id").desc()] if desc else [F(field_name).asc(), F("id").asc()]
    span = Customer.objects.all()
    if seek is not None:
        span = span.filter(seek)
    if field_name == "first_added_at" and desc and f.added_to:
        # the same bound customer_queryset adds: the walk starts at the range's end
        span = span.filter(first_added_at__lt=_day_start(f.added_to + timedelta(days=1)))
    edge = list(span.order_by(*order).values_list(field_name, "id")[WALK_BUDGET - 1 : WALK_BUDGET])
    if (
        field_name == "first_added_at"
        and not desc
        and f.added_from
        and edge
        and edge[0][0] is not None
        and edge[0][0] < _day_start(f.added_from)
    ):
        # oldest first, and every customer in the budget was first added before the range: only
        # one with a second, later relation could match; the walk would find ~nothing
        return None
    qs = customer_queryset(scope, f, correlated=CORRELATED_WALK)
    if seek is not None:
        qs = qs.filter(seek)
    if edge:
        value, pk = edge[0]
        if value is None:
            return None
        qs = qs.filter(_upto(field_name, desc, value, pk))
    rows = list(qs.order_by(*order)[:limit])
    return rows if len(rows) == limit or not edge else None


def customer_page(  # noqa: C901 - one keyset walk (cursor, bounds, count) that reads better whole
    scope: DataScope,
    filters: CustomerFilters | None = None,
    sort: str = DEFAULT_SORT,
    after: str = "",
    before: str = "",
    per_page: int = PER_PAGE,
    with_count: bool = True,
) -> CustomerPage:
    """One keyset page of the scoped, filtered list. ``after`` / ``before`` are cursors from a
    previous page's ``next_cursor`` / ``prev_cursor``."""
    sort = sort if sort in SORTS else DEFAULT_SORT
    field_name, desc = SORTS[sort]
    f = filters or CustomerFilters()
    plan = _list_plan(scope, f)
    how, found, relations = plan.how, plan.found, plan.relations
    ids = found if how in ("ids", "db_ids") else None
    if ids is not None:
        base = Customer.objects.filter(id__in=_id_set(ids)) if ids else Customer.objects.none()
    else:
        base = customer_queryset(scope, f, drive_tags=found if how == "tags" else None)
    backwards = False
    seek = None
    cur = decode_cursor(after) if after else None
    if cur is not None:
        seek = _seek(field_name, desc, *cur)
    elif before and (cur := decode_cursor(before)) is not None:
        backwards = True
        seek = _seek(field_name, not desc, *cur)
    walk_desc = desc != backwards  # the direction this page is read in

    rows: list[Customer] | None = None
    if ids is not None and len(ids) <= (DB_SET if how == "db_ids" else SET_SORT):
        pass  # a small known set: sorted below
    elif _relation_conditions(scope, f) and not (
        relations < RELATION_PROBE if relations is not None else _few_relations(scope, f)  # counted already?
    ):
        rows = _bounded_walk(scope, f, field_name, walk_desc, seek, per_page + 1)
        if rows is None and ids is None and connection.vendor == "sqlite" and _sets_apply(scope, f):
            # sparse matches over large sides: reading both sides (up to WIDE_SET_READ each) and
            # intersecting them here costs less than SQLite's sort of the set, which probes one
            # side per row of the other (on PostgreSQL, _db_matching_ids has had its chance)
            ids = _matching_ids(scope, f, cap=WIDE_SET_READ)
            if ids is not None:
                base = Customer.objects.filter(id__in=_id_set(ids)) if ids else Customer.objects.none()
    if rows is None:
        # not an index key: the database sorts the matching set (few relations, or sparse matches)
        # rather than walking the whole sort index; without relation conditions the index is walked
        key = Coalesce(F(field_name), F(field_name)) if _relation_conditions(scope, f) else F(field_name)
        order = [key.desc(), F("id").desc()] if walk_desc else [key.asc(), F("id").asc()]
        qs = base.filter(seek) if seek is not None else base
        rows = list(qs.order_by(*order)[: per_page + 1])
    more = len(rows) > per_page
    rows = rows[:per_page]
    if backwards:
        rows.reverse()
        has_prev, has_next = more, True
    else:
        has_prev, has_next = cur is not None, more
    page = CustomerPage(
        rows=rows,
        sort=sort,
        has_next=has_next and bool(rows),
        has_prev=has_prev and bool(rows),
    )
    page.first = not page.has_prev
    if rows:
        page.next_cursor = encode_cursor(getattr(rows[-1], field_name), rows[-1].id)
        page.prev_cursor = encode_cursor(getattr(rows[0], field_name), rows[0].id)
    if with_count:
        n: int | None
        if ids is not None:
            n = len(ids)
        elif plan.set_over:
            n = COUNT_CAP + 1
        else:
            n = _set_count(scope, f)
        if n is not None:
            page.count, page.count_capped = (COUNT_CAP, True) if n > COUNT_CAP else (n, False)
        else:
            page.count, page.count_capped = capped_count(base)
    return page


class RowTag(TypedDict):
    id: int
    name: str
    group: str


class RowDetails(TypedDict):
    """A list row's relations within the scope and the corp tags on them."""

    relations: list[FollowRelation]
    tags: list[RowTag]


def page_row_details(scope: DataScope, customer_ids: list[int]) -> dict[int, RowDetails]:
    """For a page of customers: their relations within the scope (employee, remark, status) and
    the corp tags on those relations, in two queries."""
    out: dict[int, RowDetails] = {cid: {"relations": [], "tags": []} for cid in customer_ids}
    if not customer_ids:
        return out
    allowed = _scope_employee_ids(scope)
    rels = (
        FollowRelation.objects.filter(customer_id__in=customer_ids)
        .select_related("employee")
        .order_by("added_at", "id")
    )
    if allowed is not None:
        rels = rels.filter(employee_id__in=sorted(allowed))
    rel_ids: list[int] = []
    for r in rels:
        out[r.customer_id]["relations"].append(r)
        rel_ids.append(r.id)
    seen: dict[int, set[int]] = {cid: set() for cid in customer_ids}
    for cid, tag_id, name, group in (
        FollowTag.objects.filter(relation_id__in=rel_ids, tag__deleted=False)
        .order_by("tag__group__order", "tag__order", "tag_id")
        .values_list("customer_id", "tag_id", "tag__name", "tag__group__name")
    ):
        if tag_id not in seen[cid]:
            seen[cid].add(tag_id)
            out[cid]["tags"].append({"id": tag_id, "name": name, "group": group})
    return out


# --- one customer ----------------------------------------------------------------------------
def customer_in_scope(scope: DataScope, customer_id: int) -> Customer:
    """The customer, or Http404 when there is none and PermissionDenied (403) when the viewer's
    scope holds no relation of theirs."""
    customer = Customer.objects.filter(id=customer_id).first()
    if customer is None:
        raise Http404
    if scope.nothing:
        raise PermissionDenied
    allowed = _scope_employee_ids(scope)
    if (
        allowed is not None
        and not FollowRelation.objects.filter(customer_id=customer_id, employee_id__in=sorted(allowed)).exists()
    ):
        raise PermissionDenied
    return customer


class CustomerDetail(TypedDict):
    customer: Customer
    relations: list[FollowRelation]  # each with its ``tag_list``
    current_groups: list[Any]  # the groups app's GroupMember rows (see GroupReads)
    past_groups: list[Any]
    events: list[CustomerEvent]


def customer_detail(scope: DataScope, customer_id: int, events_limit: int = 200) -> CustomerDetail:
    """Everything the detail page shows, within the viewer's scope: profile, the follow relations
    of the scope's employees with their tags, the group stays in groups the scope's employees own,
    and the timeline of the scope's employees (newest first). Another store's or employee's remark,
    description, mobiles, tags and events are never read (a customer can be shared across stores)."""
    customer = customer_in_scope(scope, customer_id)
    allowed = _scope_employee_ids(scope)
    relations_qs = FollowRelation.objects.filter(customer_id=customer_id)
    stays_qs = _groups().customer_stays(allowed).filter(customer_id=customer_id)
    events_qs = CustomerEvent.objects.filter(customer_id=customer_id)
    if allowed is not None:
        employees = sorted(allowed)
        relations_qs = relations_qs.filter(employee_id__in=employees)
        events_qs = events_qs.filter(employee_id__in=employees)  # an event without an employee is nobody's
    relations = list(relations_qs.select_related("employee").order_by("added_at", "id"))
    tags: dict[int, list[Tag]] = {r.id: [] for r in relations}
    for ft in (
        FollowTag.objects.filter(relation_id__in=list(tags))
        .select_related("tag", "tag__group")
        .order_by("tag__group__order", "tag__order")
    ):
        tags[ft.relation_id].append(ft.tag)
    for r in relations:
        r.tag_list = tags[r.id]
    stays = list(stays_qs.select_related("group", "group__owner").order_by("-join_time", "-id"))
    events = list(events_qs.select_related("employee").order_by("-at", "-id")[:events_limit])
    return {
        "customer": customer,
        "relations": relations,
        "current_groups": [s for s in stays if s.left_at is None],
        "past_groups": [s for s in stays if s.left_at is not None],
        "events": events,
    }


# --- choices for the filter form (scoped) ---------------------------------------------------
class FilterChoices(TypedDict):
    employees: list[org_selectors.EmployeeChoice]
    departments: list[org_selectors.DepartmentChoice]
    tag_groups: list[tuple[str, list[Tag]]]  # (group name, its live tags)
    group_chats: list[dict[str, Any]]  # id, name, chat_id
    add_ways: list[tuple[int, _StrPromise]]


def filter_choices(scope: DataScope) -> FilterChoices:
    allowed = _scope_employee_ids(scope)
    groups: dict[str, list[Tag]] = {}
    for t in (
        Tag.objects.filter(deleted=False, group__deleted=False)
        .select_related("group")
        .order_by("-group__order", "group_id", "-order", "id")
    ):
        groups.setdefault(t.group.name, []).append(t)
    chats = _groups().active_chats(allowed)
    return {
        "employees": org_selectors.employee_choices(allowed),
        "departments": org_selectors.department_choices(scope),
        "tag_groups": list(groups.items()),
        "group_chats": list(chats.order_by("-created_at")[:300].values("id", "name", "chat_id")),
        "add_ways": ADD_WAYS,
    }


def export_batches(
    scope: DataScope,
    filters: CustomerFilters | None,
    sort: str = DEFAULT_SORT,
    limit: int = 100_000,
    batch: int = 1000,
) -> Iterator[tuple[list[Customer], dict[int, RowDetails]]]:
    """The scoped, filtered list for export: yields (customers, page_row_details) in batches,
    walking keyset pages (never OFFSET), at most ``limit`` customers."""
    done = 0
    after = ""
    while done < limit:
        page = customer_page(
            scope,
            filters,
            sort=sort,
            after=after,
            per_page=min(batch, limit - done),
            with_count=False,
        )
        if not page.rows:
            return
        yield page.rows, page_row_details(scope, [c.id for c in page.rows])
        done += len(page.rows)
        if not page.has_next:
            return
        after = page.next_cursor


def relations_for_tagging(scope: DataScope, customer_ids: list[int]) -> list[FollowRelation]:
    """The active follow relations of these customers that the viewer may tag (their scope's)."""
    allowed = _scope_employee_ids(scope)
    qs = FollowRelation.objects.filter(customer_id__in=customer_ids, status=FollowRelation.ACTIVE).select_related(
        "customer", "employee"
    )
    if allowed is not None:
        qs = qs.filter(employee_id__in=sorted(allowed))
    return list(qs.order_by("customer_id", "id"))


def tag_choices() -> list[tuple[str, str]]:
    """(WeCom tag_id, "group / tag") of every live tag, for other apps' tag pickers."""
    live = Tag.objects.filter(deleted=False, group__deleted=False).select_related("group")
    return [(t.tag_id, f"{t.group.name} / {t.name}") for t in live]


def existing_customer_ids(ids: Iterable[int]) -> set[int]:
    """Those of ``ids`` that are customer rows."""
    return set(Customer.objects.filter(id__in=list(ids)).values_list("id", flat=True))


def filter_form(data: Mapping[str, Any] | None, scope: DataScope) -> CustomerFilterForm:
    """The customer list's filter form bound to ``data`` with the viewer's choices (other apps'
    customer pickers: the on-job transfer's list)."""
    # lazy: customers.forms builds on this module (CustomerFilters, SORTS): a cycle inside the app
    from siyu.customers.forms import CustomerFilterForm

    return CustomerFilterForm(data, filter_choices(scope), scope=scope)


# --- reads other apps use (broadcasts, transfers) --------------------------------------------
def customer_names(ids: Iterable[int | None]) -> dict[int, str]:
    ids = [i for i in set(ids) if i]
    return dict(Customer.objects.filter(id__in=ids).values_list("id", "name")) if ids else {}


def max_customer_id() -> int:
    """The largest customer id (0 when there is none)."""
    return Customer.objects.order_by("-id").values_list("id", flat=True).first() or 0


# --- identities, for the profiles app (issue 17: every WeCom customer is a person) -------------
IDENTITY_FIELDS = ("id", "external_userid", "unionid", "name", "gender", "updated_at")


class CustomerIdentity(TypedDict):
    id: int
    external_userid: str
    unionid: str
    name: str
    gender: int
    updated_at: datetime


def identity_queryset() -> QuerySet[Customer, dict[str, Any]]:
    """Every customer's identity columns (``IDENTITY_FIELDS``), unordered: for set-based readers
    (the profiles app's backfill composes its SQL into one INSERT ... SELECT)."""
    qs: QuerySet[Customer, dict[str, Any]] = Customer.objects.order_by().values(*IDENTITY_FIELDS)
    return qs


def identities_after(after_id: int, limit: int) -> list[CustomerIdentity]:
    """The identity columns of the customers with an id above ``after_id``, by id (new customers)."""
    rows = Customer.objects.filter(id__gt=after_id).order_by("id").values(*IDENTITY_FIELDS)[:limit]
    return [CustomerIdentity(**r) for r in rows]  # type: ignore[typeddict-item]


def identities_changed_since(since: datetime, after_id: int, limit: int) -> list[CustomerIdentity]:
    """The identity columns of the customers written after (``since``, ``after_id``) in
    (updated_at, id) order: a watermark walk of the ``cust_updated`` index."""
    rows = (
        Customer.objects.filter(Q(updated_at__gt=since) | Q(updated_at=since, id__gt=after_id))
        .order_by("updated_at", "id")
        .values(*IDENTITY_FIELDS)[:limit]
    )
    return [CustomerIdentity(**r) for r in rows]  # type: ignore[typeddict-item]


def avatars(ids: Iterable[int]) -> dict[int, str]:
    """Customer id → avatar URL (for the ones that have one)."""
    ids = [i for i in set(ids) if i]
    if not ids:
        return {}
    return {i: a for i, a in Customer.objects.filter(id__in=ids).values_list("id", "avatar") if a}


def active_relation_counts_by_userid(userids: list[str]) -> dict[str, int]:
    """Per employee userid: their active follow relations."""
    rows = (
        FollowRelation.objects.filter(employee__userid__in=list(userids), status=FollowRelation.ACTIVE)
        .values("employee__userid")
        .annotate(n=Count("id"))
    )
    return {r["employee__userid"]: r["n"] for r in rows}


def active_customers_of(employee_id: int) -> list[str]:
    """The external_userids of an employee's active relations, in relation order."""
    return list(
        FollowRelation.objects.filter(employee_id=employee_id, status=FollowRelation.ACTIVE)
        .order_by("id")
        .values_list("customer__external_userid", flat=True)
    )


def audience_relations(
    customer_ids: QuerySet[Any, Any] | None,
    *,
    active_only: bool = False,
    tag_ids: list[int] | None = None,
    employee_ids: list[int] | None = None,
    lo: int | None = None,
    hi: int | None = None,
) -> QuerySet[FollowRelation, dict[str, Any]]:
    """One relation per customer of ``customer_ids`` (a subquery; None = every customer): its
    active relation with the highest id, else its latest — as ``.values("rid")``, a subquery for
    broadcasts' set-based planning (one SQL statement over a million customers). Narrowed to
    active relations, relations carrying any of ``tag_ids``, of ``employee_ids`` unless None, and
    to customer ids in (``lo``, ``hi``]."""
    rel = FollowRelation.objects.all()
    if active_only:
        rel = rel.filter(status=FollowRelation.ACTIVE)
    if tag_ids:
        rel = rel.filter(Exists(FollowTag.objects.filter(relation_id=OuterRef("pk"), tag_id__in=tag_ids)))
    if customer_ids is not None:
        rel = rel.filter(customer_id__in=customer_ids)
    if employee_ids is not None:
        rel = rel.filter(employee_id__in=sorted(employee_ids))
    if lo is not None:
        rel = rel.filter(customer_id__gt=lo, customer_id__lte=hi)
    best = Coalesce(
        Max(Case(When(status=FollowRelation.ACTIVE, then="id"), output_field=BigIntegerField())),
        Max("id"),
        output_field=BigIntegerField(),
    )
    return rel.order_by().values("customer_id").annotate(rid=best).values("rid")


def names_by_external(external_userids: Iterable[str]) -> dict[str, str]:
    """Customer nickname by external_userid, for the ids that are customers here."""
    ids = [e for e in set(external_userids) if e]
    return dict(Customer.objects.filter(external_userid__in=ids).values_list("external_userid", "name")) if ids else {}


# --- bulk tagging in the background (BulkTagJob) -------------------------------------------------
def filters_to_json(filters: CustomerFilters) -> dict[str, Any]:
    """A CustomerFilters as JSON-able fields (dates as ISO strings), for a job to run later."""
    out: dict[str, Any] = {}
    for name in CustomerFilters.__dataclass_fields__:
        value = getattr(filters, name)
        out[name] = value.isoformat() if isinstance(value, date) else value
    return out


def filters_from_json(data: Mapping[str, Any]) -> CustomerFilters:
    kwargs: dict[str, Any] = {k: v for k, v in data.items() if k in CustomerFilters.__dataclass_fields__}
    for name in ("added_from", "added_to"):
        if kwargs.get(name):
            kwargs[name] = date.fromisoformat(kwargs[name])
    return CustomerFilters(**kwargs)


def scope_to_json(scope: DataScope) -> dict[str, Any]:
    return {"everything": scope.everything, "department_id": scope.department_id, "wecom_userid": scope.wecom_userid}


def scope_from_json(data: Mapping[str, Any]) -> DataScope:
    return DataScope(
        everything=bool(data.get("everything")),
        department_id=data.get("department_id"),
        wecom_userid=data.get("wecom_userid") or "",
    )


def next_matching_ids(scope: DataScope, filters: CustomerFilters, *, before: int | None, limit: int) -> list[int]:
    """The next ``limit`` customers matching, newest id first, below id ``before`` (keyset: a
    customer that stops matching once tagged is not skipped over nor seen twice)."""
    qs = customer_queryset(scope, filters)
    if before is not None:
        qs = qs.filter(id__lt=before)
    return list(qs.order_by("-id").values_list("id", flat=True)[:limit])


def bulk_tag_job(job_id: int, *, user_id: int | None, is_admin: bool) -> BulkTagJob | None:
    """A bulk-tag job its creator (or an admin) may see."""
    qs = BulkTagJob.objects.filter(id=job_id)
    if not is_admin:
        qs = qs.filter(created_by_id=user_id)
    return qs.first()


# --- the overview's growth panel (registered with core.dashboard by name) ------------------------
LOST_BY_PEOPLE = (FollowRelation.LOST_BY_CUSTOMER, FollowRelation.LOST_BY_EMPLOYEE)


def growth(scope: DataScope, days: int = 30) -> dict[str, Any] | None:
    """Follow relations added and lost (deleted by the customer or the employee) today, this week
    (from Monday) and per day over the last ``days`` days, in the console's time zone, within the
    viewer's scope. None before any customer was synced."""
    if not FollowRelation.objects.exists():
        return None
    now = timezone.localtime()
    today = now.date()
    first = today - timedelta(days=days - 1)
    monday = today - timedelta(days=today.weekday())
    since = min(first, monday)
    start = timezone.make_aware(datetime.combine(since, time.min))
    rels = FollowRelation.objects.all()
    allowed = _scope_employee_ids(scope)
    if allowed is not None:
        rels = rels.filter(employee_id__in=sorted(allowed))
    tz = timezone.get_current_timezone()
    added: dict[date, int] = dict(
        rels.filter(added_at__gte=start)
        .annotate(day=TruncDate("added_at", tzinfo=tz))
        .values_list("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    lost: dict[date, int] = dict(
        rels.filter(status__in=LOST_BY_PEOPLE, status_changed_at__gte=start)
        .annotate(day=TruncDate("status_changed_at", tzinfo=tz))
        .values_list("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )

    def total(counts: dict[date, int], frm: date) -> int:
        return sum(n for d, n in counts.items() if frm <= d <= today)

    series = [first + timedelta(days=i) for i in range(days)]
    out: dict[str, Any] = {
        "added_today": total(added, today),
        "lost_today": total(lost, today),
        "added_week": total(added, monday),
        "lost_week": total(lost, monday),
        "days": [d.isoformat() for d in series],
        "added": [added.get(d, 0) for d in series],
        "lost": [lost.get(d, 0) for d in series],
    }
    out["net_today"] = out["added_today"] - out["lost_today"]
    out["net_week"] = out["added_week"] - out["lost_week"]
    return out


# --- reads for the CDP (issue 17: profiles' scope, insights' "lost by relation") -----------------


def scoped_customer_ids(scope: DataScope) -> QuerySet[FollowRelation, int] | None:
    """The customers followed by, or once followed by, an employee in ``scope`` (the customer
    list's rule), as a subquery of customer ids; None when the scope covers everyone."""
    ids = org_selectors.employee_ids_for_scope(scope)
    if ids is None:
        return None
    return FollowRelation.objects.filter(employee_id__in=ids).values_list("customer_id", flat=True)


def lost_customer_ids(customer_ids: Iterable[int] | None = None) -> set[int]:
    """The customers whose every relation is lost (``status = lost``), of ``customer_ids`` or all."""
    qs = Customer.objects.filter(status=Customer.Status.LOST)
    if customer_ids is not None:
        qs = qs.filter(id__in=id_set(customer_ids))
    return set(qs.values_list("id", flat=True))


def customers_changed_since(
    at: datetime | None, limit: int = 50_000, walk: str = ""
) -> tuple[list[int], datetime | None]:
    """Customers written after ``at`` (by ``updated_at``), at most ``limit``, and the next
    watermark (``core.paging.changed_since``; ``walk``: settled)."""
    return paging.changed_since(Customer.objects.all(), at, limit, walk)


def id_set(ids: Iterable[int]) -> RawSQL:
    """``__in=id_set(ids)``: any number of ids as one bound parameter (no per-value cost, no
    bound-variable limit), for the apps above."""
    return _id_set(sorted({int(i) for i in ids}))


# --- reads of the segment engine (siyu.segments): the relation and tag tables as querysets -------
def follow_relations() -> QuerySet[FollowRelation]:
    """Every follow relation (any status); ``RelationStatus.ACTIVE`` marks the followed ones."""
    return FollowRelation.objects.all()


def follow_tags() -> QuerySet[FollowTag]:
    """Every corp tag on a follow relation (``customer_id``, ``tag_id``, ``employee_id``)."""
    return FollowTag.objects.all()


def wecom_change_marks() -> tuple[Any, ...]:
    """Primary-key and small-table reads that move with every change to customers' tags and group
    stays the row counts do not show: the newest timeline entry (tagged, untagged, joined or left
    a group, lost...) and the latest corp-tag change (a tag retired takes itself off every relation
    without a timeline entry)."""
    return (
        CustomerEvent.objects.aggregate(m=Max("id"))["m"],
        Tag.objects.aggregate(m=Max("updated_at"))["m"],
    )


def customers_changed_at() -> datetime | None:
    """The latest ``Customer.updated_at`` (an index read): the segment engine's cheap sign that a
    customer or its relations changed."""
    return Customer.objects.aggregate(m=Max("updated_at"))["m"]  # type: ignore[no-any-return]


def relation_tags(relation: FollowRelation) -> list[Tag]:
    """The live corp tags on one follow relation."""
    return [
        ft.tag
        for ft in FollowTag.objects.filter(relation=relation, tag__deleted=False)
        .select_related("tag", "tag__group")
        .order_by("tag__group__order", "tag__order")
    ]


def adds_by_employee_between(since: datetime, until: datetime) -> dict[str, int]:
    """New customers (relations added) per member userid in ``[since, until)``."""
    rows = (
        FollowRelation.objects.filter(added_at__gte=since, added_at__lt=until)
        .values("employee__userid")
        .annotate(n=Count("id"))
        .values_list("employee__userid", "n")
    )
    return dict(rows)
