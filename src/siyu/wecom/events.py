"""Parsing decrypted callback XML into a flat dict, and the dedupe key of an event."""

from __future__ import annotations

import hashlib
from typing import Any
from xml.etree import ElementTree as ET


class MalformedEvent(ValueError):
    pass


def parse(xml_text: str | bytes) -> dict[str, Any]:
    """Flatten ``<xml>``: leaf elements become strings, ``<X><Item>..</Item></X>`` becomes a list."""
    if isinstance(xml_text, str):
        xml_text = xml_text.encode("utf-8")
    if b"<!DOCTYPE" in xml_text or b"<!ENTITY" in xml_text:
        raise MalformedEvent("DTDs and entities are not accepted")
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as e:
        raise MalformedEvent(f"not XML: {e}") from None
    if root.tag != "xml":
        raise MalformedEvent("root element is not <xml>")
    out: dict[str, Any] = {}
    for child in root:
        items = list(child)
        if items:
            out[child.tag] = [(i.text or "").strip() for i in items]
        else:
            out[child.tag] = (child.text or "").strip()
    return out


# Fields that identify an event, per family (part3 §2.7): WeCom supplies no id for these events,
# and tag events share CreateTime, so the key is built from the event's own fields.
_KEY_FIELDS = {
    "change_external_contact": (
        "ChangeType",
        "UserID",
        "ExternalUserID",
        "State",
        "Source",
        "FailReason",
        "CreateTime",
    ),
    "change_external_chat": ("ChangeType", "ChatId", "UpdateDetail", "MemChangeList", "CurMemVer", "CreateTime"),
    "change_external_tag": ("ChangeType", "Id", "TagType", "StrategyId", "CreateTime"),
}


def dedupe_key(event: dict[str, Any], plaintext: bytes) -> str:
    name = event.get("Event") or event.get("MsgType") or ""
    if event.get("MsgId"):
        basis = f"msgid|{event['MsgId']}"
    elif name in _KEY_FIELDS:
        parts = [name]
        for f in _KEY_FIELDS[name]:
            v = event.get(f, "")
            parts.append(",".join(v) if isinstance(v, list) else str(v))
        basis = "|".join(parts)
    else:
        # change_contact and anything else: the whole plaintext (identical across WeCom's retries)
        basis = "raw|" + hashlib.sha256(plaintext).hexdigest()
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()
