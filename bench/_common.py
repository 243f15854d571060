"""Shared benchmark plumbing: start the emulator and the product as real processes, fire HTTP load."""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # the checkout's code, also when the install is elsewhere

from siyu.wecom_sim.process import SimProcess, free_port  # noqa: E402

BENCH_VAR = ROOT / "var" / "bench"
BENCH_VAR.mkdir(parents=True, exist_ok=True)


def postgres_answers(host: str = "127.0.0.1", port: int = 5432) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def pg_database(name: str, fresh: bool) -> str:
    """A PostgreSQL database on the local server (trust auth, as on our machines): its URL."""
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        exists = c.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if exists and fresh:
            c.execute(f'drop database "{name}" with (force)')
            exists = None
        if not exists:
            c.execute(f'create database "{name}"')
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


class SqlDB:
    """A DB-API connection to a SQLite file or a PostgreSQL URL, with ``?`` placeholders for both."""

    def __init__(self, target: str):
        self.pg = target.startswith("postgres")
        if self.pg:
            import psycopg

            self.conn = psycopg.connect(target, autocommit=True)
        else:
            import sqlite3

            self.conn = sqlite3.connect(target)

    def rows(self, sql: str, params: tuple = ()) -> list:
        if self.pg:
            return self.conn.execute(sql.replace("?", "%s"), params).fetchall()
        return self.conn.execute(sql, params).fetchall()

    def close(self) -> None:
        self.conn.close()


def emulator(
    name: str,
    customers: int,
    seed: int = 1,
    demo: bool = False,
    nice: int = 0,
    fresh: bool = False,
    database_url: str = "",
) -> SimProcess:
    """An emulator whose seeded database is kept under var/bench/<name> and reused across runs
    (``fresh``: seeded anew, for a benchmark whose runs add to the world). ``database_url``: its
    database elsewhere (PostgreSQL), instead of var/bench/<name>/sim.sqlite3.

    ``nice``: lower its CPU priority once started. The emulator stands in for WeCom, whose CPU is
    not ours in production; on a 2-core bench machine it would otherwise take the product's share.
    """
    workdir = BENCH_VAR / name
    workdir.mkdir(parents=True, exist_ok=True)
    if fresh:
        for f in workdir.glob("sim.sqlite3*"):
            f.unlink()
    env = {"SIM_LOG_LEVEL": "WARNING"}
    if database_url:
        env["SIM_DATABASE_URL"] = database_url
    sim = SimProcess(customers=customers, seed=seed, demo=demo, workdir=str(workdir), env=env)
    sim.database = database_url or str(workdir / "sim.sqlite3")
    sim.start(timeout=1800)
    if nice and sim.proc is not None:
        renice(sim.proc.pid, nice)
    return sim


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def renice(pid: int, increment: int) -> None:
    """Lower the CPU priority of a process, its threads and its children (Linux: nice is per thread)."""
    for p in _descendants(pid):
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{p}/task")]
        except OSError:
            tids = [p]
        for tid in tids:
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + increment))


class Product:
    """``siyu serve`` (and optionally ``siyu worker``) on a fresh database under var/bench."""

    def __init__(self, name: str, sim: SimProcess | None, env: dict | None = None, fresh: bool = True):
        self.dir = BENCH_VAR / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.db = self.dir / "siyu.sqlite3"
        if fresh:
            for suffix in ("", "-wal", "-shm"):
                p = Path(str(self.db) + suffix)
                if p.exists():
                    p.unlink()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ)
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        self.env.update(
            {
                "SIYU_VAR_DIR": str(self.dir),
                "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{self.db}",
                "SIYU_LOG_LEVEL": "WARNING",
                "WECOM_CALLBACK_TOKEN": "benchToken",
                "WECOM_CALLBACK_AES_KEY": "YmVuY2hCZW5jaEJlbmNoQmVuY2hCZW5jaEJlbmNoMDE",
            }
        )
        if sim is not None:
            self.env.update(
                {
                    "WECOM_CORP_ID": sim.corp_id,
                    "WECOM_API_BASE": sim.base_url,
                    "WECOM_CONTACT_SECRET": sim.secret,
                    "WECOM_APP_SECRET": sim.app_secret,
                    "WECOM_AGENT_ID": "1000002",
                }
            )
        self.env.update(env or {})
        self.procs: list[subprocess.Popen] = []

    def siyu(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "siyu.cli", *args], env=self.env, check=check, capture_output=True, text=True
        )

    def migrate(self) -> None:
        self.siyu("migrate", "--noinput")

    def serve(self, workers: int = 2, threads: int = 8) -> None:
        with open(self.dir / "serve.log", "w") as log:  # the child keeps its own copy of the descriptor
            p = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "siyu.cli",
                    "serve",
                    "--port",
                    str(self.port),
                    "--workers",
                    str(workers),
                    "--threads",
                    str(threads),
                ],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self.procs.append(p)
        wait_port(self.port)

    def worker(self, *extra: str) -> subprocess.Popen:
        with open(self.dir / "worker.log", "a") as log:  # the child keeps its own copy of the descriptor
            p = subprocess.Popen(
                [sys.executable, "-m", "siyu.cli", "worker", *extra],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self.procs.append(p)
        return p

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        self.procs.clear()


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"port {port} did not open")


