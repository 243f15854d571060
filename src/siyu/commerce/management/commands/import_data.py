"""``siyu import members|orders|events FILE [--dry-run] [--source S] [--errors-out PATH]``

(``import`` is a Python keyword, so the module is ``import_data``; ``siyu.cli`` maps ``siyu import``
to it.) Reads CSV (UTF-8, UTF-8 with BOM, GBK) or XLSX, shows a progress bar on stderr, prints the
counts; with ``--dry-run`` nothing is written and the counts say what would change. Per-row errors
go to ``--errors-out`` (default: FILE's name + ``.errors.csv`` when there are any).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from siyu.commerce import files, services


class Progress:
    """A one-line progress bar on stderr (redrawn at most 10 times a second)."""

    def __init__(self, stream, enabled: bool = True):
        self.stream, self.enabled = stream, enabled
        self.started = time.monotonic()
        self.drawn = 0.0
        self.tty = bool(getattr(stream, "isatty", lambda: False)())

    def __call__(self, done: int, total: int, result: services.Result, *, final: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not final and (not self.tty or now - self.drawn < 0.1)):
            return  # redrawn in place on a terminal; elsewhere (a log) only the last line
        self.drawn = now
        share = done / total if total else 1.0
        width = 30
        bar = "#" * int(share * width)
        rate = done / max(now - self.started, 1e-6)
        self.stream.write(
            ("\r" if self.tty else "") + f"[{bar:<{width}}] {share:4.0%} {done}/{total} lines  {rate:,.0f}/s  "
            f"+{result.created} ~{result.updated} ={result.unchanged} !{result.failed}"
        )
        if final:
            self.stream.write("\n")
        self.stream.flush()


class Command(BaseCommand):
    help = "Import members, orders or events from a CSV or XLSX file (siyu import KIND FILE)."

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=sorted(services.KINDS))
        parser.add_argument("file")
        parser.add_argument("--dry-run", action="store_true", help="check and count, write nothing")
        parser.add_argument("--source", default="", help="the sending system (rows without a source column)")
        parser.add_argument("--errors-out", default="", help="where to write per-row errors (CSV)")
        parser.add_argument("--no-progress", action="store_true")
        parser.add_argument("--json", action="store_true", help="print the counts as JSON")

    def handle(self, *args, **opts):
        path = Path(opts["file"])
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        errors_out = Path(opts["errors_out"]) if opts["errors_out"] else path.with_name(path.name + ".errors.csv")
        progress = Progress(sys.stderr, enabled=not opts["no_progress"])
        last = {"done": 0, "total": 0}

        def report(done: int, total: int, result: services.Result) -> None:
            last.update(done=done, total=total)
            progress(done, total, result)

        try:
            result = files.run_file(
                opts["kind"],
                path,
                source=opts["source"],
                dry_run=opts["dry_run"],
                errors_out=errors_out,
                progress=report,
                operator="cli",
            )
        except files.FileError as e:
            errors_out.unlink(missing_ok=True)
            raise CommandError(str(e)) from None
        progress(last["done"], last["total"], result, final=True)
        if not result.failed and not opts["errors_out"]:
            errors_out.unlink(missing_ok=True)
        counts = {k: v for k, v in result.as_dict().items() if k != "errors"}
        counts["dry_run"] = bool(opts["dry_run"])
        if opts["json"]:
            self.stdout.write(json.dumps(counts))
            return
        prefix = "dry run (nothing written): would be " if opts["dry_run"] else ""
        self.stdout.write(
            f"{prefix}created {result.created}, updated {result.updated}, "
            f"unchanged {result.unchanged}, failed {result.failed}"
        )
        if result.failed:
            self.stdout.write(f"per-row errors: {errors_out}")
        if guides := result.unknown_guides():
            self.stdout.write(
                f"{len(result.guides_unknown)} guide account(s) are not WeCom members (orders kept as sent; the guide "
                f"shows once the account is synced): {', '.join(guides)}"
            )
