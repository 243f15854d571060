"""Import files: CSV (UTF-8, UTF-8 with BOM, GBK/GB18030) and XLSX (the first sheet), read into
ingestion rows in batches, and the runner shared by ``siyu import`` and the console's import jobs.

Columns are docs/cdp.md's: the row fields by name, the customer keys, ``custom.<key>`` for member
custom fields; an orders file has one line per item (the order's columns repeated on each of its
lines, which must follow each other) with the item columns ``item_sku``, ``item_name``,
``item_category``, ``item_brand``, ``item_quantity``, ``item_price``. Row numbers in errors are
the file's line numbers (the header is line 1).
"""

from __future__ import annotations

import codecs
import csv
import io
import queue
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from siyu.commerce import services
from siyu.core.text import safe_cell

BATCH = 5000  # rows (orders: lines) per ingestion batch
MAX_COLUMNS = 200
MAX_CELL = 65536
KEPT_ERRORS = 200  # errors kept in the answer (all go to the errors file)

ID_COLUMNS = {"orders": "order_no", "events": "event_id", "members": "member_no"}  # required in a file
COLUMNS = {
    "orders": [
        "order_no",
        "source",
        "unionid",
        "phone",
        "member_no",
        "external_userid",
        "openid",
        "store_code",
        "guide_userid",
        "channel",
        "paid_at",
        "amount",
        "discount",
        "status",
        "refunded_amount",
        "item_sku",
        "item_name",
        "item_category",
        "item_brand",
        "item_quantity",
        "item_price",
    ],
    "events": [
        "event_id",
        "source",
        "unionid",
        "phone",
        "member_no",
        "external_userid",
        "openid",
        "type",
        "at",
        "props",
    ],
    "members": [
        "member_no",
        "unionid",
        "phone",
        "external_userid",
        "openid",
        "name",
        "gender",
        "level",
        "points",
        "birthday",
        "join_store",
        "joined_at",
        "attributes",
    ],
}
EXAMPLES = {
    "orders": [
        [
            "SO1001",
            "pos",
            "",
            "13800138000",
            "M0001",
            "",
            "",
            "S01",
            "zhangsan",
            "store",
            "2026-05-01 14:30:00",
            "1299.00",
            "100.00",
            "paid",
            "0",
            "SKU-1",
            "戒指",
            "戒指",
            "品牌A",
            "1",
            "1299.00",
        ]
    ],
    "events": [
        ["EV1001", "mall", "", "13800138000", "", "", "", "coupon_claimed", "2026-05-01T10:00:00", '{"coupon": "C10"}']
    ],
    "members": [
        [
            "M0001",
            "",
            "13800138000",
            "",
            "",
            "张三",
            "2",
            "gold",
            "1200",
            "1990-05-01",
            "S01",
            "2024-01-01 10:00:00",
            "{}",
        ]
    ],
}
ITEM_COLUMNS = {
    "item_sku": "sku",
    "item_name": "name",
    "item_category": "category",
    "item_brand": "brand",
    "item_quantity": "quantity",
    "item_price": "price",
}


class FileError(ValueError):
    """The file as a whole cannot be read (message for the operator)."""


def template(kind: str, custom_keys: list[str] | None = None) -> bytes:
    """A CSV template (UTF-8 with BOM, so spreadsheet programs open it right) for ``kind``."""
    out = io.StringIO()
    w = csv.writer(out)
    extra = [f"custom.{k}" for k in (custom_keys or [])] if kind == "members" else []
    w.writerow(COLUMNS[kind] + extra)
    for row in EXAMPLES[kind]:
        w.writerow(row + [""] * len(extra))
    return codecs.BOM_UTF8 + out.getvalue().encode()


def sniff(head: bytes) -> str | None:
    """``xlsx``, ``csv`` or None, from a file's first bytes (never from its name)."""
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if b"\x00" in head[:8192]:
        return None
    sample = head[:8192]
    for enc in ("utf-8", "gb18030"):
        try:
            sample.decode(enc)
            return "csv"
        except UnicodeDecodeError as e:
            if e.start >= len(sample) - 4:  # a character cut by the sample's end
                return "csv"
    return None


