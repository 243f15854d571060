"""``siyu sync``: the full sync of org, tags, customers and groups from WeCom, with progress."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from siyu.sync.models import SyncRun
from siyu.sync.services import FullSync, NothingToResume, SyncBusy, claim


class ProgressLine:
    """The run's progress: one line redrawn in place on a terminal (a new line per phase), or a
    line every few seconds and at each phase change otherwise (logs, pipes)."""

    WIDTH = 30

    def __init__(self, stream):
        self.stream = stream  # the command's OutputWrapper
        self.tty = stream.isatty()
        self.every_s = 0.2 if self.tty else 2.0
        self.started = self.phase_started = time.monotonic()
        self.last = 0.0
        self.phase: str | None = None
        self.width = 0

    def text(self, run: SyncRun) -> str:
        now = time.monotonic()
        elapsed, in_phase = now - self.started, now - self.phase_started
        label = f"[{run.phase:<9}]"
        if run.phase == "customers":
            done, total, unit = run.counts.get("relations", 0), run.totals.get("relations"), "relations"
        elif run.phase == "groups":
            done, total, unit = run.state.get("groups", {}).get("done", 0), run.totals.get("groups"), "groups"
        else:
            return f"{label} {elapsed:6.1f}s"
        rate = f"{done / in_phase:,.0f}/s" if done and in_phase > 0 else ""
        if not total:
            return f"{label} {done:,} {unit}  {rate}  {elapsed:6.1f}s"
        frac = min(1.0, done / total)
        bar = "#" * int(frac * self.WIDTH)
        return f"{label} [{bar:<{self.WIDTH}}] {frac:4.0%} {done:,}/~{total:,} {unit}  {rate}  {elapsed:6.1f}s"

    def __call__(self, run: SyncRun) -> None:
        now = time.monotonic()
        new_phase = run.phase != self.phase
        if not new_phase and now - self.last < self.every_s:
            return
        self.last = now
        if new_phase:
            self.phase_started = now
        text = self.text(run)
        if not self.tty:
            self.stream.write(text)
        elif new_phase and self.phase is not None:
            self.stream.write("\n" + text, ending="")
        else:
            self.stream.write("\r" + text.ljust(self.width), ending="")
        self.phase = run.phase
        self.width = len(text)
        self.stream.flush()

    def end(self) -> None:
        if self.tty and self.phase is not None:
            self.stream.write("")


class Command(BaseCommand):
    help = "Full sync from WeCom: departments, employees, tags, customers with their relations, customer groups."

    def add_arguments(self, parser):
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--resume", action="store_true", help="only continue an interrupted run")
        mode.add_argument("--restart", action="store_true", help="abandon an interrupted run and start again")
        parser.add_argument("--workers", type=int, default=8, help="parallel WeCom reads (default 8)")
        parser.add_argument("--limit", type=int, default=100, help="rows per batch/get_by_user page (1-100)")
        parser.add_argument("--quiet", action="store_true", help="no progress line")

    def handle(self, *args, **opts):
        try:
            run = claim(restart=opts["restart"], resume_only=opts["resume"])
        except (SyncBusy, NothingToResume) as e:
            raise CommandError(str(e)) from e
        if run.resumes:
            self.stdout.write(f"resuming sync run {run.id} at phase {run.phase}")
        else:
            self.stdout.write(f"sync run {run.id} started")
        self.stdout.flush()
        bar = None if opts["quiet"] else ProgressLine(self.stdout)
        started = time.monotonic()
        try:
            run = FullSync(run, workers=opts["workers"], page_limit=opts["limit"], progress=bar).execute()
        except KeyboardInterrupt:
            if bar:
                bar.end()
            raise CommandError(f"interrupted; `siyu sync` resumes run {run.id}") from None
        except Exception as e:  # any failure leaves a resumable run: say so
            if bar:
                bar.end()
            raise CommandError(f"sync run {run.id} failed: {e}; `siyu sync` resumes it") from e
        if bar:
            bar.end()
        c = run.counts
        self.stdout.write(
            f"sync run {run.id} done in {time.monotonic() - started:.1f}s: "
            f"{c.get('departments', 0)} departments, {c.get('employees', 0)} employees, "
            f"{c.get('tags', 0)} tags, {c.get('customers', 0)} customers, {c.get('relations', 0)} relations, "
            f"{c.get('groups', 0)} groups, {c.get('group_members', 0)} group members; "
            f"reconciled {c.get('reconciled_relations', 0)} relations, {c.get('reconciled_groups', 0)} groups"
        )
