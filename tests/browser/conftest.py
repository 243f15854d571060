"""Browser fixtures: Debian's Chromium driven by Playwright against pytest-django's live server.

Playwright's own browser download is not used (the host may be offline): the tests launch
``/usr/bin/chromium`` (``apt-get install chromium``) and are skipped when it is missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in the test thread; Django refuses database access
# from a thread with a running loop unless told it is safe (the live server has its own thread).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("SIYU_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
SCREEN_DIR = Path(os.environ.get("SIYU_SCREENSHOT_DIR", ROOT / "var" / "screens"))
PASSWORD = "browser-pass-123"


def pytest_collection_modifyitems(config, items):
    if Path(CHROMIUM).exists():
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=live_server.url)
    context.set_default_timeout(15_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


@pytest.fixture
def make_login(transactional_db):
    """``make_login(username, role, **binding)`` creates a console user (password ``PASSWORD``)."""
    from siyu.accounts import services

    def make(username: str, role: str = "admin", **binding):
        user, _ = services.ensure_user(username, PASSWORD, role=role, **binding)
        return user

    return make


@pytest.fixture
def sign_in():
    """``sign_in(page, username)``: fill the login form and wait for the overview."""

    def do(pg, username: str, password: str = PASSWORD):
        pg.goto("/accounts/login/")
        pg.fill("#id_username", username)
        pg.fill("#id_password", password)
        pg.click("[data-testid=login-submit]")
        pg.wait_for_url("**/")
        return pg

    return do


@pytest.fixture
def screenshot():
    """``screenshot(page, name)`` saves ``<name>.png`` (full page) under var/screens/."""
    SCREEN_DIR.mkdir(parents=True, exist_ok=True)

    def shoot(pg, name: str) -> Path:
        path = SCREEN_DIR / f"{name}.png"
        pg.screenshot(path=str(path), full_page=True)
        return path

    return shoot


def pick(pg, name: str, query: str, label: str, *, value=None, scope=None):
    """Choose ``label`` (the option of ``value`` when given) in the picker of field ``name``
    (siyu.core.pickers) by typing ``query`` into its search box and clicking the result; waits
    for the chip."""
    from playwright.sync_api import expect

    root = (scope or pg).locator(f"[data-testid=picker-{name}]")
    root.locator("[data-picker-search]").fill(query)
    if value is not None:
        option = root.locator(f".picker-option[data-value='{value}']")
    else:
        option = root.locator(".picker-option", has_text=label).first
    expect(option).to_be_visible()
    root.page.wait_for_timeout(400)  # the debounced search for the whole text has answered
    option.click()
    chip = root.locator(f".picker-chip[data-value='{value}']") if value is not None else None
    expect(chip if chip is not None else root.locator(".picker-chip", has_text=label)).to_have_count(1)
    return root
