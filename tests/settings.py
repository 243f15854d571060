"""Test settings: the product's settings plus a test-only app that records handler effects."""

import os
import tempfile

# One var dir (keys, media, uploads) per test process, so parallel test processes (pytest-xdist
# workers) never share one and the developer's ./var stays the demo's. Set in the environment so
# that the worker and sync processes a test starts inherit it (they must read the same field key);
# an xdist worker replaces the value it inherited from the controller, a test's own value stays.
_auto = os.path.join(
    tempfile.gettempdir(), f"siyu-test-var-{os.getuid()}-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
)
if os.environ.get("SIYU_VAR_DIR", "") in ("", os.environ.get("SIYU_TEST_VAR_DIR_AUTO")):
    os.environ["SIYU_VAR_DIR"] = os.environ["SIYU_TEST_VAR_DIR_AUTO"] = _auto

from siyu.settings import *  # noqa: E402,F403
from siyu.settings import INSTALLED_APPS  # noqa: E402

INSTALLED_APPS = [*INSTALLED_APPS, "tests.effects"]

# The segment index (siyu.segments.engine) checks the database on every count and rebuilds in the
# foreground, so a test's count sees the rows it has just written (tests/conftest.py forgets the
# index between tests: a rolled-back test's rows would otherwise linger in it).
SIYU_SEGMENT_INDEX_CHECK_S = 0
SIYU_SEGMENT_INDEX_WECOM_CHECK_S = 0
SIYU_SEGMENT_INDEX_BACKGROUND = False
