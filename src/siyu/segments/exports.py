"""Segment member exports (CSV streamed, XLSX in memory), used by the REST API and the console."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any

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
