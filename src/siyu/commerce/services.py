"""Writes and rules of the commerce app: batch ingestion of orders, events and members (REST,
``siyu import``, console import jobs), each row written whole or not at all.

Every ingestion answers ``Result`` (``{created, updated, unchanged, failed, errors}``; an error is
``{"row": n, "id": "<source id>", "errors": {field: message}}``). A batch is checked row by row
first (``siyu.commerce.rows``), then its good rows are written set-based in one transaction:
identities resolved for the whole batch (``profiles.services.resolve_keys``), orders upserted in one
statement, items replaced for the changed orders. Re-sending a row that did not change writes
nothing (orders compare ``Order.digest``, events their stored values). Every order write sets
``Order.updated_at`` (insights' incremental recompute watches it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from siyu.commerce import rows as checks
from siyu.commerce.models import Event, EventType, ImportJob, Order, OrderItem
from siyu.core import bulk
from siyu.org import selectors as org_selectors
from siyu.profiles import services as profile_services

logger = logging.getLogger(__name__)

MAX_BATCH = 1000  # rows of one REST call

UNKNOWN_GUIDES_SHOWN = 20  # guide accounts that are not WeCom members, listed in an answer or a report

# the built-in event types and their stored (Chinese) names; migration 0003 creates them, and an
# import recreates any that is missing (e.g. after a test database flush)
BUILTIN_EVENT_TYPES = {
    "browse_product": "浏览商品",
    "add_to_cart": "加入购物车",
    "coupon_claimed": "领取优惠券",
    "coupon_redeemed": "核销优惠券",
    "link_clicked": "点击链接",
    "store_visit": "到店",
    "points_change": "积分变动",
}


@dataclass
class Result:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    # guide accounts of the orders written that are not WeCom members → their orders: the orders
    # are kept as sent (a POS may know a guide before the directory sync does), and the operator
    # is told, since their attribution to a guide shows only once the account is a member
    guides_unknown: dict[str, int] = field(default_factory=dict)

    def unknown_guides(self) -> list[str]:
        """The unknown guide accounts, most orders first (at most ``UNKNOWN_GUIDES_SHOWN``)."""
        top = sorted(self.guides_unknown.items(), key=lambda kv: (-kv[1], kv[0]))
        return [k for k, _ in top[:UNKNOWN_GUIDES_SHOWN]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "errors": self.errors,
            "unknown_guides": self.unknown_guides(),
        }

    def add(self, other: Result) -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.failed += other.failed
        self.errors += other.errors
        for k, n in other.guides_unknown.items():
            self.guides_unknown[k] = self.guides_unknown.get(k, 0) + n

    def fail(self, row: int, row_id: object, errors: dict[str, str]) -> None:
        self.failed += 1
        self.errors.append({"row": row, "id": _id_text(row_id), "errors": errors})


def _id_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)[:64]


def _check(
    rows: Sequence[Any], row_numbers: Sequence[int] | None, id_field: str, fn: Any, result: Result
) -> list[tuple[int, dict[str, Any]]]:
    """Check every row: the clean ones with their row numbers; the others go to ``result``."""
    good: list[tuple[int, dict[str, Any]]] = []
    for i, row in enumerate(rows):
        n = row_numbers[i] if row_numbers is not None else i
        if not isinstance(row, dict):
            result.fail(n, "", {"row": "must be an object"})
            continue
        try:
            good.append((n, fn(row)))
        except checks.RowError as e:
            result.fail(n, row.get(id_field), {e.field: e.message})
    return good


def _dedupe(good: list[tuple[int, dict[str, Any]]], key: tuple[str, str], id_field: str, result: Result) -> None:
    """A source id sent twice in one batch: the later row fails (which one wins would be a guess)."""
    seen: set[tuple[Any, Any]] = set()
    kept = []
    for n, row in good:
        k = (row[key[0]], row[key[1]])
        if k in seen:
            result.fail(n, row[id_field], {id_field: "sent twice in this batch"})
            continue
        seen.add(k)
        kept.append((n, row))
    good[:] = kept


def _checked(
    rows: Sequence[Any], row_numbers: Sequence[int] | None, id_field: str, fn: Any, result: Result
) -> list[tuple[int, dict[str, Any]]]:
    """The clean rows of a batch of orders or events, each (source, id) once."""
    good = _check(rows, row_numbers, id_field, fn, result)
    _dedupe(good, ("source", id_field), id_field, result)
    return good


def _stored(model: Any, good: list[tuple[int, dict[str, Any]]], id_field: str, fields: Sequence[str]) -> dict[Any, Any]:
    """The stored rows the batch names, by (source, id): the tuple of ``fields`` (one query per source)."""
    by_source: dict[str, list[str]] = {}
    for _, row in good:
        by_source.setdefault(row["source"], []).append(row[id_field])
    out: dict[Any, Any] = {}
    for src, ids in by_source.items():
        if bulk.plain(model, fields):  # no conversion of the values read: a raw select (orders)
            got = bulk.select_in(model, (id_field, *fields), {"source": src}, id_field, ids)
        else:
            got = list(model.objects.filter(source=src, **{f"{id_field}__in": ids}).values_list(id_field, *fields))
        for values in got:
            out[(src, values[0])] = values[1:]
    return out


# --- orders ----------------------------------------------------------------------------------------


def _digest(order: dict[str, Any]) -> str:
    """A hash of everything an order row says (its keys in resolution order, values as checked)."""
    body = (
        tuple(order["keys"].items()),
        order["store_code"],
        order["guide_userid"],
        order["channel"],
        order["paid_at"].isoformat(),
        str(order["amount"]),
        str(order["discount"]),
        order["status"],
        str(order["refunded_amount"]),
        tuple((i["sku"], i["name"], i["category"], i["brand"], i["quantity"], str(i["price"])) for i in order["items"]),
    )
    return hashlib.md5(repr(body).encode(), usedforsecurity=False).hexdigest()


@dataclass
class CheckedOrders:
    """A batch of order rows checked (no database read): the failures so far and the clean rows
    (with their row numbers and digests)."""

    result: Result
    good: list[tuple[int, dict[str, Any]]]


def check_orders(rows: Sequence[Any], *, source: str = "", row_numbers: Sequence[int] | None = None) -> CheckedOrders:
    """The checks of ``ingest_orders`` that read nothing from the database: pure Python, so that
    a file import checks its next batch while the current one is written."""
    result = Result()
    default_source = source[:32]
    good = _checked(rows, row_numbers, "order_no", lambda r: checks.order(r, default_source), result)
    for _, o in good:
        o["digest"] = _digest(o)
    return CheckedOrders(result, good)


def ingest_orders(
    rows: Sequence[Any],
    *,
    source: str = "",
    dry_run: bool = False,
    row_numbers: Sequence[int] | None = None,
    operator: str = "",
    via: str = "import",
    checked: CheckedOrders | None = None,
) -> Result:
    """Upsert orders (docs/cdp.md "orders"), idempotent on (source, order_no). A row's ``source``
    wins over ``source``. New orders are attached to the person their keys resolve to; a changed
    order (a refund, corrected items...) is updated in place (its person stays) and its items are
    replaced. ``row_numbers`` (default: 0, 1, ...) number the rows in errors. ``checked``: the
    batch as ``check_orders`` answered for these rows (done beforehand, e.g. in another thread)."""
    c = checked if checked is not None else check_orders(rows, source=source, row_numbers=row_numbers)
    result, good = c.result, c.good
    if not good:
        return result
    # (source, order_no) -> (id, digest, profile id)
    existing = _stored(Order, good, "order_no", ("id", "digest", "profile_id"))
    new = [o for _, o in good if (o["source"], o["order_no"]) not in existing]
    changed = [o for _, o in good if (k := (o["source"], o["order_no"])) in existing and existing[k][1] != o["digest"]]
    result.created += len(new)
    result.updated += len(changed)
    result.unchanged += len(good) - len(new) - len(changed)
    _note_unknown_guides(new + changed, result)
    if dry_run or not (new or changed):
        return result
    with transaction.atomic():
        persons = profile_services.resolve_keys([o["keys"] for o in new], source=via, operator=operator)
        for o, person in zip(new, persons, strict=True):
            o["profile"] = person
        for o in changed:
            o["profile"] = existing[(o["source"], o["order_no"])][2]
        _write_orders(new, changed, {existing[(o["source"], o["order_no"])][0] for o in changed}, result)
    return result


def _note_unknown_guides(orders: list[dict[str, Any]], result: Result) -> None:
    accounts = {o["guide_userid"] for o in orders if o["guide_userid"]}
    if not accounts:
        return
    members = org_selectors.names_by_userid(accounts)
    for o in orders:
        if (g := o["guide_userid"]) and g not in members:
            result.guides_unknown[g] = result.guides_unknown.get(g, 0) + 1


ORDER_COLUMNS = (
    "source",
    "order_no",
    "profile",
    "keys",
    "store_code",
    "guide_userid",
    "channel",
    "paid_at",
    "amount",
    "discount",
    "refunded_amount",
    "status",
    "digest",
    "created_at",
    "updated_at",
)
ORDER_UPDATED = tuple(c for c in ORDER_COLUMNS if c not in ("source", "order_no", "profile", "created_at"))


def _write_orders(
    new: list[dict[str, Any]], changed: list[dict[str, Any]], changed_ids: set[int], result: Result
) -> None:
    """Insert the new orders, overwrite the changed ones, replace the changed ones' items. A "new"
    order another import stored after this batch looked (the two met at the same order number)
    counts as changed or unchanged instead, against what is stored now."""
    now = timezone.now()
    for o in new + changed:  # the clean rows are written as they are (``columns`` picks the fields)
        o["created_at"] = o["updated_at"] = now
    ids, late = bulk.insert_new(Order, new, conflict=["source", "order_no"], columns=ORDER_COLUMNS)
    written = [o for o in new if (o["source"], o["order_no"]) in ids]
    if late:
        stored = _stored(Order, [(0, o) for o in late], "order_no", ("id", "digest", "profile_id"))
        result.created -= len(late)
        for o in late:
            oid, digest, profile = stored[(o["source"], o["order_no"])]
            if digest == o["digest"]:
                result.unchanged += 1
                continue
            result.updated += 1
            o["profile"] = profile
            changed.append(o)
            changed_ids.add(oid)
    if changed:
        ids |= bulk.upsert_ids(
            Order, changed, key="order_no", update=ORDER_UPDATED, conflict=["source", "order_no"], columns=ORDER_COLUMNS
        )
        written += changed
        OrderItem.objects.filter(order_id__in=sorted(changed_ids)).delete()
    item_rows = []
    for o in written:
        oid, profile, paid_at = ids[(o["source"], o["order_no"])], o["profile"], o["paid_at"]
        for it in o["items"]:
            it["order"], it["profile"], it["paid_at"] = oid, profile, paid_at
            item_rows.append(it)
    if item_rows:
        bulk.insert(OrderItem, item_rows, columns=ITEM_COLUMNS)


ITEM_COLUMNS = ("order", "profile", "paid_at", "sku", "name", "category", "brand", "quantity", "price")


# --- events ----------------------------------------------------------------------------------------


def event_type_ids(codes: set[str], *, create: bool) -> dict[str, int]:
    """Event type ids by code; unknown (valid) codes become custom types when ``create``."""
    known = dict(EventType.objects.filter(code__in=sorted(codes)).values_list("code", "id"))
    missing = sorted(codes - set(known))
    if missing and create:
        bulk.insert(
            EventType,
            [{"code": c, "label": BUILTIN_EVENT_TYPES.get(c, c), "builtin": c in BUILTIN_EVENT_TYPES} for c in missing],
            conflict=["code"],
        )
        known.update(EventType.objects.filter(code__in=missing).values_list("code", "id"))
    return known


def ingest_events(
    rows: Sequence[Any],
    *,
    source: str = "",
    dry_run: bool = False,
    row_numbers: Sequence[int] | None = None,
    operator: str = "",
    via: str = "import",
) -> Result:
    """Insert events (docs/cdp.md "events"), idempotent on (source, event_id); a re-sent event
    whose type, time or properties changed is updated in place (its person stays)."""
    result = Result()
    default_source = source[:32]
    good = _checked(rows, row_numbers, "event_id", lambda r: checks.event(r, default_source), result)
    if not good:
        return result
    types = event_type_ids({e["type"] for _, e in good}, create=not dry_run)
    # (source, event_id) -> (id, type id, at, props)
    existing = _stored(Event, good, "event_id", ("id", "type_id", "at", "props"))
    new, changed = [], []
    for _, e in good:
        old = existing.get((e["source"], e["event_id"]))
        if old is None:
            new.append(e)
        elif (old[1], old[2], _canon(old[3])) != (types.get(e["type"]), e["at"], _canon(e["props"])):
            changed.append((old[0], e))
    result.created += len(new)
    result.updated += len(changed)
    result.unchanged += len(good) - len(new) - len(changed)
    if dry_run or not (new or changed):
        return result
    with transaction.atomic():
        persons = profile_services.resolve_keys([e["keys"] for e in new], source=via, operator=operator)
        now = timezone.now()
        bulk.insert(
            Event,
            [
                {
                    "source": e["source"],
                    "event_id": e["event_id"],
                    "type": types[e["type"]],
                    "profile": pid,
                    "at": e["at"],
                    "props": e["props"],
                    "created_at": now,
                }
                for e, pid in zip(new, persons, strict=True)
            ],
            conflict=["source", "event_id"],
        )
        for pk, e in changed:
            Event.objects.filter(id=pk).update(type_id=types[e["type"]], at=e["at"], props=e["props"])
    return result


def _canon(props: Any) -> str:
    if isinstance(props, str):  # a JSON column read raw
        props = json.loads(props)
    return json.dumps(props, sort_keys=True, ensure_ascii=False, default=str)


# --- members ---------------------------------------------------------------------------------------


def ingest_members(
    rows: Sequence[Any],
    *,
    source: str = "",
    dry_run: bool = False,
    row_numbers: Sequence[int] | None = None,
    operator: str = "",
    via: str = "import",
) -> Result:
    """Write member data onto profiles (docs/cdp.md "members"): the row's keys (its member number
    among them) find or create the person; custom-field values (``custom`` or ``custom.<key>``)
    are checked against the fields' types."""
    result = Result()
    fields = profile_services.custom_fields()
    good = _check(rows, row_numbers, "member_no", lambda r: checks.member(r, fields), result)
    seen: set[str] = set()
    kept = []
    for n, m in good:
        if m["keys"]["member_no"] in seen:
            result.fail(n, m["keys"]["member_no"], {"member_no": "sent twice in this batch"})
            continue
        seen.add(m["keys"]["member_no"])
        kept.append((n, m))
    if not kept:
        return result
    with transaction.atomic():
        got = profile_services.upsert_members([m for _, m in kept], source=via, dry_run=dry_run, operator=operator)
    result.created += got.created
    result.updated += got.updated
    result.unchanged += got.unchanged
    return result