# --- a lean keep-alive HTTP/1.1 load generator (raw sockets, pre-built requests) ---------------
def build_post(path: str, query: dict, body: bytes, port: int) -> bytes:
    head = (
        f"POST {path}?{urlencode(query)} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: text/xml\r\nContent-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


def _read_response(sock: socket.socket, buf: bytearray) -> int:
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = bytes(buf[:end]).decode("latin-1")
            status = int(head.split(" ", 2)[1])
            length = 0
            for line in head.split("\r\n")[1:]:
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            total = end + 4 + length
            while len(buf) < total:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed")
                buf.extend(chunk)
            del buf[:total]
            return status
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buf.extend(chunk)


def _client(port: int, requests: list[bytes], out: mp.Queue) -> None:
    import threading

    lat: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    it = iter(requests)

    def run() -> None:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = bytearray()
        local: list[float] = []
        codes: dict[int, int] = {}
        while True:
            with lock:
                req = next(it, None)
            if req is None:
                break
            t0 = time.perf_counter()
            try:
                sock.sendall(req)
                code = _read_response(sock, buf)
            except (ConnectionError, OSError):
                sock.close()
                sock = socket.create_connection(("127.0.0.1", port))
                buf.clear()
                code = 0
            local.append(time.perf_counter() - t0)
            codes[code] = codes.get(code, 0) + 1
        sock.close()
        with lock:
            lat.extend(local)
            for k, v in codes.items():
                statuses[k] = statuses.get(k, 0) + v

    threads = [threading.Thread(target=run) for _ in range(out_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((lat, statuses))


out_threads = 4


def fire(port: int, requests: list[bytes], processes: int = 2, threads: int = 4) -> dict:
    """Send every request once over keep-alive connections; returns timing and status counts."""
    global out_threads
    out_threads = threads
    chunks = [requests[i::processes] for i in range(processes)]
    q: mp.Queue = mp.get_context("fork").Queue()
    procs = [mp.get_context("fork").Process(target=_client, args=(port, c, q)) for c in chunks]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    results = [q.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - t0
    lat = sorted(x for r in results for x in r[0])
    statuses: dict[int, int] = {}
    for _, s in results:
        for k, v in s.items():
            statuses[k] = statuses.get(k, 0) + v
    return {
        "n": len(requests),
        "elapsed_s": elapsed,
        "per_s": len(requests) / elapsed,
        "p50_ms": lat[len(lat) // 2] * 1000,
        "p99_ms": lat[int(len(lat) * 0.99)] * 1000,
        "statuses": statuses,
    }


def emit_result(result: dict) -> None:
    print(json.dumps(result, ensure_ascii=False))


def point_product_at(sim: SimProcess) -> None:
    """Store ``sim`` as the product's WeCom (its console settings), in a process where Django is set
    up; what the administrator's settings page does, through the same service."""
    from siyu.wecom import services  # lazy: Django must be set up by the caller first

    services.save_settings(
        {
            "corp_id": sim.corp_id,
            "api_base": sim.base_url,
            "contact_secret": sim.secret,
            "app_secret": sim.app_secret,
            "agent_id": "1000002",
        }
    )
