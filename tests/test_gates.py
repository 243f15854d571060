"""The static gates of `.ci/run` (pyproject.toml [tool.ruff], [tool.mypy]) also fail the README's test
command: lint, format, types, and a model change without its migration. (The import contracts
have their own test: tests/test_import_contracts.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=ENV, capture_output=True, text=True)


@pytest.mark.parametrize(
    "gate",
    [
        ("ruff", "check", "."),
        ("ruff", "format", "--check", "."),
        ("mypy",),
        ("django", "makemigrations", "--check", "--dry-run", "--settings=tests.settings"),
    ],
    ids=["ruff-check", "ruff-format", "mypy", "makemigrations-check"],
)
def test_gate_passes(gate):
    run = _run(*gate)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]


def test_every_setting_read_from_the_environment_is_in_the_readme():
    """Every tunable settings.py reads from the environment has a row in the README's table."""
    import re

    settings = (ROOT / "src" / "siyu" / "settings.py").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    names = set(re.findall(r'env[a-z_]*\(\s*"((?:SIYU|WECOM)_[A-Z0-9_]+)"', settings))
    assert names, "no environment variables found in settings.py"
    missing = sorted(n for n in names if f"`{n}`" not in readme)
    assert not missing, f"not in the README's configuration table: {missing}"
