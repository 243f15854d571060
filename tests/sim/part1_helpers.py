"""Kept only for tests/product/test_sync_callbacks.py, which still imports from here: the helpers
live in ``tests/sim/helpers.py``. Delete this file once that import points there."""

from tests.sim.helpers import customer_of, employee

__all__ = ["customer_of", "employee"]
