"""Segment member exports (CSV streamed, XLSX in memory), used by the REST API and the console."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.accounts.selectors import DataScope
from siyu.core.text import safe_cell
from siyu.segments import selectors

XLSX_LIMIT = 200_000
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_stream(definition: Any, scope: DataScope) -> Iterator[str]:
    """The CSV as a stream of lines, with a BOM so Excel reads UTF-8."""
    writer = csv.writer(_Echo())
    for i, row in enumerate(selectors.export_rows(definition, scope)):
        text = writer.writerow([safe_cell(v) for v in row])
        yield ("\ufeff" + text) if i == 0 else text


def xlsx_bytes(definition: Any, scope: DataScope) -> bytes:
    from openpyxl import Workbook  # lazy: slow to import

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(_("客群成员"))
    for i, row in enumerate(selectors.export_rows(definition, scope)):
        if i > XLSX_LIMIT:
            break
        ws.append([_XML_ILLEGAL.sub("", safe_cell(v)) for v in row])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# --- the console's export (part E): the member list's columns (WeCom customers, stage, last order) --
CONSOLE_LIMIT = 200_000
CONSOLE_PAGE = 500


def console_headers() -> list[str]:
    return [_("姓名"), _("会员号"), _("会员等级"), _("积分"), _("企业微信客户"), _("生命周期"), _("最近下单")]


def console_rows(definition: Any, scope: DataScope, limit: int = CONSOLE_LIMIT) -> Iterator[list[str]]:
    """One row per member, as the console's member list shows it, every cell spreadsheet-safe."""
    after: int | None = None
    done = 0
    while done < limit:
        page = selectors.member_page(definition, scope, after=after, limit=CONSOLE_PAGE)
        for m in selectors.member_details(page.items):
            last = m.get("last_order_at")
            values = [
                m.get("name") or "",
                m.get("member_no") or "",
                m.get("member_level") or "",
                m.get("points") or 0,
                "; ".join(c["name"] or "" for c in m["customers"]),
                m.get("stage_label") or "",
                timezone.localtime(last).strftime("%Y-%m-%d %H:%M") if last else "",
            ]
            yield [safe_cell(v) for v in values]
            done += 1
        if page.next_after is None:
            return
        after = page.next_after


def console_csv(definition: Any, scope: DataScope) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow([safe_cell(h) for h in console_headers()])
    for row in console_rows(definition, scope):
        yield writer.writerow(row)


def console_xlsx(definition: Any, scope: DataScope) -> bytes:
    from openpyxl import Workbook  # lazy: slow to import

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(_("分群成员"))
    ws.append(console_headers())
    for row in console_rows(definition, scope):
        ws.append([_XML_ILLEGAL.sub("", v) for v in row])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
