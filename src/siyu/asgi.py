"""ASGI entry point for ``siyu serve`` (uvicorn): the WeCom callback URL on the event loop, the rest
of Django (console, REST API, static files) as WSGI in a thread pool.

WeCom pushes callbacks in bursts and wants an answer within 5 s. A thread per request (gunicorn's
gthread) spends most of a callback's cost on request handling and thread hand-offs; on the event
loop, with uvicorn's C parser, a callback costs its checks (signature, AES decryption, XML: a
fraction of a millisecond) plus an awaited group commit into the inbox (``siyu.wecom.store``),
and thousands can wait for their commit at once without a thread each.

Everything else is Django's WSGI application, unchanged (sessions, CSRF, auth, locale, WhiteNoise),
run by a2wsgi in a pool of ``SIYU_WEB_THREADS`` threads, as gunicorn's threads ran it.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qsl

from a2wsgi import WSGIMiddleware

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")

from django.conf import settings

from siyu.wsgi import CALLBACK_PATH, django_app  # sets up Django (DJANGO_SETTINGS_MODULE above)

# django-stubs types WSGIHandler.__call__ as returning HttpResponseBase, which is the iterable of
# bytes WSGI wants at run time (the stubs do not say HttpResponseBase is iterable)
_console = WSGIMiddleware(django_app, workers=settings.SIYU_WEB_THREADS)  # type: ignore[arg-type]

# after siyu.wsgi: its models need the app registry, which siyu.wsgi loads
from siyu.links.views import follow_asgi  # noqa: E402
from siyu.wecom.callbacks import MAX_BODY, accept_async, reject_async  # noqa: E402


async def _read_body(receive, limit: int) -> bytes | None:
    """The request body, or None when it exceeds ``limit`` (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _callback(scope, receive, send) -> None:
    body = await _read_body(receive, MAX_BODY)
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
    client = scope.get("client") or ("", 0)
    if body is None:  # far larger than any WeCom event: refused like any malformed body
        status, content = await reject_async(client[0], 400, "malformed", "body too large")
    else:
        status, content = await accept_async(scope["method"], query, body, client[0])
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(content)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})


async def application(scope, receive, send) -> None:
    if scope["type"] == "http" and scope.get("path") == CALLBACK_PATH:
        await _callback(scope, receive, send)
        return
    if (
        settings.SIYU_LINK_FAST_PATH
        and scope["type"] == "http"
        and scope.get("path", "").startswith("/l/")
        and scope.get("method") in ("GET", "HEAD")
    ):
        await follow_asgi(scope, receive, send)  # a trackable link: redirect, click stored
        return
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await _console(scope, receive, send)