KINDS: dict[str, Callable[..., Result]] = {"orders": ingest_orders, "events": ingest_events, "members": ingest_members}


def ingest(
    kind: str,
    rows: Sequence[Any],
    *,
    source: str = "",
    dry_run: bool = False,
    row_numbers: Sequence[int] | None = None,
    operator: str = "",
    via: str = "import",
    checked: CheckedOrders | None = None,
) -> Result:
    """``ingest_<kind>`` by name (``orders``, ``events``, ``members``); ``checked``: an orders
    batch's ``check_orders`` answer, done beforehand."""
    if checked is not None and kind == "orders":
        return ingest_orders(
            rows, source=source, dry_run=dry_run, row_numbers=row_numbers, operator=operator, via=via, checked=checked
        )
    fn = KINDS[kind]
    out: Result = fn(rows, source=source, dry_run=dry_run, row_numbers=row_numbers, operator=operator, via=via)
    return out


def money_text(value: Decimal) -> str:
    return f"{value:.2f}"


# --- console import jobs ---------------------------------------------------------------------------

UPLOAD_MAX_BYTES = 50 * 1024 * 1024


class UploadError(ValueError):
    """An upload refused (message for the operator)."""


def imports_dir() -> Path:
    d = Path(settings.VAR_DIR) / "imports"
    d.mkdir(parents=True, exist_ok=True)
    return d


