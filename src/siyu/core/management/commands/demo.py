"""``siyu demo``: the emulator, the console, a worker and a seeded demo corp, on SQLite, in one command.

1. starts the WeCom emulator (``siyu sim --demo``: HQ, 2 regions, 6 stores, 30 employees,
   5,000 customers, 60 groups) with its own database under var/sim/;
2. migrates the product's database (var/siyu.sqlite3), points it at the emulator exactly as it
   would be pointed at WeCom (corp id, API base, secrets, callback token and key), and creates
   the demo logins;
3. starts the console (``siyu serve``);
4. meanwhile creates the demo's channel codes and has the emulator attribute its history to them
   (``siyu.sync.demo.services``) and runs the first full sync (``siyu sync``, in this process);
5. registers the callback URL with the emulator, which verifies it the way WeCom does, then imports
   six months of history (adds, welcomes, losses, churn alerts) and runs group codes, mass
   messages, Moments and a 离职继承 through the product's own flows; every step of the history is
   skipped when already done;
6. starts a worker (``siyu worker``), switches the emulator's world to live activity;
7. connects the emulator's simulated mall/POS to the product's REST ingestion API with an API token
   of its own (never printed), has it push twelve months of members, orders and events at first
   start (in the background) and keep selling while the demo runs; prints the URLs and logins and
   keeps everything running until Ctrl+C.
"""

from __future__ import annotations

import datetime
import os
import secrets
import signal
import socket
import string
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from siyu.accounts import services as accounts
from siyu.sync.demo import services as demo_history
from siyu.wecom import selectors as wecom_selectors
from siyu.wecom import services as wecom_services

DEMO_PASSWORD = "siyu-demo-2026"


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise CommandError(f"{what} exited with code {proc.returncode}")
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.3)
    raise CommandError(f"{what} did not answer at {url} within {timeout:.0f} s")


# exit codes of a child stopped by Ctrl+C or a terminate: 0 (a clean stop), -SIGINT, -SIGTERM, 130
STOPPED_CODES = {0, -signal.SIGINT, -signal.SIGTERM, 128 + signal.SIGINT}


