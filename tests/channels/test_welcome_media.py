"""A welcome with stored media, sent through the emulator: the product uploads the files itself;
when WeCom has forgotten a media id earlier than the product's clock expected (40007), the welcome
is sent again at once with the files uploaded anew (the welcome code was not used)."""

from __future__ import annotations

from siyu.channels import services
from siyu.channels.models import WelcomeSend
from siyu.wecom import gateway
from siyu.wecom.media import services as media
from siyu.wecom.models import StoredMedia
from tests.sim.helpers import employee, png_bytes

DAY = 24 * 3600


def _scan(sim, code, name):
    ext = sim.control("scan", {"config_id": code.config_id, "name": name})["external_userid"]
    log = sim.control("welcome_log", {"external_userid": ext})["welcome_codes"]
    wc = log[-1]
    return ext, {
        "WelcomeCode": wc["code"],
        "UserID": wc["userid"],
        "ExternalUserID": ext,
        "State": code.state,
        "CreateTime": str(wc["issued_at"]),
    }


def test_mini_program_welcome_with_a_media_id_wecom_forgot(wecom_sim):
    sim = wecom_sim
    cover = media.store("image", "cover.png", png_bytes())
    welcome = services.clean_welcome(
        "你好 {nickname}",
        [
            {
                "msgtype": "miniprogram",
                "miniprogram": {
                    "title": "会员中心",
                    "appid": "wx8bd80126147dfa01",
                    "page": "pages/i",
                    "media": cover.id,
                },
            },
            {"msgtype": "image", "image": {"media": cover.id, "name": "cover.png"}},
        ],
    )
    code = services.create_code({"name": "媒体欢迎", "users": [employee(sim)], "welcome": welcome})
    warmed = StoredMedia.objects.get(id=cover.id).media_id
    assert warmed  # uploaded when the code was saved, not in the first customer's 20 s

    ext, event = _scan(sim, code, "甲")
    assert services.send_welcomes([event]) == 1
    first = StoredMedia.objects.get(id=cover.id).media_id
    assert first == warmed
    sent = sim.control("welcome_log", {"external_userid": ext})["welcome_codes"][-1]["sent_payload"]
    assert sent["attachments"][0]["miniprogram"]["pic_media_id"] == first
    assert sent["attachments"][1]["image"]["media_id"] == first

    sim.advance(3 * DAY + 120)  # WeCom forgets the id; our clock still thinks it is fresh
    gateway.contact().department.list()  # the access token expired too: renewed here, not in a sender thread
    ext, event = _scan(sim, code, "乙")
    n = services.send_welcomes([event])
    row = WelcomeSend.objects.get(external_userid=ext)
    assert n == 1, (row.status, row.errcode, row.error)
    assert row.status == WelcomeSend.SENT, row.error
    renewed = StoredMedia.objects.get(id=cover.id).media_id
    assert renewed != first
    sent = sim.control("welcome_log", {"external_userid": ext})["welcome_codes"][-1]["sent_payload"]
    assert sent["attachments"][0]["miniprogram"]["pic_media_id"] == renewed


def test_welcome_media_must_be_stored_files(db):
    img = media.store("image", "a.png", png_bytes())
    assert services.clean_welcome("", [{"msgtype": "image", "image": {"media": img.id}}])
    for bad in (
        {"msgtype": "video", "video": {"media": img.id}},  # an image is not a video
        {"msgtype": "image", "image": {"media": 10**9}},
        {"msgtype": "image", "image": {"media": "1"}},
        {"msgtype": "link", "link": {"title": "t", "url": "https://a.example.com", "media": img.id}},
    ):
        try:
            services.clean_welcome("", [bad])
        except services.ChannelError:
            continue
        raise AssertionError(bad)
