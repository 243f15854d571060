"""Start the WeCom emulator as a real server process and talk to it over HTTP.

Used by the tests, the benchmarks and anyone scripting against a throw-away emulator; it needs
nothing beyond the product's runtime dependencies (no pytest).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Self

import requests

SIM_CORP_ID = "ww5iyu0000demo0001"
SIM_SECRET = "siyu-sim-contact-secret-0000000000000000000"
SIM_APP_SECRET = "siyu-sim-app-secret-000000000000000000000000"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SimProcess:
    """An emulator process with its own database file.

    ``call()`` speaks the WeCom API (token handled), ``control()`` the /sim/ control API.
    """

    def __init__(
        self,
        customers: int = 300,
        seed: int = 7,
        demo: bool = False,
        env: dict | None = None,
        workdir: str | None = None,
    ):
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="siyu-sim-"))
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.corp_id = SIM_CORP_ID
        self.secret = SIM_SECRET
        self.app_secret = SIM_APP_SECRET
        self.customers = customers
        self.seed = seed
        self.demo = demo
        self.env = dict(os.environ)
        self.env.update(
            {
                "SIYU_VAR_DIR": str(self.workdir),
                "SIM_DATABASE_URL": f"sqlite:///{self.workdir / 'sim.sqlite3'}",
                "SIM_CORP_ID": SIM_CORP_ID,
                "SIM_SECRET": SIM_SECRET,
                "SIM_APP_SECRET": SIM_APP_SECRET,
            }
        )
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        self.env.update(env or {})
        self.proc: subprocess.Popen | None = None
        self.http = requests.Session()
        self._token: str | None = None

    def start(self, timeout: float = 120, world: bool = False) -> SimProcess:
        args = [
            sys.executable,
            "-m",
            "siyu.cli",
            "sim",
            "--port",
            str(self.port),
            "--seed",
            str(self.seed),
            "--customers",
            str(self.customers),
        ]
        if self.demo:
            args.append("--demo")
        if world:
            args.append("--world")
        with open(self.workdir / ("world.log" if world else "sim.log"), "w") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"emulator exited: {(self.workdir / 'sim.log').read_text()[-3000:]}")
            try:
                if self.http.get(self.base_url + "/sim/status", timeout=2).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError("emulator did not start in time")

    def world(self, timeout: float = 60) -> SimProcess:
        """A customers'-side process over this emulator's database (``siyu sim --world``): its
        ``control("scan_many", ...)`` generates adds without taking the API process's CPU."""
        other = SimProcess(self.customers, self.seed, self.demo, workdir=str(self.workdir))
        other.env = dict(self.env)
        return other.start(timeout, world=True)

    def __enter__(self) -> Self:
        return self if self.proc else self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None

    # --- WeCom API -------------------------------------------------------------------------------
    def token(self, refresh: bool = False) -> str:
        if refresh or not self._token:
            r = self.http.get(
                self.base_url + "/cgi-bin/gettoken", params={"corpid": self.corp_id, "corpsecret": self.secret}
            ).json()
            assert r["errcode"] == 0, r
            self._token = r["access_token"]
        return self._token

    def call(self, path: str, body: dict | None = None, method: str = "POST", params: dict | None = None, **kw) -> dict:
        q = {"access_token": self.token()}
        q.update(params or {})
        url = f"{self.base_url}/cgi-bin/{path}"
        for attempt in (1, 2):
            if method == "GET":
                r = self.http.get(url, params=q, timeout=30).json()
            elif "files" in kw:
                r = self.http.post(url, params=q, files=kw["files"], timeout=30).json()
            else:
                r = self.http.post(url, params=q, json=body or {}, timeout=30).json()
            # a token expired by an advanced clock: fetch a new one and retry once, like SDKs do
            if attempt == 1 and r.get("errcode") in (40014, 42001):
                q["access_token"] = self.token(refresh=True)
                continue
            return r
        return r

    def get(self, path: str, **params) -> dict:
        return self.call(path, method="GET", params=params)

    # --- control API -------------------------------------------------------------------------------
    def control(self, name: str, body: dict | None = None, expect_ok: bool = True) -> dict:
        r = self.http.post(f"{self.base_url}/sim/{name}", json=body or {}, timeout=120).json()
        if expect_ok:
            assert r.get("ok"), r
        return r

    def set_rules(self, **values) -> dict:
        return self.control("config", {"rules": values})

    def reset_rules(self) -> None:
        self.control("rules/reset")

    def advance(self, seconds: float) -> int:
        return self.control("time/advance", {"seconds": seconds})["now"]
