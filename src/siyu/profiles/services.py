"""Writes and rules of the profiles app."""

from __future__ import annotations
