"""Writes and rules of the insights app."""

from __future__ import annotations
