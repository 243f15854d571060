"""The suites again on PostgreSQL (SKIP LOCKED claims, real transactions, its SQL of set operations).

Two runs, each a pytest run of its own in a subprocess:
- the default run re-runs the suites whose code takes a vendor-specific path (``DB_SPECIFIC``);
- the slow run (``pytest -m slow``, after the default one in .ci/run) re-runs all of them
  (``SUITES``), so every suite is still proven on PostgreSQL before a change lands.

Skipped when no PostgreSQL server answers at ``SIYU_TEST_POSTGRES_URL`` (default
postgres://postgres@127.0.0.1:5432/test) — unless ``SIYU_REQUIRE_POSTGRES=1`` (set by .ci/run),
which turns the skip into a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
URL = os.environ.get("SIYU_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
# Every app's folder and the cross-cutting folders; of tests/core the worker, the timers and the
# console pages. Not the SQLite-specific or process-level files (tests/core: serve, demo,
# sqlite_write_queue), nor the emulator's own tests (tests/sim) or the browser's (tests/browser).
SUITES = [
    "tests/accounts",
    "tests/api",
    "tests/broadcasts",
    "tests/channels",
    "tests/commerce",
    "tests/core/test_console_shell.py",
    "tests/core/test_domain_pages.py",
    "tests/core/test_timers.py",
    "tests/core/test_worker.py",
    "tests/customers",
    "tests/groups",
    "tests/insights",
    "tests/org",
    "tests/perf",
    "tests/profiles",
    "tests/security",
    "tests/segments",
    "tests/sync",
    "tests/transfers",
    "tests/wecom",
]
# What runs different SQL or locking on PostgreSQL, in its narrowest suites (the default run stays
# short; the slow run re-runs everything): the leased queues and timers (core.queue: SKIP LOCKED),
# the callback inbox and the token store (wecom.store), SyncRun's migration (sync's bulk upserts:
# the slow run), broadcast planning's claims and a segment's snapshot, the welcome queue, handover
# carry-over and relation history, the groups' reads, the scope walk (every selector's scoped
# SQL) and the query counts; the CDP: bulk ingestion (core.bulk's COPY / binary arrays), identity
# resolution (its advisory lock) and the backfill (temp tables, setval), the metrics' order reads
# and upserts, the segment SQL compiler (JSON operators, time conversion) and its snapshot.
DB_SPECIFIC = [
    "tests/broadcasts/test_caps_planning.py",
    "tests/broadcasts/test_kill_worker.py",
    "tests/broadcasts/test_segment_audience.py",
    "tests/commerce/test_ingest.py",
    "tests/insights/test_metrics.py",
    "tests/profiles/test_identity.py",
    "tests/profiles/test_resolve.py",
    "tests/segments/test_equality.py",
    "tests/segments/test_services.py",
    "tests/channels/test_welcome_kill.py",
    "tests/channels/test_welcome_reconcile.py",
    "tests/core/test_timers.py",
    "tests/core/test_worker.py",
    "tests/customers/test_carry_over.py",
    "tests/customers/test_relation_history.py",
    "tests/customers/test_picker_sources.py",
    "tests/groups/test_selectors.py",
    "tests/groups/test_picker_selectors.py",
    "tests/perf",
    "tests/security/test_scope_walk.py",
    "tests/sync/test_syncrun_migration.py",
    "tests/transfers/test_churn_history.py",
    "tests/wecom/test_callback_endpoint.py",
    "tests/wecom/test_gateway.py",
    "tests/wecom/test_inbox_batch.py",
    "tests/wecom/test_inbox_registry.py",
    "tests/wecom/test_rereads.py",
]


def _postgres_answers() -> str | None:
    import psycopg

    try:
        with psycopg.connect(URL.replace("postgres://", "postgresql://"), connect_timeout=3) as c:
            c.execute("select 1")
        return None
    except Exception as e:  # noqa: BLE001
        return f"{type(e).__name__}: {e}"


def test_db_specific_suites_pass_on_postgresql():
    run_on_postgresql(DB_SPECIFIC)


@pytest.mark.slow
def test_all_suites_pass_on_postgresql():
    run_on_postgresql(SUITES)


def run_on_postgresql(wanted: list[str]) -> None:
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        pytest.skip("already running on PostgreSQL")
    problem = _postgres_answers()
    if problem:
        if os.environ.get("SIYU_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required here but does not answer at {URL}: {problem}")
        pytest.skip(f"no PostgreSQL server answers at {URL}: {problem}")
    env = dict(os.environ, DATABASE_URL=URL)
    # a run of its own: its xdist workers (the addopts' -n) get their own var dirs and databases
    # (test_<name>_gw0, ...), not this worker's
    for name in [k for k in env if k.startswith(("PYTEST_XDIST_", "PYTEST_CURRENT_TEST"))] + ["SIYU_VAR_DIR"]:
        env.pop(name, None)
    suites = [s for s in wanted if (ROOT / s).exists()]
    proc = subprocess.run(
        # no captured logs in the report: the tail below must show the failing assertion
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-x",
            "--show-capture=no",
            "--tb=short",
            *suites,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    tail = (proc.stdout + proc.stderr)[-4000:]
    assert proc.returncode == 0, tail
    print(tail.splitlines()[-1])


def test_db_specific_suites_are_among_the_suites():
    """The default run's subset never names a suite the full run leaves out."""
    for path in DB_SPECIFIC:
        assert (ROOT / path).exists(), path
        assert any(path == s or path.startswith(s.rstrip("/") + "/") for s in SUITES), path
