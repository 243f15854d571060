"""WSGI entry point. The WeCom callback URL takes a short path around Django's request cycle.

Callbacks need none of sessions, CSRF, auth, locale or messages, nor Django's request and
response objects: the short path hands the query, body and client address to
``siyu.wecom.callbacks.accept`` and writes its answer. That halves the CPU per callback, which
is what matters when WeCom pushes a burst.
"""

import os
from urllib.parse import parse_qsl

from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")
django_app = get_wsgi_application()

from siyu.wecom.callbacks import accept  # noqa: E402  (its models need the app registry: set up above)

CALLBACK_PATH = "/wecom/callback/"
_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 405: "Method Not Allowed", 503: "Service Unavailable"}


def _callback_app(environ, start_response):
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    try:
        status, content = accept(environ.get("REQUEST_METHOD", ""), query, body, environ.get("REMOTE_ADDR", ""))
    finally:
        close_old_connections()  # what Django's request_finished would do
    start_response(
        f"{status} {_REASONS.get(status, 'Error')}",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(content)))],
    )
    return [content]


def application(environ, start_response):
    if environ.get("PATH_INFO") == CALLBACK_PATH:
        return _callback_app(environ, start_response)
    return django_app(environ, start_response)
