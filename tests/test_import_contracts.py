"""The import contracts (pyproject.toml [tool.importlinter], DEVELOPERS.md "Layout and contracts")
hold, and no app writes another app's tables through a model class it imported."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "siyu"
APPS = ["accounts", "core", "wecom", "org", "customers", "groups", "channels", "broadcasts", "transfers", "sync", "wecom_sim"]
WRITES = {"create", "update", "delete", "bulk_create", "bulk_update", "get_or_create", "update_or_create", "save"}

# Writes to another app's table that are still to move into the owner's services (the test fails
# when one of these is gone, so the list only shrinks; issue 15 paid it to zero).
KNOWN_FOREIGN_WRITES: set[tuple[str, str]] = set()


def test_lint_imports_passes():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    code = "from importlinter.cli import lint_imports_command; lint_imports_command()"
    run = subprocess.run([sys.executable, "-c", code, "--no-cache"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]


def _app_of(path: Path) -> str | None:
    parts = path.relative_to(SRC).parts
    return parts[0] if len(parts) > 1 and parts[0] in APPS else None


def _foreign_models(tree: ast.AST, app: str) -> set[str]:
    """Names bound anywhere in the module to a model class of another app's ``models``."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if len(parts) >= 3 and parts[0] == "siyu" and parts[-1] == "models" and parts[1] != app:
                names.update(alias.asname or alias.name for alias in node.names)
    return names


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def foreign_writes() -> set[tuple[str, str]]:
    """(module path, "Model.method") for each write call on another app's model class:
    ``Model.objects....create/update/delete/bulk_*(...)``, ``Model(...).save()`` and ``.save()`` on a
    variable assigned ``Model(...)`` or ``Model.objects.get/first(...)`` in the same function."""
    found = set()
    for path in sorted(SRC.rglob("*.py")):
        app = _app_of(path)
        if app is None or "migrations" in path.parts or "tests" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        models = _foreign_models(tree, app)
        if not models:
            continue
        instances: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                root = _root_name(node.value)
                if root in models:
                    instances[node.targets[0].id] = root
        rel = str(path.relative_to(SRC.parent))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in WRITES):
                continue
            root = _root_name(node.func.value)
            if root in models:
                found.add((rel, f"{root}.{node.func.attr}"))
            elif root in instances and node.func.attr == "save":
                found.add((rel, f"{instances[root]}.save"))
    return found


def test_no_app_writes_another_apps_tables():
    found = foreign_writes()
    assert found - KNOWN_FOREIGN_WRITES == set(), "writes to another app's tables: use the owner's services"
    assert KNOWN_FOREIGN_WRITES - found == set(), "gone: remove them from KNOWN_FOREIGN_WRITES"


def test_the_write_check_sees_a_foreign_write():
    """The AST check itself: a module of channels creating a customers row is caught."""
    source = "from siyu.customers.models import FollowRelation\n\ndef f():\n    FollowRelation.objects.filter(id=1).update(remark='x')\n    r = FollowRelation.objects.get(id=1)\n    r.save()\n"
    tree = ast.parse(source)
    assert _foreign_models(tree, "channels") == {"FollowRelation"}
    assert _foreign_models(tree, "customers") == set()
    assert _root_name(tree.body[1].body[0].value.func.value) == "FollowRelation"
