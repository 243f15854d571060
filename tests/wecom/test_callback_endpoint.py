"""The callback endpoint against WeCom's documented crypto vectors and hostile input.

Vectors: the official sample kept in wechatpy's tests (shared/domain/wecom-api/part3 §1.6).
"""

from __future__ import annotations

import pytest
from django.test import override_settings
from wechatpy.crypto import _get_signature
from wechatpy.work.crypto import PrpCrypto, WeChatCrypto

from siyu.wecom import config
from siyu.wecom.models import CallbackInbox, CallbackRejection, WeComSettings

TOKEN = "123456"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
CORP_ID = "wx49f0ab532d5d035a"

ECHO = dict(
    msg_signature="dd6b9c95b495b3f7e2901bfbc76c664930ffdb96",
    timestamp="1411443780",
    nonce="437374425",
    echostr="4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q==",
)
POST_QUERY = dict(msg_signature="74d92dfeb87ba7c714f89d98870ae5eb62dff26d", timestamp="1411525903", nonce="461056294")
POST_BODY = """<xml><ToUserName><![CDATA[wx49f0ab532d5d035a]]></ToUserName>
<Encrypt><![CDATA[RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0=]]></Encrypt>
<AgentID><![CDATA[1]]></AgentID>
</xml>"""


@pytest.fixture
def vector_corp(db):
    WeComSettings.objects.all().delete()
    WeComSettings.objects.create(corp_id=CORP_ID, callback_token=TOKEN, callback_aes_key=AES_KEY)
    config.invalidate()
    yield
    config.invalidate()


def test_url_verification_vector(client, vector_corp):
    r = client.get("/wecom/callback/", ECHO)
    assert r.status_code == 200
    assert r.content == b"5927782489442352469"  # the plaintext only: no quotes, BOM or newline


def test_url_verification_wrong_nonce_is_refused(client, vector_corp):
    r = client.get("/wecom/callback/", {**ECHO, "nonce": "437374424"})
    assert r.status_code == 403
    assert CallbackRejection.objects.filter(reason="signature", status_code=403).count() == 1


@override_settings(SIYU_CALLBACK_MAX_AGE_S=0)  # the 2014 sample would otherwise be a replay
def test_encrypted_message_vector_is_stored(client, vector_corp):
    r = client.post(
        "/wecom/callback/?" + "&".join(f"{k}={v}" for k, v in POST_QUERY.items()), POST_BODY, content_type="text/xml"
    )
    assert r.status_code == 200
    assert r.content == b""
    row = CallbackInbox.objects.get()
    assert row.event == "text"
    assert "<Content><![CDATA[test]]></Content>" in row.payload
    assert "<MsgId>4363689963896700987</MsgId>" in row.payload
    assert row.create_time == 1411525903


def test_encrypt_vector_reproduced_by_the_emulator_cipher(monkeypatch):
    """The emulator encrypts with wechatpy's PrpCrypto: with the random fixed it gives vector (c)."""
    plaintext = (
        "<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n"
        "<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n<ToUserName><![CDATA[messense]]></ToUserName>\n"
        "<AgentID>1</AgentID>\n<CreateTime>1411525903</CreateTime>\n</xml>"
    )
    monkeypatch.setattr(PrpCrypto, "get_random_string", lambda self: "1234567890123456")
    crypto = WeChatCrypto(TOKEN, AES_KEY, CORP_ID)
    encrypted = PrpCrypto(crypto.key).encrypt(plaintext, CORP_ID).decode()
    assert encrypted.startswith("9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk")
    assert encrypted.endswith("FMNMpatF9XiKzHo3")
    assert _get_signature(TOKEN, "1411525903", "461056294", encrypted) == "407518b7649e86ef23978113f92d27afa9296533"


@override_settings(SIYU_CALLBACK_MAX_AGE_S=0)
def test_same_callback_three_times_is_stored_once(client, vector_corp):
    url = "/wecom/callback/?" + "&".join(f"{k}={v}" for k, v in POST_QUERY.items())
    for _ in range(3):
        assert client.post(url, POST_BODY, content_type="text/xml").status_code == 200
    assert CallbackInbox.objects.count() == 1


def test_old_timestamp_is_refused_as_replay(client, vector_corp):
    url = "/wecom/callback/?" + "&".join(f"{k}={v}" for k, v in POST_QUERY.items())
    r = client.post(url, POST_BODY, content_type="text/xml")
    assert r.status_code == 403
    assert not CallbackInbox.objects.exists()
    assert CallbackRejection.objects.filter(reason="replay").exists()


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml at all",
        b"<xml><ToUserName>x</ToUserName></xml>",  # no Encrypt
        b"<notxml><Encrypt>abc</Encrypt></notxml>",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml><Encrypt>&a;</Encrypt></xml>',
        b"<xml><Encrypt><![CDATA[%%%not-base64%%%]]></Encrypt></xml>",
    ],
)
def test_malformed_bodies_get_400_and_nothing_is_stored(client, vector_corp, body):
    # sign whatever Encrypt there is, so the refusal is for the body, not the signature
    import re

    m = re.search(rb"<Encrypt>(?:<!\[CDATA\[)?(.*?)(?:\]\]>)?</Encrypt>", body)
    enc = m.group(1).decode() if m else ""
    import time

    ts, nonce = str(int(time.time())), "123"
    sig = _get_signature(TOKEN, ts, nonce, enc)
    r = client.post(f"/wecom/callback/?msg_signature={sig}&timestamp={ts}&nonce={nonce}", body, content_type="text/xml")
    assert r.status_code == 400, r.content
    assert not CallbackInbox.objects.exists()
    assert CallbackRejection.objects.filter(reason="malformed", status_code=400).exists()


def test_bad_signature_on_post_is_403(client, vector_corp):
    import time

    crypto = WeChatCrypto(TOKEN, AES_KEY, CORP_ID)
    ts = str(int(time.time()))
    encrypted = PrpCrypto(crypto.key).encrypt("<xml><Event>x</Event></xml>", CORP_ID).decode()
    body = f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    r = client.post(f"/wecom/callback/?msg_signature={'0' * 40}&timestamp={ts}&nonce=1", body, content_type="text/xml")
    assert r.status_code == 403
    assert not CallbackInbox.objects.exists()


def test_payload_for_another_corp_is_refused(client, vector_corp):
    """The receive id inside the plaintext must be our corp id."""
    import time

    crypto = WeChatCrypto(TOKEN, AES_KEY, "wwSomeOtherCorp")
    ts, nonce = str(int(time.time())), "42"
    encrypted = PrpCrypto(crypto.key).encrypt("<xml><Event>x</Event></xml>", "wwSomeOtherCorp").decode()
    sig = _get_signature(TOKEN, ts, nonce, encrypted)
    body = f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    r = client.post(f"/wecom/callback/?msg_signature={sig}&timestamp={ts}&nonce={nonce}", body, content_type="text/xml")
    assert r.status_code == 400
    assert not CallbackInbox.objects.exists()


def test_missing_query_parameters(client, vector_corp):
    assert client.get("/wecom/callback/").status_code == 400
    assert client.post("/wecom/callback/", "<xml/>", content_type="text/xml").status_code == 400


def test_unconfigured_endpoint_answers_503(client, db):
    WeComSettings.objects.all().delete()
    config.invalidate()
    with override_settings(
        WECOM={**__import__("django.conf").conf.settings.WECOM, "CALLBACK_TOKEN": "", "CALLBACK_AES_KEY": ""}
    ):
        config.invalidate()
        assert client.get("/wecom/callback/", ECHO).status_code == 503
    config.invalidate()
