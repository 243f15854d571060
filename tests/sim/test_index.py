"""The emulator's index page at / and /cgi-bin/ (the URLs `siyu demo` prints; issue 14)."""

from __future__ import annotations

import html
import re

import pytest

from tests.sim.helpers import own_sim

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