def _decode(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return data.decode("gb18030")
        except UnicodeDecodeError:
            raise FileError("not UTF-8 or GBK text") from None


def _cell(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        if len(value) > MAX_CELL:
            value = value[:MAX_CELL]
        return value or None
    return value


def _lines(path: Path) -> tuple[list[str], Iterator[tuple[int, list[Any]]], int]:
    """The header (lower-cased, ``custom.<key>`` kept), the data lines with their line numbers,
    and the number of data lines (an estimate for progress)."""
    with open(path, "rb") as f:
        head = f.read(8192)
    kind = sniff(head)
    if kind == "xlsx":
        return _xlsx_lines(path)
    if kind != "csv":
        raise FileError("not a CSV or XLSX file")
    text = _decode(path.read_bytes())
    csv.field_size_limit(MAX_CELL * 2)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise FileError("the file is empty") from None
    except csv.Error as e:
        raise FileError(f"not a readable CSV file: {e}") from None
    total = max(0, text.count("\n") - 1)

    def lines() -> Iterator[tuple[int, list[Any]]]:
        try:
            for row in reader:
                yield reader.line_num, row
        except csv.Error as e:
            raise FileError(f"line {reader.line_num}: {e}") from None

    return _header(header), lines(), total


def _xlsx_lines(path: Path) -> tuple[list[str], Iterator[tuple[int, list[Any]]], int]:
    import openpyxl  # lazy: only for XLSX files (a large module)

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
        raise FileError(f"not a readable XLSX file ({type(e).__name__})") from None
    ws = wb.worksheets[0] if wb.worksheets else None
    if ws is None:
        raise FileError("the workbook has no sheet")
    rows = ws.iter_rows(values_only=True)
    try:
        header = next(rows)
    except StopIteration:
        raise FileError("the file is empty") from None
    total = max(0, (ws.max_row or 1) - 1)

    def lines() -> Iterator[tuple[int, list[Any]]]:
        for n, row in enumerate(rows, start=2):
            yield n, list(row)
        wb.close()

    return _header(list(header)), lines(), total


def _header(cells: list[Any]) -> list[str]:
    out = []
    for c in cells[:MAX_COLUMNS]:
        name = str(c or "").strip().lstrip("\ufeff")
        out.append(name if name.startswith("custom.") else name.lower())
    return out


_STR = {str}


def _dicts(header: list[str], lines: Iterator[tuple[int, list[Any]]]) -> Iterator[tuple[int, dict[str, Any]]]:
    named = [(i, h) for i, h in enumerate(header) if h]
    names = [h for _, h in named]
    dense = len(names) == len(header)  # no unnamed column: cells pair with names by position
    width = len(header)
    for n, cells in lines:
        # a CSV line (the common case): its cells stripped and cut in C-speed passes, padded to the
        # header's width ([] for an empty line); any other line cell by cell
        text = _csv_cells(cells, width) if dense else None
        row = _row(named, cells) if text is None else {h: c for h, c in zip(names, text, strict=False) if c}
        if row:
            yield n, row


def _row(named: list[tuple[int, str]], cells: list[Any]) -> dict[str, Any]:
    """One line's non-empty cells by column name (``named``: (position, name) pairs)."""
    width = len(cells)
    row = {}
    for i, h in named:
        if i < width:
            c = cells[i]
            if type(c) is str:
                c = c.strip()
                if c:
                    row[h] = c if len(c) <= MAX_CELL else c[:MAX_CELL]
            elif c is not None and (c := _cell(c)) is not None:
                row[h] = c
    return row


_ITEM_PAIRS = tuple(ITEM_COLUMNS.items())


Line = tuple[int, tuple[str, str], dict[str, Any], Callable[[], dict[str, Any]]]


def _grouped(lines: Iterable[Line]) -> Iterator[tuple[int, dict[str, Any], int]]:
    """Group consecutive lines of one order: (first line, order row, lines). Each line comes as
    (number, (source, order_no), its item cells, a maker of its order row, called for an order's
    first line only)."""
    current: dict[str, Any] | None = None
    first, count, ident = 0, 0, None
    for n, key, item, make_row in lines:
        if current is not None and key == ident and key[1]:
            if item:
                current["items"].append(item)
            count += 1
            continue
        if current is not None:
            yield first, current, count
        current, first, count, ident = make_row(), n, 1, key
        current["items"] = [item] if item else []
    if current is not None:
        yield first, current, count


def _dict_line(n: int, row: dict[str, Any], source: str) -> Line:
    key = (str(row.get("source") or source), str(row.get("order_no") or ""))
    item = {name: row.pop(k) for k, name in _ITEM_PAIRS if k in row}
    return n, key, item, lambda: row


def _orders(rows: Iterator[tuple[int, dict[str, Any]]], source: str) -> Iterator[tuple[int, dict[str, Any], int]]:
    """Group consecutive item lines of one order: (first line, order row, lines)."""
    return _grouped(_dict_line(n, row, source) for n, row in rows)


def _order_groups(
    header: list[str], lines: Iterator[tuple[int, list[Any]]], source: str
) -> Iterator[tuple[int, dict[str, Any], int]]:
    """``_orders(_dicts(header, lines), source)``, with the lines of a CSV file taken apart by
    position: an order's further lines give only their item cells (no row built, nothing popped)."""
    if not all(header) or len(set(header)) != len(header):  # unnamed or repeated columns
        return _orders(_dicts(header, lines), source)
    width = len(header)
    named = list(enumerate(header))
    at = {h: i for i, h in named}
    i_src, i_no = at.get("source"), at.get("order_no")
    item_at = [(i, ITEM_COLUMNS[h]) for i, h in named if h in ITEM_COLUMNS]
    row_at = [(i, h) for i, h in named if h not in ITEM_COLUMNS]

    def split(n: int, line: list[Any]) -> Line | None:
        cells = _csv_cells(line, width)
        if cells is None:  # not a CSV line (XLSX values, more cells than columns): as _dicts does
            row = _row(named, line)
            return _dict_line(n, row, source) if row else None
        if not cells:
            return None  # an empty line, skipped as ``_dicts`` does
        key = (
            (cells[i_src] or source) if i_src is not None else source,
            cells[i_no] if i_no is not None else "",
        )
        item = {name: cells[i] for i, name in item_at if cells[i]}
        return n, key, item, lambda: {h: cells[i] for i, h in row_at if cells[i]}

    return _grouped(x for n, line in lines if (x := split(n, line)) is not None)


def _csv_cells(cells: list[Any], width: int) -> list[str] | None:
    """A line of text cells (a CSV line) stripped, cut to ``MAX_CELL`` and padded to ``width``
    ([] when every cell is empty); None for any other line (XLSX values, more cells than columns)."""
    if len(cells) > width or set(map(type, cells)) != _STR:
        return None
    out = list(map(str.strip, cells))
    if not any(out):
        return []
    if max(map(len, out)) > MAX_CELL:
        out = [c[:MAX_CELL] for c in out]
    if len(out) < width:
        out += [""] * (width - len(out))
    return out


def batches(
    kind: str, path: Path, *, source: str = ""
) -> tuple[int, Iterator[tuple[list[dict[str, Any]], list[int], int]]]:
    """(estimated data lines, batches of (rows, their line numbers, lines they cover)). A file
    without its kind's id column is refused whole (FileError), rather than every line failing:
    most likely another kind's file, or the wrong type picked."""
    header, lines, total = _lines(path)
    id_column = ID_COLUMNS.get(kind)
    if id_column and id_column not in header:
        shown = ", ".join(h for h in header if h)[:200] or "none"
        raise FileError(
            f"no {id_column} column, so this is not a file of {kind} (its columns: {shown}); "
            f"pick the right type, or start from the {kind} template"
        )

    def gen() -> Iterator[tuple[list[dict[str, Any]], list[int], int]]:
        rows: list[dict[str, Any]] = []
        numbers: list[int] = []
        covered = 0
        if kind == "orders":
            grouped = _order_groups(header, lines, source)
        else:
            grouped = ((n, r, 1) for n, r in _dicts(header, lines))
        for n, row, count in grouped:
            rows.append(row)
            numbers.append(n)
            covered += count
            if covered >= BATCH:
                yield rows, numbers, covered
                rows, numbers, covered = [], [], 0
        if rows:
            yield rows, numbers, covered

    return total, gen()


ERROR_HEADER = ["row", "id", "field", "message"]

Batch = tuple[list[dict[str, Any]], list[int], int, "services.CheckedOrders | None"]
_END = object()


def _checked_ahead(
    kind: str, gen: Iterator[tuple[list[dict[str, Any]], list[int], int]], source: str
) -> Iterator[Batch]:
    """The batches of ``gen``; an orders file's come checked (``services.check_orders``, pure
    Python) one or two batches ahead of their writing, by a thread of its own: reading and checking
    run while the database writes the batch before (SQLite's C code and PostgreSQL's server work
    release the GIL)."""
    if kind != "orders":
        return ((rows, numbers, covered, None) for rows, numbers, covered in gen)
    return _ahead(
        (rows, numbers, covered, services.check_orders(rows, source=source, row_numbers=numbers))
        for rows, numbers, covered in gen
    )


def _ahead(items: Iterator[Batch]) -> Iterator[Batch]:
    """``items``, produced by a thread of its own at most two ahead of their use. The thread must
    touch no database. A failure there is raised here; stopping early stops the thread."""
    ahead: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as e:  # noqa: BLE001 - handed to the reading side, raised there
            put(e)
            return
        put(_END)

    thread = threading.Thread(target=work, name="import-check-ahead", daemon=True)
    thread.start()
    try:
        while (item := ahead.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def run_file(
    kind: str,
    path: Path,
    *,
    source: str = "",
    dry_run: bool = False,
    errors_out: Path | None = None,
    progress: Callable[[int, int, services.Result], None] | None = None,
    operator: str = "",
) -> services.Result:
    """Import a whole file batch by batch (each batch in its own transaction; a bad row never
    half-writes). Every error goes to ``errors_out`` (CSV: row, id, field, message); the answer
    keeps the first ``KEPT_ERRORS``. ``progress(lines_done, lines_total, result_so_far)`` after
    each batch. Raises ``FileError`` for a file that cannot be read at all."""
    if kind not in services.KINDS:
        raise FileError(f"unknown kind {kind!r}")
    total, gen = batches(kind, path, source=source)
    result = services.Result()
    done = 0
    sink = open(errors_out, "w", newline="", encoding="utf-8-sig") if errors_out else None  # noqa: SIM115 - closed below
    try:
        writer = csv.writer(sink) if sink else None
        if writer:
            writer.writerow(ERROR_HEADER)
        for rows, numbers, covered, checked in _checked_ahead(kind, gen, source):
            got = services.ingest(
                kind, rows, source=source, dry_run=dry_run, row_numbers=numbers, operator=operator, checked=checked
            )
            if writer:
                for e in got.errors:
                    for fld, msg in e["errors"].items():
                        writer.writerow([e["row"], safe_cell(e["id"]), safe_cell(fld), safe_cell(msg)])
            room = KEPT_ERRORS - len(result.errors)
            errors, got.errors = got.errors, []
            result.add(got)
            result.errors += errors[: max(0, room)]
            done += covered
            if progress:
                progress(done, max(total, done), result)
    finally:
        if sink:
            sink.close()
    return result