class Command(BaseCommand):
    help = "Run the demo: emulator + console + worker on SQLite, seeded with a demo corp."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=settings.SIYU_PORT)
        parser.add_argument("--sim-port", type=int, default=int(os.environ.get("SIM_PORT", "8900")))
        parser.add_argument("--customers", type=int, default=5000)
        parser.add_argument("--no-live", action="store_true", help="do not generate live activity")
        parser.add_argument("--exit-after-sync", action="store_true", help="stop once the demo is up (tests)")
        parser.add_argument("--no-history", action="store_true", help="do not seed six months of demo history")

    def handle(self, *args: Any, **opts: Any) -> None:  # noqa: C901 - the demo's start-up steps in order, each a guarded branch
        var = Path(settings.VAR_DIR)
        for name, port in (("console", opts["port"]), ("emulator", opts["sim_port"])):
            if not _port_free(port):
                raise CommandError(f"port {port} for the {name} is taken; choose another with --port / --sim-port")
        base_env = dict(os.environ)
        base_env.pop("DJANGO_SETTINGS_MODULE", None)
        exe = [sys.executable, "-m", "siyu.cli"]
        procs: list[subprocess.Popen[bytes]] = []

        def stop_all(*_: object) -> None:
            for p in reversed(procs):
                if p.poll() is None:
                    p.terminate()
            for p in procs:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()

        def on_sigterm(*_: object) -> None:
            stop_all()
            sys.exit(0)

        signal.signal(signal.SIGTERM, on_sigterm)
        try:
            # 1. the emulator
            sim_dir = var / "sim"
            sim_dir.mkdir(parents=True, exist_ok=True)
            sim_env = dict(
                base_env,
                SIYU_VAR_DIR=str(sim_dir),
                SIM_DATABASE_URL=f"sqlite:///{sim_dir / 'sim.sqlite3'}",
                # the app's chat-toolbar page (聊天工具栏) the emulated WeCom client opens beside a chat
                SIM_TOOLBAR_URL=f"http://127.0.0.1:{opts['port']}/sidebar/",
            )
            sim_url = f"http://127.0.0.1:{opts['sim_port']}"
            self.stdout.write(f"starting the WeCom emulator on {sim_url} (first start seeds the demo world)…")
            self.stdout.flush()
            procs.append(
                subprocess.Popen(
                    [*exe, "sim", "--port", str(opts["sim_port"]), "--demo", "--customers", str(opts["customers"])],
                    env=sim_env,
                )
            )
            # 2. the product's database (migrated while the emulator starts) and its WeCom connection
            call_command("migrate", interactive=False, verbosity=0)
            _wait_http(sim_url + "/sim/status", 600, procs[-1], "the emulator")
            cfg = self._configure_wecom(sim_url)
            logins = self._create_logins()

            # 3. the console, booting while this process syncs
            web_url = f"http://127.0.0.1:{opts['port']}"
            procs.append(subprocess.Popen([*exe, "serve", "--port", str(opts["port"])], env=base_env))
            console = procs[-1]

            # 4. channel codes and their history's attribution, then the first full sync (nothing
            # happens in the world meanwhile: live activity starts at the end)
            history = None if opts["no_history"] else _History(sim_url, self)
            if history is not None:
                history.before_sync()
            self.stdout.write("first full sync from the emulator…")
            self.stdout.flush()
            try:  # in this process: no second interpreter and Django start-up on the demo's clock
                call_command("sync", stdout=self.stdout, stderr=self.stderr)
            except CommandError as e:
                raise CommandError(f"the first full sync failed: {e}") from e

            # 5. callback URL, verified by the emulator like WeCom's admin console does; then the
            # rest of the history, whose departures, joins and sends reach the product as callbacks
            _wait_http(web_url + "/accounts/login/", 120, console, "the console")
            r = requests.post(
                sim_url + "/sim/config",
                json={
                    "callback_url": web_url + "/wecom/callback/",
                    "callback_token": cfg["callback_token"],
                    "callback_aes_key": cfg["callback_aes_key"],
                    "verify": True,
                },
                timeout=30,
            ).json()
            if not r.get("ok"):
                raise CommandError(f"the emulator refused the callback URL: {r.get('error')}")
            if history is not None:
                history.after_sync()

            # 6. the worker: callbacks received meanwhile wait in the inbox (a niced worker holding
            # SQLite's write lock would only slow the history's writes down)
            procs.append(subprocess.Popen([*exe, "worker"], env=base_env))
            if not opts["no_live"]:
                live = requests.post(sim_url + "/sim/world/live", json={"enabled": True}, timeout=30).json()
                if not live.get("ok"):
                    self.stderr.write(f"live activity not started: {live.get('error')}")

            # 7. the brand's mall/POS (in the emulator) pushes its members, orders and events to the
            # product's REST API, like a real integration: twelve months of history at first start
            # (in the background: the console is up meanwhile), then new orders while the demo runs
            mall = _Mall(sim_url, web_url, self)
            mall.connect()
            if history is not None:
                mall.history()
            if not opts["no_live"]:
                mall.live()

            self._banner(web_url, sim_url, logins, history=history is not None, live=not opts["no_live"])
            if opts["exit_after_sync"]:
                if history is not None:
                    mall.wait()  # the tests read what landed
                return
            while all(p.poll() is None for p in procs):
                time.sleep(1)
            dead = [p for p in procs if p.poll() is not None]
            # Ctrl+C reaches the whole process group: a child that stopped on it (or on SIGTERM)
            # has ended the demo as asked, which is not an error to report
            if dead[0].returncode in STOPPED_CODES:
                self.stdout.write("\nstopping the demo…")
                return
            raise CommandError(f"a demo process exited (code {dead[0].returncode}); stopping")
        except KeyboardInterrupt:
            self.stdout.write("\nstopping the demo…")
        finally:
            stop_all()

    def _configure_wecom(self, sim_url: str) -> dict[str, Any]:
        """Point the product at the emulator: the same settings a real corp would enter."""
        status = requests.get(sim_url + "/sim/status", timeout=10).json()
        contact_secret = status.get("secret") or os.environ.get(
            "SIM_SECRET", "siyu-sim-contact-secret-0000000000000000000"
        )
        values = {
            "corp_id": status.get("corp_id") or os.environ.get("SIM_CORP_ID", "ww5iyu0000demo0001"),
            "api_base": sim_url,
            "contact_secret": contact_secret,
            "app_secret": status.get("app_secret") or contact_secret,
            "agent_id": str(status.get("agent_id") or 1000002),
        }
        row = wecom_selectors.settings_row()
        if row is None or not row.callback_token:
            alphabet = string.ascii_letters + string.digits
            values["callback_token"] = "".join(secrets.choice(alphabet) for _ in range(24))
            values["callback_aes_key"] = "".join(secrets.choice(alphabet) for _ in range(43))
        row = wecom_services.save_settings(values)
        return {"callback_token": row.callback_token, "callback_aes_key": row.callback_aes_key}

    def _create_logins(self) -> list[tuple[str, str, str]]:
        logins = [("admin", DEMO_PASSWORD, "管理员 admin")]
        accounts.ensure_user("admin", DEMO_PASSWORD, role="admin")
        return logins

    def _banner(
        self,
        web_url: str,
        sim_url: str,
        logins: list[tuple[str, str, str]],
        *,
        history: bool = False,
        live: bool = True,
    ) -> None:
        half_year = (datetime.date.today() - datetime.timedelta(days=182)).isoformat()
        story = [f"  six months of channel history: {web_url}/channels/analytics/?start={half_year}"] if history else []
        if live:
            story.append(
                "  the emulator's world lives: customers add, scan codes, chat and leave every few seconds"
                " (--no-live: a still world)"
            )
        if history:
            story.append("  its employees send about 80 % of new mass messages and Moments within a minute or so")
            story.append(
                "  the brand's mall/POS (emulated) pushes 12 months of members, orders and events to the REST API"
                " in the background (a few minutes); RFM classes, lifecycle stages and segments (客户数据) fill"
                " as they land"
            )
        if live:
            story.append(
                "  the mall keeps selling: new orders, refunds and events every few seconds"
                f" ({sim_url}/sim/mall/status)"
            )
        story.append(f"  act as a customer or an employee yourself: {sim_url}/#how-to (docs/emulator.md)")
        story.append(
            f"  the guide's chat sidebar, in the emulated WeCom client: {sim_url}/client/"
            " (pick an employee, open a customer's chat)"
        )
        lines = [
            "",
            "Siyu demo is running (Ctrl+C to stop)",
            f"  console:        {web_url}/",
            f"  WeCom emulator: {sim_url}/cgi-bin/   control API: {sim_url}/sim/status",
            f"  callback URL:   {web_url}/wecom/callback/",
            *story,
            "  logins:",
            *[f"    {u} / {p}   ({role})" for u, p, role in logins],
            "",
        ]
        self.stdout.write("\n".join(lines))
        self.stdout.flush()


