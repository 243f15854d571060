import os

from django.core.management.base import BaseCommand

from siyu.core.worker import Worker


class Command(BaseCommand):
    help = "Run a background worker: callback inbox, timers and Django tasks."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=0.1, help="seconds to sleep when idle")
        parser.add_argument("--batch", type=int, default=100)
        parser.add_argument("--exit-when-idle", type=float, default=None, help="exit after N idle seconds")
        parser.add_argument(
            "--nice",
            type=int,
            default=int(os.environ.get("SIYU_WORKER_NICE", "10")),
            help="lower the worker's CPU priority by N (default 10, env SIYU_WORKER_NICE; 0 = keep it)",
        )

    def handle(self, *args, **opts):
        # Acknowledging WeCom's callbacks within 5 s (else it retries, and eventually stops sending)
        # matters more than how fast the backlog drains: on a shared machine the worker yields the
        # CPU to the web processes that answer callbacks. Inbox rows wait safely meanwhile.
        if opts["nice"] > 0:
            os.nice(opts["nice"])
        w = Worker(interval=opts["interval"], batch=opts["batch"])
        w.install_signals()
        self.stdout.write(f"worker {w.worker_id} running (Ctrl+C to stop)")
        self.stdout.flush()
        w.run(max_idle_s=opts["exit_when_idle"])
