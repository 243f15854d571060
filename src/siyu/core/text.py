"""Pure text helpers for output, shared by every app: secret masking, spreadsheet-safe cells."""

from __future__ import annotations

# A cell starting with one of these is a formula to spreadsheet programs (OWASP "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def mask(value: str) -> str:
    """A secret as bullets plus, when it is long enough to stay secret, its last four characters."""
    if not value:
        return ""
    if len(value) < 16:
        return "•" * 8
    return "•" * 8 + value[-4:]


def safe_cell(value: object) -> str:
    """``value`` as text that a spreadsheet program shows as text: a leading ``'`` before a
    formula's first character."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_START):
        return "'" + text
    return text
