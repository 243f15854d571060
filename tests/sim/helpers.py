"""Helpers shared by the emulator tests: a module's own emulator, people and customers made through
the control API, media uploads, and the emulator's outbox of callbacks. (The callback receiver is
``tests/receiver.py``.)"""

from __future__ import annotations

import itertools
import struct
import time
import zlib

import pytest

from tests.receiver import parse_event
from tests.simproc import SimProcess

_counter = itertools.count(1)


def wait_for(predicate, timeout: float = 20, interval: float = 0.05):
    """Poll ``predicate`` until it returns something truthy (returned); fail after ``timeout`` s."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not reached in time")


def uid(prefix: str = "r") -> str:
    """An id no other test in this run uses."""
    return f"{prefix}{next(_counter)}x{int(time.time() * 1000) % 10**9}"


def own_sim(**options):
    """A module-scoped ``sim`` fixture (``sim = own_sim(customers=50, seed=21)``): the module's own
    emulator (``options`` as for SimProcess) in place of the session one, for tests that advance the
    clock or change the world; conftest's ``sim_rules`` then acts on it."""

    @pytest.fixture(scope="module")
    def sim():
        with SimProcess(**options) as proc:
            yield proc

    return sim


# --- people -------------------------------------------------------------------------------------
def employee(sim, **fields) -> str:
    """A fresh active employee with the customer-contact function, created as the admin would."""
    userid = uid("emp")
    body = {"userid": userid, "name": f"测试员工{userid}", "department": [1]}
    body.update(fields)
    return sim.control("employee/create", body)["user"]["userid"]


def customer_of(sim, userid: str, **extra) -> str:
    """A new WeChat user who becomes the employee's customer (an add not through a contact way), or
    an existing one with ``external_userid=...``."""
    body = {"userid": userid, "add_way": 2}
    body.update(extra)
    return sim.control("add_friend", body)["external_userid"]


def customers_of(sim, userid: str, n: int) -> list[str]:
    return [customer_of(sim, userid) for _ in range(n)]


def resign(sim, userid: str) -> dict:
    return sim.control("employee/resign", {"userid": userid})


def new_tags(sim, *names: str) -> list[str]:
    """The ids of new corp tags ``names``, in a new tag group."""
    group = sim.control("tags/admin_create", {"group_name": uid("组"), "tags": list(names)})["tag_group"]
    by_name = {t["name"]: t["id"] for t in group["tag"]}
    return [by_name[n] for n in names]


def tag(sim, userid: str, external_userid: str, *tag_ids: str) -> None:
    sim.control("customer/edit", {"userid": userid, "external_userid": external_userid, "add_tag": list(tag_ids)})


# --- media --------------------------------------------------------------------------------------
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
    """media/upload's answer for one file."""
    return sim.call("media/upload", params={"type": media_type}, files={"media": (name, data, ctype)})


def upload_image(sim) -> str:
    r = upload(sim, "image", png_bytes(), "pic.png", "image/png")
    assert r["errcode"] == 0, r
    return r["media_id"]


def upload_file(sim) -> str:
    r = upload(sim, "file", b"hello siyu file", "a.txt", "text/plain")
    assert r["errcode"] == 0, r
    return r["media_id"]


def upload_attachment(
    sim, media_type: str = "image", attachment_type: int = 1, data: bytes | None = None, name: str | None = None
) -> dict:
    """media/upload_attachment's answer (attachment_type 1: Moments, 2: product album)."""
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


# --- callbacks ----------------------------------------------------------------------------------
def outbox(sim, **match) -> list[dict]:
    """Queued callbacks (the emulator's outbox) whose parsed fields match ``match``."""
    rows = sim.control("callbacks", {"since": 0, "limit": 100000})["callbacks"]
    out = []
    for row in rows:
        ev = parse_event(row["xml"])
        if all(ev.get(k) == v for k, v in match.items()):
            out.append(ev)
    return out
