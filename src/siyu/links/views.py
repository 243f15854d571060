"""A short link's redirect (``/l/<code>``; under ``siyu serve`` the ASGI fast path answers it, this
view serves other servers and tests) and the console's report of clicks."""

from __future__ import annotations

import logging
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.utils.encoding import iri_to_uri
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from siyu.accounts.permissions import role_required
from siyu.accounts.selectors import data_scope
from siyu.customers import selectors as customer_selectors
from siyu.links import selectors, services
from siyu.wecom.media import selectors as media_selectors

logger = logging.getLogger("siyu.links")

GONE_PAGE = (
    '<!doctype html><html lang="zh-CN"><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
    '<title>链接无效</title><p style="font:16px sans-serif;margin:3em 1em;text-align:center">'
    "链接无效或已失效，请向发送给你的导购重新索取。</p></html>"
)


def not_found() -> HttpResponse:
    return HttpResponse(GONE_PAGE, status=404, content_type="text/html; charset=utf-8")


@never_cache
def follow(request: HttpRequest, code: str) -> HttpResponse:
    link_id = services.link_id_of(code)
    target = services.target_of(link_id) if link_id else None
    if link_id is None or target is None:
        logger.info("short link refused: %r", code[:32])
        return not_found()
    services.record_click(link_id, request.headers.get("User-Agent", ""))
    response = HttpResponseRedirect(target)
    response["Referrer-Policy"] = "no-referrer"
    return response


def image(request: HttpRequest, code: str) -> HttpResponse:
    """A link card's cover, public (the customer's WeChat fetches it) but unguessable."""
    pk = services.image_of(code)
    found = media_selectors.content(pk) if pk else None
    if found is None:
        return HttpResponse(status=404)
    data, content_type, _name = found
    resp = HttpResponse(data, content_type=content_type if content_type.startswith("image/") else "image/jpeg")
    resp["Cache-Control"] = "public, max-age=86400"
    resp["X-Content-Type-Options"] = "nosniff"
    return resp


PERIODS = {"7": 7, "30": 30, "90": 90}


@role_required("admin", "operator", "store_manager")
def report(request: HttpRequest) -> HttpResponse:
    period = request.GET.get("days", "30")
    days = PERIODS.get(period, 30)
    since = timezone.now() - timedelta(days=days)
    scope = data_scope(request.user)
    clickers = selectors.recent_clickers(scope, since)
    names = customer_selectors.names_by_external(r["link__external_userid"] for r in clickers)
    for r in clickers:
        r["name"] = names.get(r["link__external_userid"]) or _("未命名客户")
    context = {
        "days": days,
        "periods": list(PERIODS),
        "materials": selectors.by_material(scope, since),
        "employees": selectors.by_employee(scope, since),
        "clickers": clickers,
    }
    return render(request, "links/report.html", context)


# --- the ASGI fast path (``siyu serve``): no middleware, no thread while the click commits ---------------
_GONE = GONE_PAGE.encode("utf-8")


async def follow_asgi(scope, receive, send) -> None:
    """``/l/<code>`` on the event loop: the redirect is sent once the click is committed (a burst
    of clicks shares one transaction), so a click that was answered is never lost."""
    code = scope.get("path", "")[len(services.PATH) :]
    link_id = services.link_id_of(code)
    target = None
    if link_id is not None:
        target = services.cached_target(link_id)
        if target is None:
            target = await sync_to_async(services.target_of, thread_sensitive=False)(link_id)
    if link_id is None or target is None:
        await _answer(send, 404, [(b"content-type", b"text/html; charset=utf-8")], _GONE)
        return
    agent = ""
    for name, value in scope.get("headers") or []:
        if name == b"user-agent":
            agent = value.decode("latin-1")
            break
    try:
        await services.clicks.store_async(services.new_click(link_id, agent))
    except Exception:  # the customer still gets where they were going; the loss is logged
        logger.exception("a click on link %s was not stored", link_id)
    headers = [
        (b"location", iri_to_uri(target).encode("latin-1", "replace")),
        (b"cache-control", b"no-store"),
        (b"referrer-policy", b"no-referrer"),
    ]
    await _answer(send, 302, headers, b"")


async def _answer(send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
