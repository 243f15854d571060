"""CSV and XLSX exports of a segment's members (in the viewer's scope). Names and remarks are
written by strangers: every cell is made inert for spreadsheet programs (``core.text.safe_cell``)
and characters XML cannot hold are dropped from XLSX cells."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.core.text import safe_cell
from siyu.segments import selectors

EXPORT_LIMIT = 200_000
PAGE = 500
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def headers() -> list[str]:
    return [_("姓名"), _("会员号"), _("会员等级"), _("积分"), _("企业微信客户"), _("生命周期"), _("最近下单")]


def rows(segment: Any, scope: Any, limit: int = EXPORT_LIMIT) -> Iterator[list[str]]:
    after: int | None = None
    done = 0
    while done < limit:
        page = selectors.member_page(segment.definition, scope, after=after, limit=PAGE)
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


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_stream(segment: Any, scope: Any) -> Iterator[str]:
    """The CSV as a stream of lines, with a BOM so Excel reads UTF-8."""
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow([safe_cell(h) for h in headers()])
    for row in rows(segment, scope):
        yield writer.writerow(row)


def xlsx_bytes(segment: Any, scope: Any) -> bytes:
    from openpyxl import Workbook  # lazy: only the xlsx export needs openpyxl (slow to import)

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(_("分群成员"))
    ws.append(headers())
    for row in rows(segment, scope):
        ws.append([_XML_ILLEGAL.sub("", v) for v in row])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
