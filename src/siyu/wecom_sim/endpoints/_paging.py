"""Cursor and limit handling shared by the reach & transfer endpoints (mass messages, Moments,
transfers). WeCom's cursors are opaque strings and an empty ``next_cursor`` means the last page."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from siyu.wecom_sim.framework import WeComError


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"siyu:{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: Any) -> int:
    """Offset of an opaque cursor; empty = the first page; anything else → 50100 (invalid cursor)."""
    if cursor in (None, ""):
        return 0
    if not isinstance(cursor, str):
        raise WeComError(50100)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, num = raw.partition(":")
        offset = int(num)
    except (ValueError, UnicodeDecodeError):
        raise WeComError(50100) from None
    if prefix != "siyu" or offset < 0:
        raise WeComError(50100)
    return offset


def page_limit(value: Any, default: int, maximum: int, over: str = "clamp") -> int:
    """The page size a caller asked for. Missing or 0 → ``default``; above ``maximum`` →
    ``maximum`` (clamp), ``default`` (as get_groupmsg_list_v2's doc says) or 40058 (error)."""
    if value in (None, "", 0, "0"):
        return default
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise WeComError(40058, "invalid limit") from None
    if n < 0:
        raise WeComError(40058, "invalid limit")
    if n > maximum:
        if over == "error":
            raise WeComError(40058, f"invalid limit: at most {maximum}")
        return default if over == "default" else maximum
    return n


def paginate(items: Sequence | Any, cursor: Any, limit: int) -> tuple[list, str]:
    """Slice a list or queryset at the cursor; returns the page and the next cursor ("" at the end)."""
    start = decode_cursor(cursor)
    chunk = list(items[start : start + limit + 1])
    page = chunk[:limit]
    nxt = encode_cursor(start + limit) if len(chunk) > limit else ""
    return page, nxt
