"""Reads of the insights app (scoped by the viewer's DataScope)."""

from __future__ import annotations
