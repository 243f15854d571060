"""The one door to WeCom. Other apps call ``gateway.contact()`` / ``gateway.app()``, never URLs.

Errors: ``WeComAPIError`` (WeCom answered a non-zero errcode, or is not configured) and its
subclass ``WeComUnavailable`` (WeCom could not be reached). Their texts hold no token or secret.
Callers never need ``requests``. ``redact(text)`` cleans any other text before it is shown,
stored or logged. ``fetch_qr_png(url)`` downloads a QR image WeCom serves. ``identity``: OAuth and
web-login URLs, code → member, JS-SDK signatures (part 4).
"""

from siyu.wecom import identity
from siyu.wecom.client import (
    WeComAPIError,
    WeComClient,
    WeComUnavailable,
    client,
    collect_calls,
    record_calls,
)
from siyu.wecom.endpoints import ExternalContactAPI, ExternalContactGroupChatAPI
from siyu.wecom.qr_images import fetch_qr_png
from siyu.wecom.redaction import error_text, redact

__all__ = [
    "ExternalContactAPI",
    "ExternalContactGroupChatAPI",
    "WeComAPIError",
    "WeComClient",
    "WeComUnavailable",
    "app",
    "client",
    "collect_calls",
    "contact",
    "error_text",
    "fetch_qr_png",
    "identity",
    "record_calls",
    "redact",
]


def contact() -> WeComClient:
    """Client for the customer-contact (客户联系) secret: customers, tags, groups, messages..."""
    return client("contact")


def app() -> WeComClient:
    """Client for the self-built app's secret: app messages (message/send) and media."""
    return client("app")
