"""The emulator's index page (``/`` and ``/cgi-bin/``): what it is and how to use it.

Everything listed is generated from the emulator itself (the endpoint registry, the rules and
their comments in ``rules.py``, the control actions and their schemas), so the page never drifts.
Plain server-rendered HTML: every value is escaped, no script, no external asset.
"""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import fields

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import mark_safe

from siyu.wecom_sim import control, framework, rules, schemas

CSS = """
body{font:14px/1.5 system-ui,sans-serif;margin:2em auto;max-width:70em;padding:0 1em;color:#222}
table{border-collapse:collapse;width:100%;margin:.5em 0 2em}
th,td{border-bottom:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}
code,pre{font-family:ui-monospace,monospace;font-size:13px}
pre{background:#f5f5f5;padding:.75em;overflow-x:auto}
.muted{color:#666}
"""


def _first_line(fn) -> str:
    doc = inspect.getdoc(fn) or ""
    return doc.strip().split("\n\n")[0].replace("\n", " ")


def rule_comments() -> dict[str, str]:
    """Each rule's comment in rules.py (the lines right above its field): what it follows."""
    out: dict[str, str] = {}
    pending: list[str] = []
    after_field = False
    names = {f.name for f in fields(rules.Rules)}
    for line in inspect.getsource(rules.Rules).splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            if after_field:  # a new comment: the previous one covered the fields above
                pending, after_field = [], False
            text = stripped.lstrip("#").strip()
            if not text.startswith("---"):
                pending.append(text)
            continue
        m = re.match(r"(\w+)\s*:", stripped)
        if m and m.group(1) in names:
            out[m.group(1)] = " ".join(pending)  # a comment covers the fields right below it
            after_field = True
        else:
            pending, after_field = [], False
    return out


def _endpoints() -> str:
    rows = []
    for path in sorted(framework.REGISTRY):
        handler, methods, auth = framework.REGISTRY[path]
        rows.append((f"/cgi-bin/{path}", " ".join(methods), "access_token" if auth else "none", _first_line(handler)))
    return format_html_join("", "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>", rows)


def _rules() -> str:
    comments = rule_comments()
    rows = [
        (name, json.dumps(value, ensure_ascii=False), comments.get(name, "")) for name, value in rules.as_dict().items()
    ]
    return format_html_join("", "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>", rows)


def _actions() -> str:
    rows = []
    for name in sorted(control.ACTIONS):
        described = schemas.describe(control.SCHEMAS[name])
        body = format_html_join(
            ", ", "<code>{}</code>{}: {}", ((f, "" if req else "?", t) for f, t, req in described)
        ) or format_html("<span class=muted>{}</span>", "no body")
        rows.append(
            format_html(
                "<tr><td><code>POST /sim/{}</code></td><td>{}</td><td>{}</td></tr>",
                name,
                body,
                _first_line(control.ACTIONS[name]),
            )
        )
    return mark_safe("".join(rows))  # each row was built by format_html


# What a person trying the demo wants to do, as control calls (docs/emulator.md says the same at
# length). Each: (what, action, example body, where the ids come from).
RECIPES: list[tuple[str, str, dict, str]] = [
    (
        "Real ids to try things with (employees, stores, customers, groups, contact ways)",
        "world/sample",
        {"n": 3},
        "-",
    ),
    (
        "A new WeChat user scans a channel QR code (渠道活码) and adds the employee it routes to",
        "scan",
        {"config_id": "CONFIG_ID", "name": "小王"},
        "config_id: the channel code's page in the console (secondary grey text), or "
        "/cgi-bin/externalcontact/list_contact_way",
    ),
    ("Many scans of one code at once (up to 1,000)", "scan_many", {"config_id": "CONFIG_ID", "n": 50}, "as above"),
    (
        "A customer adds an employee without a QR code (search by mobile, card share, ...)",
        "add_friend",
        {"userid": "USERID", "add_way": 1},
        "userid: an employee's account (world/sample, or the console's employee page)",
    ),
    (
        "List the mass-message tasks employees have not sent yet (userid narrows to one)",
        "mass/pending",
        {},
        "-",
    ),
    (
        "An employee confirms (sends) a mass message (群发) in 群发助手",
        "mass/confirm",
        {"msgid": "MSGID", "userid": "USERID"},
        "msgid and userid: /sim/mass/pending lists what employees have not sent yet",
    ),
    ("An employee never sends a mass message", "mass/ignore", {"msgid": "MSGID", "userid": "USERID"}, "as above"),
    (
        "Employees confirm every new mass message and Moment by themselves after a delay",
        "mass/auto",
        {"probability": 0.8, "delay_s": 60},
        "-",
    ),
    (
        "An employee publishes a Moment (朋友圈)",
        "moment/publish",
        {"moment_id": "MOMENT_ID", "userid": "USERID"},
        "/sim/moment/pending",
    ),
    (
        "A customer deletes the employee (or the employee the customer: by=employee)",
        "delete",
        {"userid": "USERID", "external_userid": "EXTERNAL_USERID", "by": "customer"},
        "world/sample",
    ),
    ("An employee leaves the company (for 离职继承)", "employee/resign", {"userid": "USERID"}, "world/sample"),
    (
        "A customer joins a customer group",
        "group/join",
        {"chat_id": "CHAT_ID", "name": "小李"},
        "chat_id: world/sample, or a group QR code's config_id instead",
    ),
    ("Let the simulated world live (random adds, losses, chats, joins)", "world/live", {"enabled": True}, "-"),
    ("Move the emulator's clock a day ahead", "time/advance", {"seconds": 86400}, "-"),
]


