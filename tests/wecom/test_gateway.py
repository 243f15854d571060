"""The gateway against the emulator over HTTP: tokens, retries, backoff and the call log."""

from __future__ import annotations

import logging
import time

import pytest
from django.test import override_settings

from siyu.wecom import config, gateway
from siyu.wecom.models import AccessToken, ApiCall, WeComSettings


def calls(sim, path: str) -> int:
    return sim.control("status")["calls"].get(path, 0)


def test_token_is_fetched_once_and_shared(wecom_sim):
    sim = wecom_sim
    before = calls(sim, "gettoken")
    for _ in range(5):
        assert gateway.contact().department.list()  # department/list
    assert calls(sim, "gettoken") - before == 1
    # stored for other processes, keyed by a hash of the secret, never the secret itself
    row = AccessToken.objects.get(key__endswith=":token")
    assert sim.secret not in row.key and sim.secret[:10] not in row.key


def test_revoked_token_is_refreshed_and_the_call_retried_once(wecom_sim):
    sim = wecom_sim
    gateway.contact().department.list()
    sim.control("tokens/revoke")  # WeCom may invalidate a token before 7200 s
    ApiCall.objects.all().delete()
    assert gateway.contact().department.list()
    log = list(ApiCall.objects.order_by("id").values_list("path", "errcode"))
    assert log == [("department/list", 40014), ("gettoken", 0), ("department/list", 0)]


def test_expired_token_42001_is_refreshed(wecom_sim):
    sim = wecom_sim
    gateway.contact().department.list()
    sim.advance(7300)  # the emulator's clock: the token is now past its 7200 s
    ApiCall.objects.all().delete()
    gateway.contact().department.list()
    assert list(ApiCall.objects.order_by("id").values_list("errcode", flat=True)) == [42001, 0, 0]


@pytest.mark.django_db(transaction=True)
def test_concurrent_calls_reuse_their_connections(wecom_sim, sim_rules):
    """The welcome pool makes 32 calls at once through one client: the connections stay open
    for the next wave instead of being closed beyond requests' default 10 (a new TCP, in
    production TLS, handshake per call)."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    client = gateway.contact()
    client.department.list()
    sim_rules(api_latency_ms=150)  # WeCom is tens of ms away: the calls of a wave overlap
    n = 24

    def one(_):
        try:
            return bool(client.department.list())
        finally:
            connection.close()

    def opened() -> int:
        adapter = client._http.get_adapter(client.API_BASE_URL)
        return sum(pool.num_connections for pool in adapter.poolmanager.pools._container.values())

    with ThreadPoolExecutor(n) as pool:
        assert all(pool.map(one, range(n)))
        first = opened()
        assert first > 10  # the wave was concurrent
        assert all(pool.map(one, range(n)))
    assert opened() - first <= 2


@pytest.mark.django_db(transaction=True)
def test_threads_hitting_an_expired_token_at_once_refresh_it_once_and_all_succeed(wecom_sim):
    """Parallel inbox threads all get 42001 after the clock passes 7200 s: the first refreshes,
    the others use its token instead of deleting it (or putting the stale one back)."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    sim = wecom_sim
    gateway.contact().department.list()
    sim.advance(7300)
    before = calls(sim, "gettoken")

    def one(_):
        try:
            return bool(gateway.contact().department.list())
        finally:
            connection.close()

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(one, range(16)))
    assert calls(sim, "gettoken") - before <= 2
    assert gateway.contact().department.list()


def test_frequency_limit_backs_off_then_gives_up_with_45009(wecom_sim, settings):
    sim = wecom_sim
    settings.WECOM = {**settings.WECOM, "RATE_LIMIT_RETRIES": 2, "RATE_LIMIT_BACKOFF_S": 0.2}
    config.invalidate()
    sim.control("config", {"quota_per_min": {"department/list": 1}})
    try:
        gateway.contact().department.list()  # the one call this minute allows
        ApiCall.objects.all().delete()
        started = time.monotonic()
        with pytest.raises(gateway.WeComAPIError) as err:
            gateway.contact().department.list()
        elapsed = time.monotonic() - started
        assert err.value.errcode == 45009
        assert list(ApiCall.objects.values_list("errcode", flat=True)) == [45009, 45009, 45009]
        assert elapsed >= 0.2 + 0.4  # two backoffs: 0.2 s, then 0.4 s
    finally:
        sim.control("rules/reset")


