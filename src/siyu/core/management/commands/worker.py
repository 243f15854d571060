import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from siyu import server
from siyu.core.worker import Worker


class Command(BaseCommand):
    help = "Run a background worker: callback inbox, timers and Django tasks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", type=float, default=0.1, help="seconds to sleep when idle")
        parser.add_argument("--batch", type=int, default=100)
        parser.add_argument("--exit-when-idle", type=float, default=None, help="exit after N idle seconds")
        parser.add_argument(
            "--nice",
            type=int,
            default=settings.SIYU_WORKER_NICE,
            help="lower the worker's CPU priority by N (default 10, env SIYU_WORKER_NICE; 0 = keep it)",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        sys.setswitchinterval(server.SWITCH_INTERVAL_S)  # its threads wait on WeCom and the database (see server)
        w = Worker(interval=opts["interval"], batch=opts["batch"], nice=max(0, opts["nice"]))
        w.install_signals()
        self.stdout.write(f"worker {w.worker_id} running (Ctrl+C to stop)")
        self.stdout.flush()
        w.run(max_idle_s=opts["exit_when_idle"])
