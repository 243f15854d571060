import os

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Serve the console, REST API and WeCom callback endpoint (uvicorn: callbacks on the event loop, "
        "Django's WSGI application in a thread pool; see siyu.asgi)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("SIYU_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("SIYU_PORT", "8000")))
        parser.add_argument("--workers", type=int, default=int(os.environ.get("SIYU_WEB_WORKERS", "2")))
        parser.add_argument(
            "--threads", type=int, default=int(os.environ.get("SIYU_WEB_THREADS", "8")),
            help="threads per worker process for the console and REST API",
        )
        parser.add_argument("--access-log", action="store_true")

    def handle(self, *args, **opts):
        import uvicorn

        os.environ["SIYU_WEB_THREADS"] = str(opts["threads"])  # read by siyu.asgi in each worker
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