def _recipes(base: str) -> str:
    rows = []
    for what, name, body, ids in RECIPES:
        data = json.dumps(body, ensure_ascii=False)
        curl = f"curl -X POST {base}/sim/{name} -H 'Content-Type: application/json' -d '{data}'"
        rows.append(format_html("<tr><td>{}</td><td><pre>{}</pre></td><td>{}</td></tr>", what, curl, ids))
    return mark_safe("".join(rows))  # each row was built by format_html


def view(request: HttpRequest) -> HttpResponse:
    base = request.build_absolute_uri("/").rstrip("/")
    examples = "\n\n".join(
        [
            f"# the corp's credentials, the clock, counts of the simulated world\ncurl {base}/sim/status",
            (
                "# a token, then a WeCom call\n"
                f"curl '{base}/cgi-bin/gettoken?corpid={settings.SIM_CORP_ID}&corpsecret=SECRET'\n"
                f"curl '{base}/cgi-bin/externalcontact/get_follow_user_list?access_token=TOKEN'"
            ),
            (
                "# change a rule (reset with /sim/rules/reset)\n"
                f"curl -X POST {base}/sim/config -H 'Content-Type: application/json' "
                '-d \'{"rules": {"welcome_code_ttl_s": 60}}\''
            ),
            (
                "# an employee edits a customer in the client (sends edit_external_contact)\n"
                f"curl -X POST {base}/sim/customer/edit "
                '-H \'Content-Type: application/json\' -d \'{"userid": "USERID", "external_userid": "EXTERNAL_USERID", '
                '"remark": "VIP", "personal_tags": [{"group_name": "", "tag_name": "friend"}]}\''
            ),
            (
                "# move the emulator's clock (tokens, welcome codes and transfers expire)\n"
                f"curl -X POST {base}/sim/time/advance "
                "-H 'Content-Type: application/json' -d '{\"seconds\": 86400}'"
            ),
            f"# real ids to try things with\ncurl '{base}/sim/world/sample?n=3'",
        ]
    )
    page = format_html(
        """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Siyu WeCom emulator</title>
<style>{css}</style></head><body>
<h1>Siyu WeCom emulator</h1>
<p>A stand-in for WeCom (企业微信) for Siyu's demo, tests and benchmarks: the same
<code>/cgi-bin/</code> endpoints, error codes, limits and encrypted callbacks as WeCom's customer-contact
API, over a simulated corp with employees, customers and groups. Where WeCom's behaviour is not
documented it follows the official docs and says so in its code.</p>
<table><tr><th>Corp id</th><td><code>{corp_id}</code></td></tr>
<tr><th>Agent id</th><td><code>{agent_id}</code></td></tr>
<tr><th>Base URL</th><td><code>{base}/cgi-bin/</code> (set it as the WeCom API base in Siyu)</td></tr>
<tr><th>Secrets</th><td>from <code>GET {base}/sim/status</code></td></tr></table>
<p>To act as a customer or an employee (scan a QR code, confirm a mass message, add customers, ...):
<a href="#how-to">How to: common tasks</a>.</p>
<h2>WeCom endpoints ({n_endpoints})</h2>
<p>Errors are HTTP 200 with <code>{{"errcode": N, "errmsg": "..."}}</code>, as WeCom answers.</p>
<table><tr><th>Path</th><th>Methods</th><th>Auth</th><th>What</th></tr>{endpoints}</table>
<h2>Rules enforced ({n_rules})</h2>
<p>Each is configurable at run time: <code>POST /sim/config</code> with <code>{{"rules": {{...}}}}</code>,
or <code>SIM_RULES</code> (JSON) in the environment.</p>
<table><tr><th>Rule</th><th>Value</th><th>Follows</th></tr>{rules}</table>
<h2>Control API ({n_actions} actions)</h2>
<p>Drives the simulated world (people add, edit, chat, leave; the clock moves) and reports on it.
<code>POST</code> a JSON object (or pass fields as query parameters); the answer is
<code>{{"ok": true, ...}}</code>, or HTTP 400/404/409 with <code>{{"ok": false, "error": "..."}}</code>.
Fields marked <code>?</code> are optional; unknown fields are refused.</p>
<pre>{examples}</pre>
<table><tr><th>Action</th><th>Body</th><th>What</th></tr>{actions}</table>
<h2 id="how-to">How to: common tasks</h2>
<p>The product sees each of these as WeCom would show it: through callbacks to its
<code>/wecom/callback/</code> and its API calls. More in <code>docs/emulator.md</code>.</p>
<table><tr><th>To do</th><th>Call</th><th>Where the ids come from</th></tr>{recipes}</table>
</body></html>""",
        css=CSS,
        corp_id=settings.SIM_CORP_ID,
        agent_id=settings.SIM_AGENT_ID,
        base=base,
        n_endpoints=len(framework.REGISTRY),
        endpoints=_endpoints(),
        n_rules=len(fields(rules.Rules)),
        rules=_rules(),
        n_actions=len(control.ACTIONS),
        examples=escape(examples),
        actions=_actions(),
        recipes=_recipes(base),
    )
    return HttpResponse(page, content_type="text/html; charset=utf-8")
