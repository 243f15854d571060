"""The emulator's index page at / and /cgi-bin/ (the URLs `siyu demo` prints; issue 14)."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from tests.sim.helpers import customer_of, employee, own_sim

sim = own_sim(customers=5, seed=3)


@pytest.mark.parametrize("path", ["/", "/cgi-bin/"])
def test_index_page_describes_the_emulator(sim, path):
    r = sim.http.get(sim.base_url + path, timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    page = r.text
    assert "Siyu WeCom emulator" in page and sim.corp_id in page
    # generated from the emulator's own tables: every endpoint, rule and control action is listed
    for endpoint in (
        "/cgi-bin/externalcontact/get",
        "/cgi-bin/externalcontact/add_msg_template",
        "/cgi-bin/externalcontact/groupchat/add_join_way",
        "/cgi-bin/gettoken",
    ):
        assert f"<code>{endpoint}</code>" in page
    rules = sim.control("config")["rules"]
    for name in rules:
        assert f"<code>{name}</code>" in page
    assert "add_msg_template doc 92135" in page  # each rule's comment from rules.py
    for name in sim.control("actions")["actions"]:
        assert f"<code>POST /sim/{html.escape(name)}</code>" in page
    assert "curl -X POST" in page and f"{sim.base_url}/sim/status" in page
    # plain HTML: no script, no external asset, no secret
    assert "<script" not in page.lower() and not re.search(r"(src|href)=\"?https?://", page)
    assert sim.secret not in page


def test_index_page_escapes_what_it_shows(sim):
    """The curl examples hold JSON and the request's host: shown escaped, inside <pre>."""
    page = sim.http.get(sim.base_url + "/", timeout=30).text
    examples = page.split("<pre>", 1)[1].split("</pre>", 1)[0]
    assert "&quot;rules&quot;" in examples and '"rules"' not in examples
    assert "&#x27;" in examples and "'" not in examples


def test_index_page_and_docs_say_how_to_act_as_a_customer_or_an_employee(sim):
    page = html.unescape(sim.http.get(sim.base_url + "/", timeout=30).text)
    assert 'id="how-to"' in page
    for name in ("scan", "mass/confirm", "mass/pending", "add_friend", "employee/resign", "moment/publish"):
        assert f"{sim.base_url}/sim/{name} " in page, name
    # docs/emulator.md (linked from the README) names every control action
    docs = (Path(__file__).resolve().parents[2] / "docs" / "emulator.md").read_text(encoding="utf-8")
    missing = [name for name in sim.control("actions")["actions"] if f"`{name}`" not in docs]
    assert not missing, f"not in docs/emulator.md: {missing}"
    assert "docs/emulator.md" in (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_pending_lists_what_employees_have_not_sent_yet(sim):
    userid = employee(sim)
    customer_of(sim, userid)
    r = sim.call("externalcontact/add_msg_template", {"sender": userid, "text": {"content": "新品到店，欢迎来看看"}})
    assert r["errcode"] == 0, r
    tasks = sim.control("mass/pending", {"userid": userid})["tasks"]
    assert [(t["msgid"], t["userid"]) for t in tasks] == [(r["msgid"], userid)]
    assert tasks[0]["text"].startswith("新品到店")
    sim.control("mass/confirm", {"msgid": r["msgid"], "userid": userid})
    assert sim.control("mass/pending", {"userid": userid})["tasks"] == []
    assert sim.control("moment/pending", {"userid": userid})["tasks"] == []
