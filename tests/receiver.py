"""A stand-in for the product's callback URL: answers WeCom's URL check and decrypts events.

Used by the emulator tests to see exactly what WeCom would push. It can misbehave on purpose
(``fail_first`` answers HTTP 500 to the first N deliveries, ``delay_s`` answers late) to test
WeCom's retries.
"""

from __future__ import annotations

import contextlib
import threading
import time
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from wechatpy.exceptions import InvalidSignatureException
from wechatpy.work.crypto import WeChatCrypto
from wechatpy.work.exceptions import InvalidCorpIdException

CB_TOKEN = "simTestCallbackToken"
CB_AES_KEY = "c2ltVGVzdENhbGxiYWNrQWVzS2V5MDEyMzQ1Njc4OWE"  # 43 chars → a 32-byte key


def parse_event(xml: str) -> dict:
    root = ET.fromstring(xml)
    out: dict = {}
    for child in root:
        items = list(child)
        out[child.tag] = [i.text or "" for i in items] if items else (child.text or "")
    return out


class CallbackReceiver:
    def __init__(
        self, corp_id: str, token: str = CB_TOKEN, aes_key: str = CB_AES_KEY, fail_first: int = 0, delay_s: float = 0
    ):
        self.crypto = WeChatCrypto(token, aes_key, corp_id)
        self.token, self.aes_key = token, aes_key
        self.events: list[dict] = []
        self.attempts = 0  # POSTs received, including the refused ones
        self.verified = 0
        self.fail_first = fail_first
        self.delay_s = delay_s
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _query(self) -> dict:
                return {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}

            def _answer(self, status: int, body: bytes = b"") -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                q = self._query()
                try:
                    echo = receiver.crypto.check_signature(q["msg_signature"], q["timestamp"], q["nonce"], q["echostr"])
                except (KeyError, ValueError, InvalidSignatureException, InvalidCorpIdException):
                    return self._answer(403)
                receiver.verified += 1
                self._answer(200, echo if isinstance(echo, bytes) else echo.encode())

            def do_POST(self):
                q = self._query()
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.cond:
                    receiver.attempts += 1
                    failing = receiver.attempts <= receiver.fail_first
                if failing:
                    return self._answer(500)
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                try:
                    xml = receiver.crypto.decrypt_message(raw, q["msg_signature"], q["timestamp"], q["nonce"])
                except (KeyError, ValueError, InvalidSignatureException, InvalidCorpIdException):
                    return self._answer(400)
                with receiver.cond:
                    receiver.events.append(parse_event(xml if isinstance(xml, str) else xml.decode()))
                    receiver.cond.notify_all()
                self._answer(200)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callback"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def configure(self, sim, verify: bool = False) -> dict:
        sim.control("callbacks/discard")
        return sim.control(
            "config",
            {
                "callback_url": self.url,
                "callback_token": self.token,
                "callback_aes_key": self.aes_key,
                "verify": verify,
            },
        )

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

    def matching(self, pred) -> list[dict]:
        """The events received so far that match ``pred`` (no waiting)."""
        with self.cond:
            return [e for e in self.events if pred(e)]

    def take(self, pred, timeout: float = 15.0) -> dict:
        """Wait for the first matching event and remove it, so that the next ``take`` with the same
        ``pred`` finds a later one."""
        event = self.wait_for(pred, timeout)[0]
        with self.cond:
            self.events[:] = [e for e in self.events if e is not event]
        return event

    def drain(self, wait_s: float = 0) -> list[dict]:
        """Wait ``wait_s`` seconds, then return every event received so far and forget them."""
        if wait_s:
            time.sleep(wait_s)
        with self.cond:
            got, self.events[:] = list(self.events), []
        return got

    def close(self, sim) -> None:
        sim.control("config", {"callback_url": "", "verify": False})
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def receiving(sim, verify: bool = False, **options):
    """A receiver (``options`` as for CallbackReceiver) that gets ``sim``'s callbacks for the block."""
    rx = CallbackReceiver(sim.corp_id, **options)
    try:
        rx.configure(sim, verify=verify)
        yield rx
    finally:
        rx.close(sim)