def test_system_busy_refreshes_once_then_backs_off(wecom_sim, settings):
    sim = wecom_sim
    settings.WECOM = {**settings.WECOM, "RATE_LIMIT_RETRIES": 1, "RATE_LIMIT_BACKOFF_S": 0.05}
    config.invalidate()
    gateway.contact().department.list()
    sim.set_rules(fault_busy_rate=1.0)
    try:
        ApiCall.objects.all().delete()
        with pytest.raises(gateway.WeComAPIError) as err:
            gateway.contact().department.list()
        assert err.value.errcode == -1
        paths = list(ApiCall.objects.order_by("id").values_list("path", "errcode"))
        # -1: drop the token and fetch a new one (itself busy: one backoff retry), then give up
        assert paths == [("department/list", -1), ("gettoken", -1), ("gettoken", -1)]
    finally:
        sim.reset_rules()


def test_wrong_secret_is_recorded_and_never_logged(wecom_sim, caplog):
    sim = wecom_sim
    WeComSettings.objects.update(app_secret="definitely-not-the-secret-0123456789")
    config.invalidate()
    with caplog.at_level(logging.DEBUG), pytest.raises(gateway.WeComAPIError) as err:
        gateway.app().department.list()
    assert err.value.errcode == 40001
    row = ApiCall.objects.filter(path="gettoken").latest("id")
    assert row.errcode == 40001 and row.secret_kind == "app"
    text = caplog.text + " ".join(str(v) for v in ApiCall.objects.values_list("path", "errmsg"))
    assert "definitely-not-the-secret" not in text
    assert sim.secret not in text
    # the contact secret still works: tokens are per (corp, secret)
    assert gateway.contact().department.list()


def test_tokens_never_appear_in_the_call_log(wecom_sim):
    gateway.contact().department.list()
    token = AccessToken.objects.get(key__endswith=":token").value.strip('"')
    for path, errmsg in ApiCall.objects.values_list("path", "errmsg"):
        assert token not in path and token not in errmsg


def test_unreachable_wecom_is_recorded_without_http_answer(db, settings):
    WeComSettings.objects.all().delete()
    WeComSettings.objects.create(corp_id="ww1", api_base="http://127.0.0.1:9", contact_secret="s")
    settings.WECOM = {**settings.WECOM, "RATE_LIMIT_RETRIES": 1, "RATE_LIMIT_BACKOFF_S": 0.01, "TIMEOUT_S": 1}
    config.invalidate()
    with pytest.raises(gateway.WeComAPIError) as err:
        gateway.contact().department.list()
    assert err.value.errcode is None
    rows = list(ApiCall.objects.values_list("path", "errcode", "http_status"))
    assert rows and all(r == ("gettoken", None, None) for r in rows)
    config.invalidate()


@override_settings()
def test_not_configured(db):
    WeComSettings.objects.all().delete()
    config.invalidate()
    from django.conf import settings

    settings.WECOM = {**settings.WECOM, "CORP_ID": "", "CONTACT_SECRET": ""}
    config.invalidate()
    with pytest.raises(gateway.WeComAPIError):
        gateway.contact()
    config.invalidate()


# --- issue 14: no token or secret in any error text, log line or stored row -----------------
def test_redact_removes_tokens_secrets_and_keys_by_name_and_by_value():
    from siyu.wecom.redaction import remember_config, remember_token

    url_error = (
        "ConnectionError: HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded with url: "
        "/cgi-bin/gettoken?corpid=ww1&corpsecret=s3cr3t-Value_1 (Caused by NewConnectionError('refused'))"
    )
    clean = gateway.redact(url_error)
    assert "s3cr3t-Value_1" not in clean and "corpsecret=***" in clean and "corpid=ww1" in clean
    assert gateway.redact("/cgi-bin/user/get?access_token=TOKEN-abc.123&userid=zhangsan") == (
        "/cgi-bin/user/get?access_token=***&userid=zhangsan"
    )
    assert (
        gateway.redact('{"access_token": "abc", "expires_in": 7200}') == '{"access_token": "***", "expires_in": 7200}'
    )
    assert (
        gateway.redact("{'EncodingAESKey': 'k' * 43, 'Token': 'x'}") == "{'EncodingAESKey': '***' * 43, 'Token': '***'}"
    )
    assert (
        gateway.redact("WeComSettings(callback_aes_key='abc', corp_id='ww1')")
        == "WeComSettings(callback_aes_key='***', corp_id='ww1')"
    )
    # the configured values and the tokens fetched, wherever they appear
    remember_config("contact-secret-literal-0001", "", "tok")
    remember_token("A-TOKEN-VALUE-12345")
    assert gateway.redact("x contact-secret-literal-0001 y A-TOKEN-VALUE-12345 z") == "x *** y *** z"
    assert (
        gateway.redact("tokens=5 next_cursor=abc tok") == "tokens=5 next_cursor=abc tok"
    )  # short values: by name only
    assert gateway.redact(None) == ""
    config.invalidate()


