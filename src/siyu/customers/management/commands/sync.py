"""``siyu sync``: the full sync of org, tags, customers and groups from WeCom, with progress."""

from __future__ import annotations

import sys
import time

from django.core.management.base import BaseCommand, CommandError

from siyu.customers.models import SyncRun
from siyu.customers.sync import FullSync, NothingToResume, SyncBusy, claim

PHASE_LABELS = {
    "org": "org",
    "tags": "tags",
    "customers": "customers",
    "groups": "groups",
    "reconcile": "reconcile",
    "done": "done",
}


class ProgressLine:
    """One line redrawn in place on a terminal; a line every few seconds otherwise (logs, pipes)."""

    WIDTH = 30

    def __init__(self, stream, every_s: float | None = None):
        self.stream = stream
        self.tty = stream.isatty()
        self.every_s = every_s if every_s is not None else (0.2 if self.tty else 2.0)
        self.started = time.monotonic()
        self.last = 0.0
        self.last_text = ""

    def text(self, run: SyncRun) -> str:
        c, t = run.counts, run.totals
        if run.phase == "customers":
            done, total, unit = c.get("relations", 0), t.get("relations"), "relations"
        elif run.phase == "groups":
            done, total, unit = run.state.get("groups", {}).get("done", 0), t.get("groups"), "groups"
        else:
            done, total, unit = None, None, ""
        elapsed = time.monotonic() - self.started
        label = f"[{PHASE_LABELS.get(run.phase, run.phase):<9}]"
        if done is None:
            return f"{label} {elapsed:6.1f}s"
        rate = f"{done / elapsed:,.0f}/s" if elapsed > 0 else ""
        if total:
            frac = min(1.0, done / total)
            bar = "#" * int(frac * self.WIDTH)
            return f"{label} [{bar:<{self.WIDTH}}] {frac:4.0%} {done:,}/~{total:,} {unit}  {rate}  {elapsed:6.1f}s"
        return f"{label} {done:,} {unit}  {rate}  {elapsed:6.1f}s"

    def __call__(self, run: SyncRun, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.every_s and run.phase == getattr(self, "_phase", run.phase):
            return
        self._phase = run.phase
        self.last = now
        text = self.text(run)
        if self.tty:
            self.stream.write("\r" + text.ljust(len(self.last_text)))
        else:
            self.stream.write(text + "\n")
        self.last_text = text
        self.stream.flush()

    def end(self) -> None:
        if self.tty and self.last_text:
            self.stream.write("\n")
            self.stream.flush()


class Command(BaseCommand):
    help = "Full sync from WeCom: departments, employees, tags, customers with their relations, customer groups."

    def add_arguments(self, parser):
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--resume", action="store_true", help="only continue an interrupted run")
        mode.add_argument("--restart", action="store_true", help="abandon an interrupted run and start again")
        parser.add_argument("--workers", type=int, default=4, help="parallel WeCom reads (default 4)")
        parser.add_argument("--limit", type=int, default=100, help="rows per batch/get_by_user page (1-100)")
        parser.add_argument("--quiet", action="store_true", help="no progress line")

    def handle(self, *args, **opts):
        try:
            run = claim(restart=opts["restart"], resume_only=opts["resume"])
        except (SyncBusy, NothingToResume) as e:
            raise CommandError(str(e))
        if run.resumes:
            self.stdout.write(f"resuming sync run {run.id} at phase {run.phase}")
        else:
            self.stdout.write(f"sync run {run.id} started")
        self.stdout.flush()
        bar = None if opts["quiet"] else ProgressLine(sys.stdout)
        started = time.monotonic()
        try:
            run = FullSync(run, workers=opts["workers"], page_limit=opts["limit"], progress=bar).execute()
        except KeyboardInterrupt:
            if bar:
                bar.end()
            raise CommandError(f"interrupted; `siyu sync` resumes run {run.id}")
        except Exception as e:
            if bar:
                bar.end()
            raise CommandError(f"sync run {run.id} failed: {e}; `siyu sync` resumes it")
        if bar:
            bar(run, force=True)
            bar.end()
        c = run.counts
        self.stdout.write(
            f"sync run {run.id} done in {time.monotonic() - started:.1f}s: "
            f"{c.get('departments', 0)} departments, {c.get('employees', 0)} employees, "
            f"{c.get('tags', 0)} tags, {c.get('customers', 0)} customers, {c.get('relations', 0)} relations, "
            f"{c.get('groups', 0)} groups, {c.get('group_members', 0)} group members; "
            f"reconciled {c.get('reconciled_relations', 0)} relations, {c.get('reconciled_groups', 0)} groups"
        )
