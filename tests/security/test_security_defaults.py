"""Issue 14, defect 9: login throttling (django-axes), a generated SECRET_KEY kept in the var
directory, ALLOWED_HOSTS without ``*``, security headers and a strict Content-Security-Policy
(and a guard: no template carries an inline script or event handler)."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

import siyu
from siyu.accounts import services as accounts
from siyu.accounts.models import Profile
from siyu.conf import persistent_secret

PASSWORD = "right-Pass-word-14"
LIMIT = settings.AXES_FAILURE_LIMIT


@pytest.fixture
def admin(db):
    user, _ = accounts.ensure_user("admin14", PASSWORD, role=Profile.ADMIN)
    return user


def _login(username: str, password: str, ip: str, **extra):
    return Client(REMOTE_ADDR=ip).post("/accounts/login/", {"username": username, "password": password}, **extra)


def _expire_cooloff():
    from axes.models import AccessAttempt

    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=5))


def test_wrong_passwords_lock_out_the_user_whatever_the_ip_until_the_cooloff(admin):
    assert LIMIT == 5 and timedelta(minutes=15) == settings.AXES_COOLOFF_TIME
    for i in range(LIMIT):
        r = _login("admin14", "wrong", f"10.0.0.{i + 1}")  # a different address each time
    assert r.status_code == 429
    # the right password, from yet another address, is refused too; the page says why
    r = _login("admin14", PASSWORD, "10.9.9.9")
    assert r.status_code == 429 and "_auth_user_id" not in r.client.session
    page = r.content.decode()
    assert 'data-testid="locked-out"' in page and "15 分钟后重试" in page
    en = Client(REMOTE_ADDR="10.9.9.9")
    en.cookies["django_language"] = "en"
    r = en.post("/accounts/login/", {"username": "admin14", "password": PASSWORD})
    assert r.status_code == 429 and "Too many failed sign-in attempts" in r.content.decode()
    # another user is not affected
    accounts.ensure_user("other14", PASSWORD, role=Profile.ADMIN)
    assert _login("other14", PASSWORD, "10.9.9.8").status_code == 302

    _expire_cooloff()
    r = _login("admin14", PASSWORD, "10.9.9.9")
    assert r.status_code == 302 and r.client.session["_auth_user_id"] == str(admin.pk)


def test_wrong_passwords_from_one_address_lock_out_that_address(admin):
    for i in range(LIMIT):
        _login(f"nobody{i}", "wrong", "192.0.2.7")  # a different user name each time
    r = _login("admin14", PASSWORD, "192.0.2.7")
    assert r.status_code == 429 and 'data-testid="locked-out"' in r.content.decode()
    assert _login("admin14", PASSWORD, "192.0.2.8").status_code == 302  # another address signs in

    # API tokens do not go through the login throttle
    token = accounts.create_api_token(admin, "t")[1]
    api = Client(REMOTE_ADDR="192.0.2.7").get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.status_code == 200, api.content


def test_secret_key_is_generated_once_kept_0600_and_reused(tmp_path):
    key_file = tmp_path / "secret.key"
    calls = []

    def gen():
        calls.append(1)
        return f"generated-{len(calls)}-" + "x" * 40

    first = persistent_secret(key_file, gen)
    assert first == persistent_secret(key_file, gen) and len(calls) == 1
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name != "secret.key"]  # no temporary left

    # the product's settings, in fresh processes: generated on first start, then reused;
    # the environment's key wins and writes nothing
    var = tmp_path / "var"
    a, b = _settings_of({"SIYU_VAR_DIR": str(var)}), _settings_of({"SIYU_VAR_DIR": str(var)})
    assert a["SECRET_KEY"] == b["SECRET_KEY"] == (var / "secret.key").read_text().strip()
    assert len(a["SECRET_KEY"]) >= 50 and "insecure" not in a["SECRET_KEY"]
    env_var = tmp_path / "var2"
    c = _settings_of({"SIYU_VAR_DIR": str(env_var), "SIYU_SECRET_KEY": "from-the-environment-" + "y" * 40})
    assert c["SECRET_KEY"].startswith("from-the-environment-") and not (env_var / "secret.key").exists()


def _settings_of(env: dict) -> dict:
    code = (
        "import json, django; from django.conf import settings; django.setup(); "
        "print(json.dumps({k: getattr(settings, k) for k in ('SECRET_KEY', 'ALLOWED_HOSTS', 'SESSION_COOKIE_SECURE', "
        "'CSRF_COOKIE_SECURE', 'SECURE_HSTS_SECONDS')}))"
    )
    full = {k: v for k, v in os.environ.items() if not k.startswith("SIYU_")}
    full.update({"DJANGO_SETTINGS_MODULE": "siyu.settings", **env})
    out = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_deployment_defaults_and_https_switch(tmp_path):
    plain = _settings_of({"SIYU_VAR_DIR": str(tmp_path)})
    assert plain["ALLOWED_HOSTS"] == ["localhost", "127.0.0.1", "[::1]"]
    assert plain["SESSION_COOKIE_SECURE"] is False and plain["SECURE_HSTS_SECONDS"] == 0  # `siyu demo` is plain http
    https = _settings_of({"SIYU_VAR_DIR": str(tmp_path), "SIYU_HTTPS": "1", "SIYU_ALLOWED_HOSTS": "scrm.example.com"})
    assert https["SESSION_COOKIE_SECURE"] is True and https["CSRF_COOKIE_SECURE"] is True
    assert https["SECURE_HSTS_SECONDS"] >= 31536000 and https["ALLOWED_HOSTS"] == ["scrm.example.com"]


def test_default_allowed_hosts_refuse_a_foreign_host_header(db):
    assert "*" not in settings.ALLOWED_HOSTS
    assert Client().get("/accounts/login/", HTTP_HOST="evil.example").status_code == 400
    assert Client().get("/accounts/login/", HTTP_HOST="127.0.0.1:8000").status_code == 200


def test_security_headers_and_strict_csp(db):
    r = Client().get("/accounts/login/")
    assert r["X-Content-Type-Options"] == "nosniff" and r["Referrer-Policy"] == "same-origin"
    assert r["X-Frame-Options"] == "DENY"
    csp = dict(d.strip().split(" ", 1) for d in r["Content-Security-Policy"].split(";") if d.strip())
    assert csp["script-src"] == "'self'" and csp["object-src"] == "'none'" and csp["frame-ancestors"] == "'none'"
    assert "unsafe" not in csp["script-src"] and "unsafe-eval" not in r["Content-Security-Policy"]


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"\s(on[a-z]+|hx-on[:\w-]*)\s*=", re.IGNORECASE)


def test_no_template_has_an_inline_script_or_event_handler():
    """The general guard: the console runs under script-src 'self'."""
    root = Path(siyu.__file__).parent
    offenders = []
    for path in root.rglob("templates/**/*.html"):
        text = path.read_text()
        for rx in (INLINE_SCRIPT, INLINE_HANDLER, re.compile(r"javascript:", re.IGNORECASE)):
            offenders += [f"{path.relative_to(root)}: {m.group(0).strip()}" for m in rx.finditer(text)]
    assert not offenders, offenders
