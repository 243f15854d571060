"""Helpers for the part-1 emulator tests (customers, tags, contact ways, welcome, groups)."""

from __future__ import annotations

import io
import itertools
import threading
import time
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from wechatpy.exceptions import InvalidSignatureException
from wechatpy.work.crypto import WeChatCrypto
from wechatpy.work.exceptions import InvalidCorpIdException

CB_TOKEN = "part1CallbackToken"
CB_AES_KEY = "cGFydDFDYWxsYmFja0Flc0tleTAxMjM0NTY3ODlhYmM"  # 43 chars → a 32-byte key

_counter = itertools.count(1)


def employee(sim, **fields) -> str:
    """A fresh employee with the customer-contact function, created as the admin would."""
    n = next(_counter)
    body = {"userid": f"p1emp{n}_{int(time.time() * 1000) % 10**8}", "name": f"测试员工{n}", "department": [1]}
    body.update(fields)
    return sim.control("employee/create", body)["user"]["userid"]


def customer_of(sim, userid: str, **extra) -> str:
    """A new WeChat user who becomes the employee's customer (an add not through a contact way)."""
    body = {"userid": userid, "add_way": 2}
    body.update(extra)
    return sim.control("add_friend", body)["external_userid"]


def png_bytes() -> bytes:
    import qrcode

    buf = io.BytesIO()
    qrcode.make("siyu-test").save(buf, format="PNG")
    return buf.getvalue()


def upload_image(sim) -> str:
    r = sim.call("media/upload", params={"type": "image"}, files={"media": ("pic.png", png_bytes(), "image/png")})
    assert r["errcode"] == 0, r
    return r["media_id"]


def upload_file(sim) -> str:
    r = sim.call("media/upload", params={"type": "file"}, files={"media": ("a.txt", b"hello siyu file", "text/plain")})
    assert r["errcode"] == 0, r
    return r["media_id"]


def parse_event(xml: str) -> dict:
    root = ET.fromstring(xml)
    out: dict = {}
    for child in root:
        items = list(child)
        out[child.tag] = [i.text or "" for i in items] if items else (child.text or "")
    return out


class CallbackReceiver:
    """A tiny HTTP server that answers WeCom's URL check and decrypts the events it receives."""

    def __init__(self, corp_id: str, token: str = CB_TOKEN, aes_key: str = CB_AES_KEY):
        self.crypto = WeChatCrypto(token, aes_key, corp_id)
        self.token, self.aes_key = token, aes_key
        self.events: list[dict] = []
        self.verified = 0
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                q = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
                try:
                    echo = receiver.crypto.check_signature(q["msg_signature"], q["timestamp"], q["nonce"], q["echostr"])
                except (KeyError, ValueError, InvalidSignatureException, InvalidCorpIdException):
                    self.send_response(403)
                    self.end_headers()
                    return
                body = echo if isinstance(echo, bytes) else echo.encode()
                receiver.verified += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                q = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    xml = receiver.crypto.decrypt_message(raw, q["msg_signature"], q["timestamp"], q["nonce"])
                except (KeyError, ValueError, InvalidSignatureException, InvalidCorpIdException):
                    self.send_response(400)
                    self.end_headers()
                    return
                if isinstance(xml, bytes):
                    xml = xml.decode()
                with receiver.cond:
                    receiver.events.append(parse_event(xml))
                    receiver.cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callback"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def configure(self, sim, verify: bool = False) -> dict:
        return sim.control("config", {"callback_url": self.url, "callback_token": self.token,
                                      "callback_aes_key": self.aes_key, "verify": verify})

    def wait_for(self, pred, timeout: float = 15.0, count: int = 1) -> list[dict]:
        deadline = time.time() + timeout
        with self.cond:
            while True:
                found = [e for e in self.events if pred(e)]
                if len(found) >= count:
                    return found
                left = deadline - time.time()
                if left <= 0:
                    raise AssertionError(f"no matching callback in {timeout}s; got {self.events[-5:]}")
                self.cond.wait(left)

    def close(self, sim) -> None:
        sim.control("config", {"callback_url": "", "verify": False})
        self.server.shutdown()
        self.server.server_close()


def outbox(sim, **match) -> list[dict]:
    """Queued callbacks (the emulator's outbox) whose parsed fields match ``match``."""
    rows = sim.control("callbacks", {"since": 0, "limit": 100000})["callbacks"]
    out = []
    for row in rows:
        ev = parse_event(row["xml"])
        if all(ev.get(k) == v for k, v in match.items()):
            out.append(ev)
    return out
