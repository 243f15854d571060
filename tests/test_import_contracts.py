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
APPS = [
    "accounts",
    "core",
    "wecom",
    "org",
    "customers",
    "groups",
    "channels",
    "broadcasts",
    "transfers",
    "sync",
    "wecom_sim",
]
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
    source = (
        "from siyu.customers.models import FollowRelation\n\n"
        "def f():\n"
        "    FollowRelation.objects.filter(id=1).update(remark='x')\n"
        "    r = FollowRelation.objects.get(id=1)\n"
        "    r.save()\n"
    )
    tree = ast.parse(source)
    assert _foreign_models(tree, "channels") == {"FollowRelation"}
    assert _foreign_models(tree, "customers") == set()
    assert _root_name(tree.body[1].body[0].value.func.value) == "FollowRelation"


# --- imports inside functions -------------------------------------------------------------------
# DESIGN/DEVELOPERS.md: an import inside a function only with its reason beside it, `# lazy: ...` on
# its line or in the comment lines right above it. One comment covers a run of imports that follow
# each other (a ready() that imports the modules it registers); any other statement ends the run.
LAZY_SKIP = ("wecom_sim", "migrations")


def _comment_above(lines: list[str], lineno: int) -> str:
    """The comment lines directly above line ``lineno`` (1-based), joined."""
    found = []
    i = lineno - 2
    while i >= 0 and lines[i].strip().startswith("#"):
        found.append(lines[i])
        i -= 1
    return "\n".join(found)


def _says_why(lines: list[str], node: ast.stmt) -> bool:
    own = "\n".join(lines[node.lineno - 1 : (node.end_lineno or node.lineno)])
    return "# lazy:" in own or "# lazy:" in _comment_above(lines, node.lineno)


def unexplained_function_imports(source: str, name: str = "<source>") -> list[str]:
    """``name:line`` of each import inside a function with no ``# lazy:`` reason."""
    lines = source.splitlines()
    found = []
    for fn in ast.walk(ast.parse(source)):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(fn):  # nested functions are walked again as their own: harmless
            for field in ("body", "orelse", "finalbody"):
                stmts = getattr(node, field, None)
                if not isinstance(stmts, list):
                    continue
                explained = False  # the current run of imports has its reason
                for stmt in stmts:
                    if not isinstance(stmt, ast.Import | ast.ImportFrom):
                        explained = False
                        continue
                    explained = explained or _says_why(lines, stmt)
                    if not explained:
                        found.append(f"{name}:{stmt.lineno}")
    return sorted(set(found), key=lambda s: (s.rsplit(":", 1)[0], int(s.rsplit(":", 1)[1])))


def test_function_level_imports_say_why():
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        if any(part in LAZY_SKIP for part in rel.parts):
            continue
        found += unexplained_function_imports(path.read_text(encoding="utf-8"), str(rel))
    assert not found, "imports inside functions without a `# lazy: <reason>` comment:\n" + "\n".join(found)


def test_the_lazy_import_check_sees_an_unexplained_import():
    source = """
import os


def ready():
    # lazy: these imports need the app registry
    from a import b

    from c import d  # still the same run of imports
    x = 1
    from e import f
    return x


def g():
    from h import i  # lazy: an optional dependency
    if True:
        import j
    try:
        import k  # lazy: optional
    except ImportError:
        import m
"""
    assert unexplained_function_imports(source) == ["<source>:11", "<source>:18", "<source>:22"]