def _answered(totals: dict[str, int], settled: bool) -> bool:
    """The senders of a mass message or Moment are known and most have answered (one in ten never
    does, as in life), or some have and the rest will not (``settled``; a Moment's senders are only
    asked once WeCom's job has made it, so its first answers come later)."""
    senders, answered = totals.get("employees") or 0, totals.get("employees_confirmed") or 0
    return senders > 0 and (answered >= 0.75 * senders or (settled and answered > 0))


class _Mall:
    """The emulator's mall/POS (``/sim/mall/*``, docs/emulator.md) pointed at the product's
    ingestion API with an API token of its own. The token goes to the emulator only: never
    printed, never logged."""

    def __init__(self, sim_url: str, web_url: str, cmd: BaseCommand):
        self.sim_url, self.web_url, self.cmd = sim_url, web_url, cmd
        self.thread: threading.Thread | None = None

    def control(self, action: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        r = requests.post(f"{self.sim_url}/sim/{action}", json=body or {}, timeout=120).json()
        if not r.get("ok"):
            raise CommandError(f"the emulator refused {action}: {r.get('error')}")
        return dict(r)

    def connect(self) -> None:
        admin, _created = accounts.ensure_user("admin", DEMO_PASSWORD, role="admin")
        self.control("mall/connect", {"url": self.web_url, "token": demo_history.mall_token(admin)})

    def history(self) -> None:
        """Twelve months of history, once per world (a second start finds it queued or sent). The
        emulator generates it first (a few seconds of CPU): in a thread, the demo goes on."""
        if self.control("mall/status").get("history"):
            return

        def run() -> None:
            t0 = time.monotonic()
            try:
                queued = self.control("mall/history", {"months": 12})
            except (CommandError, requests.RequestException) as e:
                self.cmd.stderr.write(f"the mall's history was not queued: {e}")
                return
            self.cmd.stdout.write(
                f"[mall {time.monotonic() - t0:5.1f}s] {queued['members']} members, {queued['orders']} orders"
                f" and {queued['events']} events of the last 12 months queued for the REST API"
                f" ({queued['batches']} batches)"
            )
            self.cmd.stdout.flush()

        self.thread = threading.Thread(target=run, name="demo-mall-history", daemon=True)
        self.thread.start()

    def live(self) -> None:
        self.control("mall/live", {"on": True, "orders_per_minute": 6})

    def wait(self, timeout: float = 300) -> None:
        """Until every queued batch was accepted (or ``timeout``)."""
        t0 = time.monotonic()
        if self.thread is not None:
            self.thread.join(timeout)
        status = self.control("mall/status")
        while status["outbox"]["pending"] and time.monotonic() - t0 < timeout:
            time.sleep(1)
            status = self.control("mall/status")
        self.cmd.stdout.write(
            f"[mall {time.monotonic() - t0:5.1f}s] pushed: {status['answers']}; still queued:"
            f" {status['outbox']['pending']} batches; rows refused: {status['row_errors']}"
        )
        self.cmd.stdout.flush()


class _History:
    """``siyu demo``'s six months of history: the emulator's side read over its control API, the
    product's written by ``siyu.sync.demo.services`` (see there)."""

    def __init__(self, sim_url: str, cmd: BaseCommand):
        self.sim_url, self.cmd = sim_url, cmd
        self.t0 = time.monotonic()

    def control(self, action: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        r = requests.post(f"{self.sim_url}/sim/{action}", json=body or {}, timeout=60).json()
        if not r.get("ok"):
            raise CommandError(f"the emulator refused {action}: {r.get('error')}")
        return dict(r)

    def say(self, text: str) -> None:
        self.cmd.stdout.write(f"[history {time.monotonic() - self.t0:5.1f}s] {text}")
        self.cmd.stdout.flush()

    def before_sync(self) -> None:
        history = self.control("demo/history")
        states = demo_history.ensure_channel_codes(history["channels"])
        moved = self.control("demo/attribute", {"states": states})["moved"]
        self.say(f"{len(states)} channel codes; {moved} customers attributed to them")

    def after_sync(self) -> None:
        history = self.control("demo/history")
        leavers = history.get("leavers") or []
        for leaver in leavers:
            if not leaver.get("resigned"):
                # after the sync, so the product knows the guide and hears of the departure by callback
                self.control("employee/resign", {"userid": leaver["userid"]})
            demo_history.record_departure(leaver["userid"])  # before any mass message plans senders
        counts = demo_history.import_history(history)
        self.say(f"history imported: {counts}")
        ways = demo_history.ensure_group_codes()
        for config_id in ways:  # a few customers join through each new group code (callbacks)
            for _ in range(6):
                try:
                    self.control("group/join", {"config_id": config_id, "join_scene": 3})
                except CommandError as e:  # a full group without room for more: the story goes on
                    self.say(str(e))
                    break
        self.say(f"{len(ways)} group codes created")
        admin, _created = accounts.ensure_user("admin", DEMO_PASSWORD, role="admin")
        self.say(f"the guides' library and tasks: {demo_history.seed_guide_library(admin)}")
        # simulated employees confirm mass messages and Moments within seconds, customers accept
        # transfers at once; the demo's own settings are restored afterwards
        self.control("mass/auto", {"probability": 0.9, "delay_s": 1, "seed": 16})
        self.control("config", {"rules": {"transfer_accept_after_s": 1}})
        try:
            admin, _created = accounts.ensure_user("admin", DEMO_PASSWORD, role="admin")
            sent = time.monotonic()
            pending = demo_history.start_broadcasts(admin)
            self.say(f"{len(pending)} mass messages / Moments sent (their results to sync)")
            # the first guide's customers are handed over; the second's wait on 离职继承
            handover = demo_history.hand_over(leavers[0]["userid"]) if leavers else None
            self.say(f"{', '.join(x['name'] for x in leavers)} left; handover {handover}")
            if pending:  # simulated employees confirm within 1.5 s
                time.sleep(max(0.0, sent + 2.5 - time.monotonic()))
            deadline = time.monotonic() + 15
            waiting = demo_history.poll_handovers()
            while True:
                totals = demo_history.sync_broadcasts(pending, admin)
                settled = time.monotonic() - sent > 5  # every simulated answer is in by then
                pending = [b for b, t in totals.items() if not _answered(t, settled)]
                if waiting:  # the emulator settles transfers on its tick
                    waiting = demo_history.poll_handovers()
                if (not pending and not waiting) or time.monotonic() > deadline:
                    break
                time.sleep(1)
            self.say(f"results synced; still waiting: {len(pending)} broadcasts, {waiting} handed-over customers")
        finally:
            self.control("config", {"rules": {"transfer_accept_after_s": 24 * 3600}})
            self.control("mass/auto", {"probability": 0.8, "delay_s": 60, "seed": 16})