def test_every_log_record_is_redacted_whatever_its_logger(caplog):
    caplog.set_level(logging.DEBUG)
    logging.getLogger("urllib3.connectionpool").debug(
        '"GET /cgi-bin/gettoken?corpid=ww1&corpsecret=%s HTTP/1.1" 200', "leaky1"
    )
    logging.getLogger("some.library").warning("calling %s", "/x?access_token=leaky2")
    try:
        raise ValueError("url /x?access_token=leaky3")
    except ValueError:
        logging.getLogger("another").exception("failed")
    assert "leaky" not in caplog.text
    assert caplog.text.count("=***") >= 3  # the traceback's source line too


def test_unreachable_wecom_raises_wecom_unavailable_without_url_or_secret(db, settings, caplog):
    WeComSettings.objects.all().delete()
    WeComSettings.objects.create(corp_id="ww1", api_base="http://127.0.0.1:9", contact_secret="the-contact-secret-9876")
    settings.WECOM = {**settings.WECOM, "RATE_LIMIT_RETRIES": 0, "TIMEOUT_S": 1}
    config.invalidate()
    # a cached token: the failing call carries ?access_token= in its URL
    gateway.contact().session.set(gateway.contact().access_token_key, "cached-token-value-4321", 7200)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(gateway.WeComUnavailable) as err:
        gateway.contact().department.list()
    e = err.value
    assert isinstance(e, gateway.WeComAPIError) and e.errcode is None and e.path == "department/list"
    assert str(e) == e.errmsg == "WeCom unreachable: connection refused (department/list)"
    assert e.__context__ is None and e.__cause__ is None  # no chained requests error (its text has the URL)
    for text in [str(e), caplog.text, *ApiCall.objects.values_list("errmsg", flat=True)]:
        assert "cached-token-value-4321" not in text and "the-contact-secret-9876" not in text
    assert "127.0.0.1" not in str(e)
    assert ApiCall.objects.get().errmsg == "WeCom unreachable: connection refused"
    # gettoken: corpsecret= in the URL
    gateway.contact().invalidate_token()
    with pytest.raises(gateway.WeComUnavailable, match=r"^WeCom unreachable: connection refused \(gettoken\)$"):
        gateway.contact().department.list()
    assert "the-contact-secret-9876" not in caplog.text
    config.invalidate()


def test_qr_image_download_failure_is_wecom_unavailable():
    from siyu.wecom.qr_images import fetch_qr_png

    with pytest.raises(gateway.WeComUnavailable, match="connection refused") as err:
        fetch_qr_png("http://127.0.0.1:9/qr?access_token=never-shown", timeout=1)
    assert "never-shown" not in str(err.value)


def test_secrets_are_encrypted_at_rest_and_read_transparently(db, tmp_path, settings):
    from django.db import connection

    from siyu.wecom import fields

    settings.SIYU_FIELD_KEY = ""
    settings.VAR_DIR = tmp_path
    fields.reset_key_cache()
    try:
        WeComSettings.objects.all().delete()
        WeComSettings.objects.create(corp_id="ww1", contact_secret="plain-contact-secret", callback_aes_key="k" * 43)
        key_file = tmp_path / "field.key"
        assert key_file.exists() and (key_file.stat().st_mode & 0o777) == 0o600
        with connection.cursor() as cursor:
            cursor.execute("SELECT contact_secret, app_secret, callback_aes_key FROM wecom_wecomsettings")
            contact, app, aes = cursor.fetchone()
        assert contact.startswith("fernet:") and "plain-contact-secret" not in contact
        assert app == "" and aes.startswith("fernet:")
        config.invalidate()
        cfg = config.get()
        assert cfg.contact_secret == "plain-contact-secret" and cfg.callback_aes_key == "k" * 43
        # a row written before the encryption reads as it is (the migration then encrypts it)
        with connection.cursor() as cursor:
            cursor.execute("UPDATE wecom_wecomsettings SET app_secret = 'legacy-plain'")
        assert WeComSettings.objects.get().app_secret == "legacy-plain"
        # the environment's key wins; a wrong key makes the value unreadable, never shown
        fields.reset_key_cache()
        settings.SIYU_FIELD_KEY = fields.Fernet.generate_key().decode()
        assert WeComSettings.objects.get().contact_secret == ""
    finally:
        fields.reset_key_cache()
        config.invalidate()
