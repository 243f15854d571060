"""``siyu sim``: migrate the emulator's database, seed a world if empty, and serve it."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the WeCom emulator (its own database and port)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("SIM_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("SIM_PORT", "8900")))
        parser.add_argument("--customers", type=int, default=None, help="seed a world of N customers")
        parser.add_argument("--seed", type=int, default=1, help="random seed of the world")
        parser.add_argument("--demo", action="store_true", help="seed the demo brand (HQ, 2 regions, 6 stores)")
        parser.add_argument("--reseed", action="store_true", help="drop the existing world first")
        parser.add_argument("--no-serve", action="store_true", help="migrate and seed, then exit")
        parser.add_argument(
            "--threads",
            type=int,
            default=int(os.environ.get("SIM_THREADS", "32")),
            help="request threads (default SIM_THREADS or 32)",
        )
        parser.add_argument(
            "--world",
            action="store_true",
            help="serve only the scenario actions that stand for customers (scan, scan_many, add_friend) "
            "over the database of an emulator already running: a second process for the load a benchmark "
            "generates, so that it does not take the CPU of the emulated WeCom API",
        )
        parser.add_argument(
            "--do",
            metavar="ACTION",
            help="drive a running emulator instead of starting one: a control action such as scan, "
            "delete, group/join, mass/confirm, transfer/refuse, time/advance, status",
        )
        parser.add_argument("--json", default="{}", help="the action's arguments, as a JSON object")
        parser.add_argument("--url", default=None, help="the running emulator (default http://HOST:PORT)")

    def handle(self, *args, **opts):
        if opts["do"]:
            return self.drive(opts)
        from siyu.wecom_sim import world

        if opts["world"]:
            return self.serve_world(opts)
        call_command("migrate", verbosity=0, interactive=False)
        if opts["reseed"] or not world.is_seeded():
            customers = opts["customers"] if opts["customers"] is not None else 5000
            stats = world.seed(
                customers=customers, seed=opts["seed"], demo=opts["demo"] or opts["customers"] is None, reset=True
            )
            self.stdout.write(f"seeded world: {stats}")
        self.stdout.write(
            f"WeCom emulator on http://{opts['host']}:{opts['port']}/cgi-bin/  control: /sim/\n"
            f"  SIM_CORP_ID={settings.SIM_CORP_ID}\n  SIM_SECRET={settings.SIM_SECRET}\n"
            f"  agent id {settings.SIM_AGENT_ID}; database {settings.DATABASES['default']['NAME']}"
        )
        self.stdout.flush()
        if opts["no_serve"]:
            return
        from django.core.wsgi import get_wsgi_application

        from siyu import server

        app = get_wsgi_application()

        def start_background():
            from siyu.wecom_sim import callbacks, control, framework
            from siyu.wecom_sim.endpoints import mall

            callbacks.start_delivery()
            mall.start_pusher()
            control.start_ticker()
            framework.start_log_flusher()

        server.run(
            app,
            host=opts["host"],
            port=opts["port"],
            workers=1,
            threads=opts["threads"],
            on_worker_start=start_background,
        )

    def serve_world(self, opts) -> None:
        """Customers' side only (their phones, not WeCom's servers): the scenario actions of
        ``control.WORLD_ACTIONS``, no WeCom API, no callback delivery and no clock ticks (the main
        emulator process does those: it delivers what this one queues)."""
        from django.core.wsgi import get_wsgi_application

        from siyu import server
        from siyu.wecom_sim import control

        control.serve_world_only()
        self.stdout.write(f"WeCom emulator, customers' side, on http://{opts['host']}:{opts['port']}/sim/")
        self.stdout.flush()
        server.run(get_wsgi_application(), host=opts["host"], port=opts["port"], workers=1, threads=opts["threads"])

    def drive(self, opts) -> None:
        """``siyu sim --do ACTION --json '{...}'``: POST to the running emulator's /sim/ACTION."""
        import json

        import requests
        from django.core.management.base import CommandError

        url = (opts["url"] or f"http://{opts['host']}:{opts['port']}").rstrip("/")
        try:
            payload = json.loads(opts["json"])
        except json.JSONDecodeError as e:
            raise CommandError(f"--json is not valid JSON: {e}") from e
        try:
            r = requests.post(f"{url}/sim/{opts['do']}", json=payload, timeout=120)
        except requests.RequestException as e:
            raise CommandError(f"no emulator answers at {url}: {e}") from e
        self.stdout.write(json.dumps(r.json(), ensure_ascii=False, indent=2))
        if r.status_code != 200:
            raise CommandError(f"{opts['do']} failed (HTTP {r.status_code})")
