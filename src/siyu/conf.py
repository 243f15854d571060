"""Environment-driven configuration shared by the product and the emulator settings."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import dj_database_url


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def var_dir() -> Path:
    """The writable directory for databases, media and runtime state (``./var`` by default)."""
    path = Path(env("SIYU_VAR_DIR", "var")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def persistent_secret(path: Path, generate: Callable[[], str]) -> str:
    """A secret kept in ``path`` (mode 0600): read it, or create it once with ``generate()``.
    Two processes starting together (web and worker) agree: the file appears atomically (a
    hard link of a complete temporary file), and the loser of the race reads the winner's."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # created with mode 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(generate() + "\n")
        os.chmod(tmp, 0o600)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
    return path.read_text().strip()


def database_config(url: str, default_sqlite_name: str) -> dj_database_url.DBConfig:
    """A Django DATABASES entry from a URL; SQLite gets WAL and IMMEDIATE transactions.

    WAL lets readers run beside the one writer; ``transaction_mode=IMMEDIATE`` takes the write
    lock when a transaction starts, so two writers queue on ``timeout`` instead of failing with
    "database is locked" when a read lock would have to be upgraded.
    """
    if not url:
        url = f"sqlite:///{var_dir() / default_sqlite_name}"
    cfg = dj_database_url.parse(url, conn_max_age=600, conn_health_checks=True)
    if cfg["ENGINE"] == "django.db.backends.sqlite3":
        if not env_bool("SIYU_SQLITE_NO_WRITE_QUEUE", False):
            cfg["ENGINE"] = "siyu.core.sqlite"  # Django's, with write transactions queued on a file lock
        cfg["CONN_MAX_AGE"] = None
        cfg["CONN_HEALTH_CHECKS"] = False
        cfg["OPTIONS"] = {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": (
                "PRAGMA journal_mode=WAL;"
                "PRAGMA synchronous=NORMAL;"
                "PRAGMA busy_timeout=30000;"
                "PRAGMA cache_size=-65536;"
                "PRAGMA temp_store=MEMORY;"
                "PRAGMA mmap_size=268435456;"
            ),
        }
        # A file (not :memory:) so worker processes and live servers share the test database;
        # one per test process, so parallel test runs never share it.
        name = Path(str(cfg["NAME"])).stem
        default_test = Path(tempfile.gettempdir()) / f"siyu-test-{os.getpid()}-{name}.sqlite3"
        cfg["TEST"] = {"NAME": env("SIYU_TEST_DB", str(default_test))}
    elif cfg["ENGINE"].startswith("django.db.backends.postgresql"):
        # Segment definitions compile to "id [NOT] IN (subquery)". PostgreSQL evaluates NOT IN as
        # a hash of the subquery's ids only when that hash fits work_mem (× hash_mem_multiplier);
        # with the default 4 MB, a subquery of a million customers is run again for every row
        # (a count that took over 16 minutes at 1 M customers; 64 MB: seconds). Per sort or hash
        # of a query, not per connection.
        work_mem = env("SIYU_PG_WORK_MEM", "64MB")
        if not re.fullmatch(r"\d{1,7}(kB|MB|GB)", work_mem):
            raise ValueError(f"SIYU_PG_WORK_MEM must look like 64MB (a number and kB, MB or GB), not {work_mem!r}")
        options = cfg.setdefault("OPTIONS", {})
        options["options"] = f"{options.get('options', '')} -c work_mem={work_mem}".strip()
    return cfg