def start_import_job(kind: str, upload: Any, *, dry_run: bool, user_id: int | None) -> ImportJob:
    """Store an uploaded file (checked by its content: CSV or XLSX, at most ``UPLOAD_MAX_BYTES``)
    and queue its import for the worker. ``upload`` is a Django ``UploadedFile``."""
    # lazy: files.py imports this module (it calls the ingestion services): a cycle inside the app
    from siyu.commerce import files

    if kind not in KINDS:
        raise UploadError(gettext("未知的导入类型"))
    if upload.size is None or upload.size > UPLOAD_MAX_BYTES:
        raise UploadError(gettext("文件过大（最大 50 MB）"))
    if upload.size == 0:
        raise UploadError(gettext("文件是空的"))
    head = b""
    for chunk in upload.chunks(8192):
        head = chunk[:8192]
        break
    ext = files.sniff(head)
    if ext is None:
        raise UploadError(gettext("只支持 CSV（UTF-8 或 GBK 编码）和 XLSX 文件"))
    name = f"{uuid.uuid4().hex}.{ext}"
    path = imports_dir() / name
    with open(path, "wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    job = ImportJob.objects.create(
        kind=kind,
        filename=str(upload.name or name)[:255],
        path=str(path),
        dry_run=dry_run,
        created_by_id=user_id,
        error="",
    )
    # lazy: tasks.py imports this module (its task runs the job): a cycle inside the app
    from siyu.commerce.tasks import run_import_job as task

    transaction.on_commit(lambda: task.enqueue(job.id))
    return job


