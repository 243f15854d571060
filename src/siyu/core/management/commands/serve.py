import os
from typing import Any

import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = (
        "Serve the console, REST API and WeCom callback endpoint (uvicorn: callbacks on the event loop, "
        "Django's WSGI application in a thread pool; see siyu.asgi)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=settings.SIYU_HOST)
        parser.add_argument("--port", type=int, default=settings.SIYU_PORT)
        parser.add_argument("--workers", type=int, default=settings.SIYU_WEB_WORKERS)
        parser.add_argument(
            "--threads",
            type=int,
            default=settings.SIYU_WEB_THREADS,
            help="threads per worker process for the console and REST API",
        )
        parser.add_argument("--access-log", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        # read by siyu.asgi through settings: in this process (one worker) and in each worker
        # process uvicorn starts (their settings come from the environment)
        os.environ["SIYU_WEB_THREADS"] = str(opts["threads"])
        settings.SIYU_WEB_THREADS = opts["threads"]
        self.stdout.write(f"Siyu console on http://{opts['host']}:{opts['port']}/")
        self.stdout.flush()
        uvicorn.run(
            "siyu.asgi:application",
            host=opts["host"],
            port=opts["port"],
            workers=opts["workers"],
            loop="uvloop",
            http="httptools",
            lifespan="on",
            access_log=opts["access_log"],
            log_level="warning",
            timeout_keep_alive=30,
            proxy_headers=False,  # REMOTE_ADDR is the peer, as under gunicorn (no X-Forwarded-For trust)
            server_header=False,
            backlog=2048,
        )
