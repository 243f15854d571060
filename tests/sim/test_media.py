"""Media (part 2 §6, R17/R18): media/upload, upload_attachment, uploadimg, media/get."""

from __future__ import annotations

import pytest

from tests.sim.helpers import (
    amr_bytes,
    mp4_bytes,
    png_bytes,
    upload,
    upload_attachment,
)

MB = 1024 * 1024


def get_media(sim, media_id):
    return sim.http.get(f"{sim.base_url}/cgi-bin/media/get", params={"access_token": sim.token(), "media_id": media_id})


def test_upload_and_get_roundtrip(sim):
    data = png_bytes(300)
    r = upload(sim, "image", data, "商品图.png", "image/png")
    assert r["errcode"] == 0, r
    assert r["type"] == "image"
    assert isinstance(r["created_at"], str) and r["created_at"].isdigit()
    resp = get_media(sim, r["media_id"])
    assert resp.status_code == 200
    assert resp.content == data
    assert resp.headers["Content-Type"] == "image/png"
    assert "attachment" in resp.headers["Content-disposition"]
    assert "filename" in resp.headers["Content-disposition"]


@pytest.mark.parametrize(
    "media_type,data,name",
    [
        ("image", png_bytes(), "a.png"),
        ("voice", amr_bytes(), "v.amr"),
        ("video", mp4_bytes(), "v.mp4"),
        ("file", b"any bytes at all", "notes.txt"),
    ],
)
def test_upload_each_type(sim, media_type, data, name):
    r = upload(sim, media_type, data, name)
    assert r["errcode"] == 0, r
    assert r["type"] == media_type
    assert get_media(sim, r["media_id"]).content == data


def test_invalid_type_param_40005(sim):
    assert upload(sim, "pdf", b"123456789", "a.pdf")["errcode"] == 40005
    r = sim.call("media/upload", files={"media": ("a.png", png_bytes(), "image/png")})  # no type at all
    assert r["errcode"] == 40005


def test_wrong_format_40004(sim):
    # MP4 bytes sent as an image, and a text file named .txt as an image
    assert upload(sim, "image", mp4_bytes(), "a.png")["errcode"] == 40004
    assert upload(sim, "image", b"plain text here", "a.txt")["errcode"] == 40004
    assert upload(sim, "voice", png_bytes(), "a.amr")["errcode"] == 40004
    assert upload(sim, "video", amr_bytes(), "a.mp4")["errcode"] == 40004


def test_missing_or_empty_media_44001(sim):
    r = sim.call("media/upload", params={"type": "file"}, files={"other": ("a.txt", b"hello world", "text/plain")})
    assert r["errcode"] == 44001
    assert upload(sim, "file", b"", "empty.txt")["errcode"] == 44001


def test_five_bytes_or_less_40006(sim):
    assert upload(sim, "file", b"12345", "five.txt")["errcode"] == 40006
    assert upload(sim, "file", b"123456", "six.txt")["errcode"] == 0


@pytest.mark.parametrize(
    "media_type,limit,make,name",
    [
        ("image", 2 * MB, png_bytes, "big.png"),
        ("voice", 2 * MB, amr_bytes, "big.amr"),
        ("video", 10 * MB, mp4_bytes, "big.mp4"),
        ("file", 20 * MB, lambda n: b"f" * n, "big.bin"),
    ],
)
def test_default_size_limits_45001(sim, media_type, limit, make, name):
    r = upload(sim, media_type, make(limit + 1), name)
    assert r["errcode"] == 45001, r


def test_image_exactly_at_limit_is_accepted(sim):
    assert upload(sim, "image", png_bytes(2 * MB), "edge.png")["errcode"] == 0


def test_size_limit_is_a_rule(sim, sim_rules):
    sim_rules(media_file_max_bytes=100)
    assert upload(sim, "file", b"x" * 100, "ok.bin")["errcode"] == 0
    assert upload(sim, "file", b"x" * 101, "big.bin")["errcode"] == 45001


def test_get_unknown_missing_and_expired(sim, sim_rules):
    r = get_media(sim, "3nonexistentmediaid")
    assert r.json()["errcode"] == 40007
    r = sim.http.get(f"{sim.base_url}/cgi-bin/media/get", params={"access_token": sim.token()})
    assert r.json()["errcode"] == 41006
    mid = upload(sim, "file", b"expiring file", "e.txt")["media_id"]
    assert get_media(sim, mid).status_code == 200
    sim_rules(media_ttl_s=0)  # everything uploaded so far is now past its validity
    assert get_media(sim, mid).json()["errcode"] == 40007


def test_upload_attachment(sim):
    r = upload_attachment(sim, "image", 1)
    assert r["errcode"] == 0 and r["type"] == "image" and r["media_id"]
    assert get_media(sim, r["media_id"]).status_code == 200
    assert upload_attachment(sim, "video", 2)["errcode"] == 0
    assert upload_attachment(sim, "voice", 1, data=amr_bytes(), name="a.amr")["errcode"] == 40005
    assert upload_attachment(sim, "image", 3)["errcode"] == 40058
    assert upload_attachment(sim, "image", 1, data=png_bytes(10 * MB + 1))["errcode"] == 45001
    assert upload_attachment(sim, "image", 1, data=png_bytes(3 * MB))["errcode"] == 0  # 10 MB here, not 2


def test_uploadimg_and_quotas(sim, sim_rules):
    r = sim.call("media/uploadimg", files={"media": ("logo.png", png_bytes(), "image/png")})
    assert r["errcode"] == 0, r
    assert r["url"].startswith("https://p.qpic.cn/pic_wework/")
    big = sim.call("media/uploadimg", files={"media": ("big.png", png_bytes(2 * MB + 1), "image/png")})
    assert big["errcode"] == 45001
    # at least one image was uploaded today and this month: a cap of 1 is reached
    sim_rules(uploadimg_daily_cap=1)
    assert sim.call("media/uploadimg", files={"media": ("x.png", png_bytes(), "image/png")})["errcode"] == 45009
    sim_rules(uploadimg_daily_cap=0, uploadimg_monthly_cap=1)
    assert sim.call("media/uploadimg", files={"media": ("x.png", png_bytes(), "image/png")})["errcode"] == 45009