def run_import_job(job_id: int) -> ImportJob | None:
    """Run a queued import job: the file batch by batch, progress saved after each batch, the
    per-row errors to a CSV next to the upload. An import is idempotent, so a job whose worker was
    killed simply runs again from the start."""
    # lazy: files.py imports this module (it calls the ingestion services): a cycle inside the app
    from siyu.commerce import files

    # claim it: a job runs once (another worker's task for the same job finds it taken)
    claimed = ImportJob.objects.filter(id=job_id, status=ImportJob.Status.QUEUED).update(
        status=ImportJob.Status.RUNNING, processed=0, created=0, updated=0, unchanged=0, failed=0
    )
    job = ImportJob.objects.filter(id=job_id).first()
    if job is None or not claimed:
        return job
    errors_path = imports_dir() / f"job-{job.id}-errors.csv"

    def progress(done: int, total: int, result: Result) -> None:
        ImportJob.objects.filter(id=job_id).update(
            processed=done,
            total=total,
            created=result.created,
            updated=result.updated,
            unchanged=result.unchanged,
            failed=result.failed,
        )

    operator = job.created_by.username if job.created_by_id and job.created_by else ""
    try:
        result = files.run_file(
            job.kind, Path(job.path), dry_run=job.dry_run, errors_out=errors_path, progress=progress, operator=operator
        )
    except files.FileError as e:
        Path(job.path).unlink(missing_ok=True)
        ImportJob.objects.filter(id=job.id).update(
            status=ImportJob.Status.FAILED, error=str(e)[:500], finished_at=timezone.now()
        )
        errors_path.unlink(missing_ok=True)
        return ImportJob.objects.get(id=job.id)
    except Exception as e:
        logger.exception("import job %s failed", job.id)
        ImportJob.objects.filter(id=job.id).update(
            status=ImportJob.Status.FAILED, error=type(e).__name__, finished_at=timezone.now()
        )
        raise
    ImportJob.objects.filter(id=job.id).update(
        status=ImportJob.Status.DONE,
        created=result.created,
        updated=result.updated,
        unchanged=result.unchanged,
        failed=result.failed,
        unknown_guides=result.unknown_guides(),
        errors_path=str(errors_path) if result.failed else "",
        finished_at=timezone.now(),
    )
    if not result.failed:
        errors_path.unlink(missing_ok=True)
    Path(job.path).unlink(missing_ok=True)  # imported: the upload is no longer needed
    return ImportJob.objects.get(id=job.id)


def resume_import_jobs() -> int:
    """At worker start: the jobs left running by a killed worker are queued again (an import is
    idempotent, so each runs again from its start; queued jobs still have their task). Returns how
    many."""
    # lazy: tasks.py imports this module (its task runs the job): a cycle inside the app
    from siyu.commerce.tasks import run_import_job as task

    ids = list(ImportJob.objects.filter(status=ImportJob.Status.RUNNING).values_list("id", flat=True))
    n = 0
    for job_id in ids:
        if ImportJob.objects.filter(id=job_id, status=ImportJob.Status.RUNNING).update(status=ImportJob.Status.QUEUED):
            task.enqueue(job_id)
            n += 1
    return n
