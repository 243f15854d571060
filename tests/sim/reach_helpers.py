"""Helpers for the reach & transfer emulator tests (mass messages, Moments, transfers, statistics,
app messages, media)."""

from __future__ import annotations

import contextlib
import itertools
import struct
import threading
import time
import xml.etree.ElementTree as ET
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from wechatpy.work.crypto import WeChatCrypto

CB_TOKEN = "reachCallbackToken"
CB_AES_KEY = "cmVhY2hDYWxsYmFja0Flc0tleTAxMjM0NTY3ODlhYmM"  # 43 chars → a 32-byte key

_counter = itertools.count(1)


def uid(prefix: str = "r") -> str:
    return f"{prefix}{next(_counter)}x{int(time.time() * 1000) % 10**9}"


def employee(sim, **fields) -> str:
    """A fresh active employee with the customer-contact function."""
    body = {"userid": uid("emp"), "name": "触达测试员工", "department": [1]}
    body.update(fields)
    return sim.control("employee/create", body)["user"]["userid"]


def customer_of(sim, userid: str, **extra) -> str:
    """A new WeChat user added by ``userid`` (or an existing one with external_userid=...)."""
    body = {"userid": userid, "add_way": 2}
    body.update(extra)
    return sim.control("add_friend", body)["external_userid"]


def customers_of(sim, userid: str, n: int) -> list[str]:
    return [customer_of(sim, userid) for _ in range(n)]


def resign(sim, userid: str) -> dict:
    return sim.control("employee/resign", {"userid": userid})


def new_tags(sim, *names: str) -> list[str]:
    group = sim.control("tags/admin_create", {"group_name": uid("组"), "tags": list(names)})["tag_group"]
    by_name = {t["name"]: t["id"] for t in group["tag"]}
    return [by_name[n] for n in names]


def tag(sim, userid: str, external_userid: str, *tag_ids: str) -> None:
    sim.control("customer/edit", {"userid": userid, "external_userid": external_userid, "add_tag": list(tag_ids)})


def png_bytes(size: int = 0) -> bytes:
    """A real 1×1 PNG, padded with a trailing chunk to ``size`` bytes when asked."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
    )
    end = chunk(b"IEND", b"")
    if size:
        pad = size - len(png) - len(end) - 12
        assert pad >= 0
        png += chunk(b"tEXt", b"x" * pad)
    return png + end


def mp4_bytes(size: int = 64) -> bytes:
    head = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
    return head + b"\x00" * max(0, size - len(head))


def amr_bytes(size: int = 64) -> bytes:
    return b"#!AMR\n" + b"\x3c" * max(0, size - 6)


def upload(sim, media_type: str, data: bytes, name: str, ctype: str = "application/octet-stream") -> dict:
    return sim.call("media/upload", params={"type": media_type}, files={"media": (name, data, ctype)})


def upload_image(sim) -> str:
    r = upload(sim, "image", png_bytes(), "pic.png", "image/png")
    assert r["errcode"] == 0, r
    return r["media_id"]


def upload_attachment(sim, media_type: str = "image", attachment_type: int = 1, data: bytes | None = None,
                      name: str | None = None) -> dict:
    if data is None:
        data = {"image": png_bytes(), "video": mp4_bytes(), "file": b"hello attachment"}[media_type]
    name = name or {"image": "a.png", "video": "v.mp4", "file": "f.txt"}[media_type]
    return sim.call(
        "media/upload_attachment",
        params={"media_type": media_type, "attachment_type": attachment_type},
        files={"media": (name, data, "application/octet-stream")},
    )


def moment_image(sim) -> str:
    r = upload_attachment(sim, "image", 1)
    assert r["errcode"] == 0, r
    return r["media_id"]


def parse_event(xml: str) -> dict:
    root = ET.fromstring(xml)
    out: dict = {}
    for child in root:
        items = list(child)
        out[child.tag] = [i.text or "" for i in items] if items else (child.text or "")
    return out


def sim_events(sim, since: int = 0) -> list[dict]:
    """The callbacks the emulator queued (from its outbox), parsed."""
    out = []
    for cb in sim.control("callbacks", {"since": since, "limit": 100000})["callbacks"]:
        ev = parse_event(cb["xml"])
        ev["_id"] = cb["id"]
        out.append(ev)
    return out


def last_callback_id(sim) -> int:
    cbs = sim.control("callbacks", {"since": 0, "limit": 100000})["callbacks"]
    return cbs[-1]["id"] if cbs else 0


class CallbackReceiver:
    """A small HTTP server that plays the app's callback URL: it decrypts what WeCom pushes."""

    def __init__(self, corp_id: str, token: str = CB_TOKEN, aes_key: str = CB_AES_KEY):
        self.crypto = WeChatCrypto(token, aes_key, corp_id)
        self.token, self.aes_key = token, aes_key
        self.events: list[dict] = []
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _q(self):
                return {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}

            def do_GET(self):
                q = self._q()
                echo = receiver.crypto.check_signature(q["msg_signature"], q["timestamp"], q["nonce"], q["echostr"])
                body = echo if isinstance(echo, bytes) else echo.encode()
                self.send_response(200)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                q = self._q()
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                xml = receiver.crypto.decrypt_message(raw, q["msg_signature"], q["timestamp"], q["nonce"])
                with receiver.cond:
                    receiver.events.append(parse_event(xml))
                    receiver.cond.notify_all()
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"success")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callback"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> CallbackReceiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, pred, timeout: float = 10.0) -> dict:
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for ev in self.events:
                    if pred(ev):
                        return ev
                left = deadline - time.time()
                if left <= 0:
                    raise AssertionError(f"no matching callback in {timeout}s; got {self.events[-10:]}")
                self.cond.wait(left)

    def matching(self, pred) -> list[dict]:
        with self.cond:
            return [e for e in self.events if pred(e)]


@contextlib.contextmanager
def receiving(sim):
    """Point the emulator's callbacks at a fresh receiver for the duration of the block."""
    rx = CallbackReceiver(sim.corp_id).start()
    sim.control("config", {"callback_url": rx.url, "callback_token": rx.token, "callback_aes_key": rx.aes_key,
                           "verify": False})
    try:
        yield rx
    finally:
        sim.control("config", {"callback_url": "", "verify": False})
        rx.stop()


def wait_until(fn, timeout: float = 10.0, interval: float = 0.1):
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


@contextlib.contextmanager
def rules(sim, **values):
    """Set rules on ``sim`` for the block and reset them afterwards."""
    sim.set_rules(**values)
    try:
        yield
    finally:
        sim.reset_rules()
