"""import-linter contract type ``public_face`` (configured in pyproject.toml, run by ``lint-imports``).

An app may import another app only through that app's public face: its ``services`` and
``selectors`` modules (and those of its listed sub-packages), plus the modules listed in
``extra_public`` (the kernel and the gateway). Never another app's ``models``, ``views``, ...

Options (all lists of module names):
- ``apps``: the apps, e.g. ``siyu.customers``; a module belongs to the longest app prefix.
- ``public``: the module names every app and sub-package exposes (``services``, ``selectors``).
- ``subpackages``: sub-packages whose ``public`` modules are public too (``siyu.customers.tags``).
- ``extra_public``: further public modules, by full name (``siyu.core.timers``).
- ``shared``: modules outside the apps that any app may import (``siyu.conf``).
- ``exempt``: importers this contract does not check (migrations, tests), as fnmatch patterns.
- ``root_importers``: modules allowed to import the ``root_may_import`` modules of any app
  (``siyu.urls``, management commands), as fnmatch patterns.
- ``root_may_import``: the module names such root importers may also reach (``urls``, ``views``...).
- ``ignore_imports``: ``"importer -> imported"`` pairs tolerated for now (known debt, listed one
  by one so that the list can only shrink); a listed pair that no longer exists is an error.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

import grimp
from importlinter import Contract, ContractCheck, fields, output


class PublicFaceContract(Contract):
    type_name = "public_face"

    apps = fields.ListField(subfield=fields.StringField())
    public = fields.ListField(subfield=fields.StringField())
    subpackages = fields.ListField(subfield=fields.StringField(), required=False, default=[])
    extra_public = fields.ListField(subfield=fields.StringField(), required=False, default=[])
    shared = fields.ListField(subfield=fields.StringField(), required=False, default=[])
    exempt = fields.ListField(subfield=fields.StringField(), required=False, default=[])
    root_importers = fields.ListField(subfield=fields.StringField(), required=False, default=[])
    root_may_import = fields.ListField(subfield=fields.StringField(), required=False, default=[])
    ignore_imports = fields.ListField(subfield=fields.StringField(), required=False, default=[])

    def _app_of(self, module: str) -> str | None:
        best = None
        for app in self.apps:  # type: ignore[attr-defined]
            if (module == app or module.startswith(app + ".")) and (best is None or len(app) > len(best)):
                best = app
        return best

    def _allowed(self, importer: str, imported: str, imported_app: str) -> bool:
        if imported == imported_app:
            return True  # the package itself (its __init__)
        owners = [imported_app] + [p for p in self.subpackages if self._app_of(p) == imported_app]  # type: ignore[attr-defined]
        for owner in owners:
            if imported == owner or any(imported == f"{owner}.{name}" for name in self.public):  # type: ignore[attr-defined]
                return True
        if imported in self.extra_public:  # type: ignore[attr-defined]
            return True
        if any(fnmatchcase(importer, pattern) for pattern in self.root_importers):  # type: ignore[attr-defined]
            return any(imported == f"{owner}.{name}" for owner in owners for name in self.root_may_import)  # type: ignore[attr-defined]
        return False

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        broken: list[dict] = []
        ignored = {tuple(part.strip() for part in pair.split("->")) for pair in self.ignore_imports}  # type: ignore[attr-defined]
        seen: set[tuple[str, str]] = set()
        for importer in sorted(graph.modules):
            if not importer.startswith("siyu") or any(fnmatchcase(importer, p) for p in self.exempt):  # type: ignore[attr-defined]
                continue
            importer_app = self._app_of(importer)
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                if not imported.startswith("siyu"):
                    continue
                imported_app = self._app_of(imported)
                if imported_app is None:
                    ok = importer_app is None or imported in self.shared  # type: ignore[attr-defined]
                elif imported_app == importer_app:
                    ok = True
                else:
                    ok = self._allowed(importer, imported, imported_app)
                if not ok and (importer, imported) in ignored:
                    seen.add((importer, imported))
                    continue
                if not ok:
                    lines = sorted(
                        d["line_number"] for d in graph.get_import_details(importer=importer, imported=imported)
                    )
                    broken.append({"importer": importer, "imported": imported, "lines": lines})
        for importer, imported in sorted(ignored - seen):
            broken.append({"importer": importer, "imported": imported, "lines": [], "stale": True})
        return ContractCheck(kept=not broken, metadata={"broken": broken})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for item in check.metadata["broken"]:
            if item.get("stale"):
                output.print_error(
                    f"{item['importer']} -> {item['imported']}: listed in ignore_imports but gone; remove it"
                )
            else:
                lines = ", ".join(f"l.{n}" for n in item["lines"])
                output.print_error(f"{item['importer']} -> {item['imported']} ({lines}): not part of its public face")
            output.new_line()
