"""Shared fixtures: a real emulator process per test session, reached over HTTP."""

from __future__ import annotations

import pytest

from tests.simproc import SimProcess


@pytest.fixture(scope="session")
def sim():
    """A seeded emulator (300 customers, seed 7). Tests that change rules reset them afterwards."""
    with SimProcess(customers=300, seed=7) as proc:
        yield proc


@pytest.fixture
def sim_rules(sim):
    """Set emulator rules for one test; they are reset afterwards."""
    yield sim.set_rules
    sim.reset_rules()


# --- product ↔ emulator -----------------------------------------------------------------------
CALLBACK_TOKEN = "siyuTestCallbackToken"
CALLBACK_AES_KEY = "c2l5dVRlc3RDYWxsYmFja0Flc0tleTAxMjM0NTY3ODk"  # 43 chars → 32-byte key


def point_product_at(sim, **extra):
    """Configure the product (database settings row) to use ``sim`` as its WeCom."""
    from siyu.wecom import config
    from siyu.wecom.client import DbTokenStorage
    from siyu.wecom.models import WeComSettings

    WeComSettings.objects.all().delete()
    row = WeComSettings.objects.create(
        corp_id=sim.corp_id,
        api_base=sim.base_url,
        contact_secret=sim.secret,
        app_secret=sim.app_secret,
        agent_id="1000002",
        callback_token=CALLBACK_TOKEN,
        callback_aes_key=CALLBACK_AES_KEY,
        **extra,
    )
    config.invalidate()
    DbTokenStorage.clear_memory()
    return row


@pytest.fixture
def wecom_sim(sim, db):
    """The product configured against the session emulator (no callbacks)."""
    point_product_at(sim)
    yield sim
    from siyu.wecom import config

    config.invalidate()


@pytest.fixture
def live_callbacks(sim, transactional_db, live_server):
    """Emulator callbacks delivered over HTTP to the product's live server.

    Yields the emulator; the test drives the worker itself (``siyu.core.worker.Worker``) or checks
    the inbox.
    """
    point_product_at(sim)
    sim.control("callbacks/discard")
    sim.control(
        "config",
        {
            "callback_url": live_server.url + "/wecom/callback/",
            "callback_token": CALLBACK_TOKEN,
            "callback_aes_key": CALLBACK_AES_KEY,
            "verify": True,
        },
    )
    yield sim
    sim.control("config", {"callback_url": "", "verify": False})
    from siyu.wecom import config

    config.invalidate()


# --- console ------------------------------------------------------------------------------------
@pytest.fixture
def admin(db):
    """A console user with the admin role (password ``tests.helpers.PASSWORD``)."""
    from siyu.accounts.models import Profile
    from tests.helpers import make_user

    return make_user("admin", Profile.ADMIN)


@pytest.fixture
def admin_client(admin):
    """The test client signed in as ``admin`` (replaces pytest-django's, whose superuser has no
    console role)."""
    from tests.helpers import client_for

    return client_for(admin)


@pytest.fixture
def fresh_config():
    """The WeCom settings cache emptied before and after the test."""
    from siyu.wecom import config

    config.invalidate()
    yield
    config.invalidate()


@pytest.fixture
def synced(sim, transactional_db):
    """The product pointed at the session emulator and fully synced with it (per test)."""
    from siyu.sync.services import run_full_sync

    point_product_at(sim)
    run_full_sync(workers=2)
    yield sim


# --- collection ---------------------------------------------------------------------------------
POSTGRES_SUITE = "tests/test_postgres_suite.py"
# fixtures that need the session emulator process; a module that imports these names starts an
# emulator of its own
SIM_FIXTURES = {"sim", "sim_rules", "wecom_sim", "live_callbacks"}
OWN_EMULATOR = ("SimProcess", "own_sim")


def needs_emulator(item) -> bool:
    if SIM_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return True
    module = getattr(item, "module", None)
    return module is not None and any(hasattr(module, name) for name in OWN_EMULATOR)


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(config, items):
    """Mark every test that needs an emulator process ``sim`` (``-m "not sim"``: the fast layer).

    The PostgreSQL re-run is one test lasting minutes: first, so that an xdist worker starts it
    at once and the other files fill the other workers meanwhile (addopts: --no-loadscope-reorder)."""
    for item in items:
        if needs_emulator(item):
            item.add_marker(pytest.mark.sim)
    items.sort(key=lambda item: item.nodeid.split("::")[0] != POSTGRES_SUITE)


@pytest.fixture(autouse=True)
def _fresh_segment_index():
    """Each test starts without the in-memory segment index (it is built again on first use)."""
    from siyu.core import paging
    from siyu.segments import engine

    engine.reset()
    paging.forget_walks()  # and without the walks' memory of rows handed out (core.paging.settle)
    yield
    engine.reset()


@pytest.fixture(autouse=True)
def _default_language():
    """Each test starts in the default language (zh-hans). Django's LocaleMiddleware activates a
    request's language in the serving thread and nothing deactivates it, so a test client request
    in English would otherwise leave later tests of the same worker rendering in English."""
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.deactivate()
