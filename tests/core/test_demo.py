"""``siyu demo`` end to end: emulator, console, worker, first full sync, callbacks registered."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.simproc import SimProcess, free_port

ROOT = Path(__file__).resolve().parents[2]


def console_counts(env: dict, workdir: Path) -> dict[str, int]:
    """``siyu serve`` on the demo's database; log in as the demo admin and read the overview's
    counters, the customer list's count (active customers) and the tag page's total."""
    import re
    import time

    import requests

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "siyu.cli", "serve", "--port", str(port)],
        env=env,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        http = requests.Session()
        deadline = time.time() + 60
        while True:
            try:
                login = http.get(base + "/accounts/login/", timeout=5)
                break
            except requests.ConnectionError:
                if time.time() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
        r = http.post(
            base + "/accounts/login/",
            data={"username": "admin", "password": "siyu-demo-2026", "csrfmiddlewaretoken": token},
            headers={"Referer": base + "/accounts/login/"},
        )
        assert r.status_code == 200 and r.url.rstrip("/") == base, (r.status_code, r.url)

        def number(text: str) -> int:
            return int(text.replace(",", ""))

        out = {}
        overview = http.get(base + "/").text
        for key in ("employees", "customers", "groups", "tags"):
            m = re.search(rf'data-counter="{key}".*?class="stat-value">(?:<a [^>]*>)?([\d,]+)', overview, re.S)
            assert m, f"overview counter {key} missing"
            out[key] = number(m.group(1))
        listed = http.get(base + "/customers/", params={"status": "active"}).text
        out["customer_list_active"] = number(
            re.search(r'data-testid="customer-count"[^>]*>\D*([\d,]+)', listed).group(1)
        )
        tag_page = http.get(base + "/tags/").text
        out["tag_page_total"] = number(re.search(r'data-testid="tag-total"[^>]*>\D*([\d,]+)', tag_page).group(1))
        return out
    finally:
        proc.terminate()
        proc.wait(15)


def test_demo_comes_up_and_the_console_matches_the_emulator(tmp_path):
    env = dict(os.environ, SIYU_VAR_DIR=str(tmp_path))
    for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "SIM_DATABASE_URL"):
        env.pop(k, None)
    port, sim_port = free_port(), free_port()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "siyu.cli",
            "demo",
            "--exit-after-sync",
            "--no-live",
            "--port",
            str(port),
            "--sim-port",
            str(sim_port),
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert f"http://127.0.0.1:{port}/" in out and "admin / siyu-demo-2026" in out

    # The emulator again on the same database (already seeded): what WeCom says the corp has.
    sim = SimProcess(workdir=str(tmp_path / "sim"), customers=5000, demo=True)
    sim.env["SIM_DATABASE_URL"] = f"sqlite:///{tmp_path / 'sim' / 'sim.sqlite3'}"
    with sim.start():
        follow_users = sim.get("externalcontact/get_follow_user_list")["follow_user"]
        relations = 0
        customers: set[str] = set()
        for userid in follow_users:
            ids = sim.get("externalcontact/list", userid=userid).get("external_userid", [])
            relations += len(ids)
            customers.update(ids)
        groups = 0
        cursor = ""
        while True:
            page = sim.call("externalcontact/groupchat/list", {"limit": 1000, "cursor": cursor})
            groups += len(page["group_chat_list"])
            cursor = page.get("next_cursor", "")
            if not cursor:
                break
        tags = sum(len(g["tag"]) for g in sim.call("externalcontact/get_corp_tag_list", {})["tag_group"])
        status = sim.control("status")
        members = sim.get("user/list", department_id=1, fetch_child=1)["userlist"]
        active_members = sum(1 for u in members if u.get("status", 1) == 1)

    # What the console shows (over HTTP, as the admin the demo created) is what WeCom says.
    shown = console_counts(env, tmp_path)
    assert shown["customers"] == len(customers) == shown["customer_list_active"], shown
    assert shown["groups"] == groups, shown
    assert shown["tags"] == tags == shown["tag_page_total"], shown
    assert shown["employees"] == active_members, shown

    assert status["counts"]["users"] == 30 and status["counts"]["departments"] == 11
    db = sqlite3.connect(tmp_path / "siyu.sqlite3")
    one = lambda sql: db.execute(sql).fetchone()[0]  # noqa: E731
    assert one("select count(*) from customers_followrelation where status = 'active'") == relations
    assert one("select count(*) from customers_customer where status = 'active'") == len(customers)
    assert one("select count(*) from groups_groupchat where status = 'active'") == groups == 60
    assert one("select count(*) from customers_tag where not deleted") == tags
    assert one("select count(*) from org_employee where contact_enabled") == len(follow_users)
    assert one("select count(*) from auth_user where username = 'admin'") == 1
