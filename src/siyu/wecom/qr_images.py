"""Fetching the QR code images WeCom hosts (a contact way's or join way's ``qr_code`` URL).

Only ``siyu.wecom`` talks to WeCom; the image is a plain HTTPS download, not an API call, so it is
not logged in ApiCall. A download that fails raises ``WeComUnavailable`` (callers never see
``requests``' exceptions, whose text quotes the URL)."""

from __future__ import annotations

import requests
import urllib3

from siyu.wecom.client import WeComUnavailable, describe_network_error

MAX_BYTES = 2 * 1024 * 1024


def fetch_qr_png(url: str, timeout: float = 10.0) -> bytes:
    if not url.startswith(("http://", "https://")):
        raise ValueError("not a QR code URL")
    try:
        with requests.get(url, timeout=timeout, stream=True) as r:
            if not r.ok:
                raise WeComUnavailable(f"HTTP {r.status_code}", "qr_code", r.status_code)
            data = r.raw.read(MAX_BYTES + 1, decode_content=True)
    except (requests.RequestException, urllib3.exceptions.HTTPError) as e:  # raw reads raise urllib3's
        reason = describe_network_error(e)
    else:
        if len(data) > MAX_BYTES:
            raise ValueError("QR code image too large")
        return bytes(data)
    raise WeComUnavailable(reason, "qr_code")  # outside the except: no chained URL in tracebacks
