"""Writes and rules of the commerce app."""

from __future__ import annotations
