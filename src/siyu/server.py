"""Run a WSGI application under gunicorn (threads, keep-alive), for ``siyu serve`` and ``siyu sim``."""

from __future__ import annotations

import sys
from collections.abc import Callable

from gunicorn.app.base import BaseApplication

SWITCH_INTERVAL_S = 0.0005


class _App(BaseApplication):
    def __init__(self, app, options: dict, on_worker_start: Callable[[], None] | None):
        self._app = app
        self._options = options
        self._on_worker_start = on_worker_start
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)
        hook = self._on_worker_start

        def post_worker_init(worker) -> None:
            # Request threads hand the GIL over at every database call (sqlite3 and psycopg
            # release it while waiting); at the default 5 ms switch interval a thread coming back
            # from a 50 µs query waits up to 5 ms for the GIL behind a busy one, and a handler
            # making ten queries takes ten such waits. 0.5 ms keeps them short.
            sys.setswitchinterval(SWITCH_INTERVAL_S)
            if hook:
                hook()

        self.cfg.set("post_worker_init", post_worker_init)

    def load(self):
        return self._app


def run(
    app,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    threads: int = 16,
    on_worker_start: Callable[[], None] | None = None,
    access_log: bool = False,
) -> None:
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "keepalive": 30,
        "timeout": 120,
        "graceful_timeout": 5,
        "accesslog": "-" if access_log else None,
        "errorlog": "-",
        "loglevel": "warning",
        "backlog": 2048,
    }
    _App(app, options, on_worker_start).run()
