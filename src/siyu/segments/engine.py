"""The in-memory index (placeholder: the SQL compiler answers until the index lands)."""

from __future__ import annotations

from typing import Any


def get_index() -> Any:
    return None
