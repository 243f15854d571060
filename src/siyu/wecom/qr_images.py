"""Fetching the QR code images WeCom hosts (a contact way's or join way's ``qr_code`` URL).

Only ``siyu.wecom`` talks to WeCom; the image is a plain HTTPS download, not an API call, so it is
not logged in ApiCall."""

from __future__ import annotations

import requests

MAX_BYTES = 2 * 1024 * 1024


def fetch_qr_png(url: str, timeout: float = 10.0) -> bytes:
    if not url.startswith(("http://", "https://")):
        raise ValueError("not a QR code URL")
    with requests.get(url, timeout=timeout, stream=True) as r:
        r.raise_for_status()
        data = r.raw.read(MAX_BYTES + 1, decode_content=True)
    if len(data) > MAX_BYTES:
        raise ValueError("QR code image too large")
    return data
