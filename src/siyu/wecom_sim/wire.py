"""WeCom's callback wire format, free of Django: event XML and the encrypted push envelope.

Used by the emulator to send callbacks, and by tests and benchmarks to forge them.
"""

from __future__ import annotations

import secrets
import time
from typing import Any
from xml.sax.saxutils import escape

from wechatpy.crypto import _get_signature
from wechatpy.work.crypto import PrpCrypto


def _cdata(value: str) -> str:
    # "]]>" cannot appear inside CDATA; split it the standard way.
    return "<![CDATA[" + str(value).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def build_xml(fields: dict[str, Any]) -> str:
    parts = ["<xml>"]
    for key, value in fields.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, int):
            parts.append(f"<{key}>{value}</{key}>")
        elif isinstance(value, (list, tuple)):
            items = "".join(f"<Item>{_cdata(v)}</Item>" for v in value)
            parts.append(f"<{key}>{items}</{key}>")
        else:
            parts.append(f"<{key}>{_cdata(value)}</{key}>")
    parts.append("</xml>")
    return "".join(parts)


def envelope(xml: str, token: str, key: bytes, corp_id: str, timestamp: int | None = None) -> tuple[dict, bytes]:
    """Encrypt a plaintext event into WeCom's push form: (query parameters, XML body).

    Body: ToUserName, AgentID (empty for customer-contact events) and Encrypt; query:
    msg_signature = sha1(sort(token, timestamp, nonce, Encrypt)), timestamp, nonce.
    """
    nonce = str(secrets.randbelow(10**9))
    ts = str(timestamp or int(time.time()))
    encrypt = PrpCrypto(key).encrypt(xml, corp_id)
    if isinstance(encrypt, bytes):
        encrypt = encrypt.decode()
    body = (
        f"<xml><ToUserName><![CDATA[{escape(corp_id)}]]></ToUserName><AgentID><![CDATA[]]></AgentID>"
        f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    )
    params = {"msg_signature": _get_signature(token, ts, nonce, encrypt), "timestamp": ts, "nonce": nonce}
    return params, body.encode("utf-8")
