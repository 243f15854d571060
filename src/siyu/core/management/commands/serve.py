import os

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve the console, REST API and WeCom callback endpoint (gunicorn, threads)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("SIYU_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("SIYU_PORT", "8000")))
        parser.add_argument("--workers", type=int, default=int(os.environ.get("SIYU_WEB_WORKERS", "2")))
        parser.add_argument("--threads", type=int, default=int(os.environ.get("SIYU_WEB_THREADS", "8")))
        parser.add_argument("--access-log", action="store_true")

    def handle(self, *args, **opts):
        from siyu.core import server
        from siyu.wsgi import application

        self.stdout.write(f"Siyu console on http://{opts['host']}:{opts['port']}/")
        self.stdout.flush()
        server.run(
            application,
            host=opts["host"],
            port=opts["port"],
            workers=opts["workers"],
            threads=opts["threads"],
            access_log=opts["access_log"],
        )
