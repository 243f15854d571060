"""CSV and XLSX exports of the scoped, filtered customer list.

Nicknames and remarks are written by strangers, so every cell is made inert for spreadsheet
programs: a value starting with ``= + - @`` or a tab / carriage return gets a leading ``'`` (OWASP
"CSV injection"), and characters XML cannot hold are dropped from XLSX cells.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.core.text import safe_cell
from siyu.customers import selectors
from siyu.customers.models import Customer, FollowRelation

EXPORT_LIMIT = 100_000  # rows per export (the list itself is unbounded; an export is a file)
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def headers() -> list[str]:
    return [
        _("客户ID"),
        _("昵称"),
        _("类型"),
        _("性别"),
        _("企业"),
        _("状态"),
        _("首次添加时间"),
        _("跟进员工"),
        _("备注"),
        _("手机号"),
        _("添加方式"),
        _("渠道"),
        _("标签"),
    ]


def _fmt(dt) -> str:
    return timezone.localtime(dt).strftime("%Y-%m-%d %H:%M:%S") if dt else ""


def rows(scope, filters, sort: str, limit: int = EXPORT_LIMIT) -> Iterator[list[str]]:
    """Data rows (already made safe), one per customer, within ``scope``."""
    ways = dict(selectors.ADD_WAYS)
    rel_status = dict(FollowRelation.STATUS)
    for customers, details in selectors.export_batches(scope, filters, sort=sort, limit=limit):
        # the channel by its code's name (a state no code carries stays as it is)
        channels = selectors.channel_names(r.state for d in details.values() for r in d["relations"])
        for c in customers:
            d = details[c.id]
            rels: list[FollowRelation] = d["relations"]
            values = [
                c.external_userid,
                c.name,
                dict(Customer.TYPE).get(c.type, c.type),
                dict(Customer.GENDER).get(c.gender, c.gender),
                c.corp_full_name or c.corp_name,
                dict(Customer.STATUS).get(c.status, c.status),
                _fmt(c.first_added_at),
                "; ".join(
                    f"{r.employee.name or r.employee.userid}"
                    + ("" if r.status == FollowRelation.ACTIVE else f" ({rel_status.get(r.status, r.status)})")
                    for r in rels
                ),
                "; ".join(r.remark for r in rels if r.remark),
                "; ".join(m for r in rels for m in (r.remark_mobiles or [])),
                "; ".join(dict.fromkeys(str(ways.get(r.add_way, r.add_way)) for r in rels)),
                "; ".join(dict.fromkeys(channels.get(r.state, r.state) for r in rels if r.state)),
                "; ".join(t["name"] for t in d["tags"]),
            ]
            yield [safe_cell(v) for v in values]


class _Echo:
    def write(self, value):
        return value


def csv_stream(scope, filters, sort: str) -> Iterator[str]:
    """The CSV as a stream of lines, with a BOM so Excel reads UTF-8."""
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow([safe_cell(h) for h in headers()])
    for row in rows(scope, filters, sort):
        yield writer.writerow(row)


def xlsx_bytes(scope, filters, sort: str) -> bytes:
    from openpyxl import Workbook  # lazy: only the xlsx export needs openpyxl (slow to import)

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(_("客户"))
    ws.append(headers())
    for row in rows(scope, filters, sort):
        # Every cell is a string (openpyxl would store a value starting with "=" as a formula;
        # safe_cell has already prefixed those).
        ws.append([_XML_ILLEGAL.sub("", v) for v in row])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
