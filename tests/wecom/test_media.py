"""Stored media against the emulator's media endpoints: a file is stored once, uploaded to WeCom
when a message needs it, its media id cached and renewed before WeCom's 3-day expiry (on use and by
the refresh timer); Moments get their own id from media/upload_attachment."""

from __future__ import annotations

import time

import pytest

from siyu.core import timers
from siyu.core.models import Timer
from siyu.wecom import gateway
from siyu.wecom.media import services as media
from siyu.wecom.models import StoredMedia
from tests.sim.helpers import png_bytes

DAY = 24 * 3600


def _accepted(media_id: str) -> None:
    """WeCom takes ``media_id`` in a message now (a group welcome template with it as image)."""
    api = gateway.contact().external_contact
    t = api.add_group_welcome_template(template={"image": {"media_id": media_id}, "notify": 0})
    api.del_group_welcome_template(t["template_id"])


def test_store_checks_content_and_keeps_one_copy(db):
    a = media.store("image", "a.png", png_bytes())
    assert media.store("image", "a.png", png_bytes()).id == a.id  # same bytes and name: one row
    assert media.store("image", "b.png", png_bytes()).id != a.id
    with pytest.raises(media.MediaError):
        media.store("image", "x.png", b"GIF89a-not-a-png")
    with pytest.raises(media.MediaError):
        media.store("video", "v.mp4", b"not an mp4 at all")
    with pytest.raises(media.MediaError):
        media.store("voice", "v.amr", b"#!AMR....")  # not a message attachment kind


def test_media_id_is_cached_then_renewed_before_wecom_forgets_it(wecom_sim):
    m = media.store("image", "welcome.png", png_bytes())
    t0 = time.time()
    first = media.media_id(m.id, now=t0)
    _accepted(first)
    assert media.media_id(m.id, now=t0 + DAY) == first  # cached: no second upload
    # an hour before the 3 days are up, a use uploads again
    second = media.media_id(m.id, now=t0 + 3 * DAY - 1800)
    assert second != first
    row = StoredMedia.objects.get(id=m.id)
    assert row.media_id == second and row.uploaded_at == t0 + 3 * DAY - 1800 and row.last_used_at > 0
    # WeCom forgets after 3 days (40007); the renewed id is still good
    wecom_sim.advance(3 * DAY + 60)
    with pytest.raises(gateway.WeComAPIError) as e:
        _accepted(first)
    assert e.value.errcode == 40007
    third = media.media_id(m.id, now=t0 + 6 * DAY)
    _accepted(third)
    # an id WeCom refused early: forget it and the next use uploads again
    media.forget(m.id)
    assert media.media_id(m.id, now=t0 + 6 * DAY) != third


def test_moments_use_upload_attachment(wecom_sim):
    m = media.store("image", "moment.png", png_bytes())
    normal = media.media_id(m.id)
    moment = media.media_id(m.id, moment=True)
    row = StoredMedia.objects.get(id=m.id)
    assert moment != normal and row.moment_media_id == moment and row.media_id == normal


def test_refresh_renews_only_media_in_use_that_expire_soon(wecom_sim):
    t0 = time.time()
    used = media.store("image", "used.png", png_bytes())
    idle = media.store("image", "idle.png", png_bytes(200))
    media.media_id(used.id, now=t0)
    media.media_id(idle.id, now=t0)
    StoredMedia.objects.filter(id=idle.id).update(last_used_at=t0 - 40 * DAY)  # not used for 40 days
    assert media.refresh_due(now=t0 + DAY) == 0  # two days left: nothing to do
    before = StoredMedia.objects.get(id=used.id).media_id
    assert media.refresh_due(now=t0 + 3 * DAY - 6 * 3600) == 1  # six hours left: renewed ahead of use
    after = StoredMedia.objects.get(id=used.id)
    assert after.media_id != before and after.uploaded_at == t0 + 3 * DAY - 6 * 3600
    _accepted(after.media_id)


def test_refresh_timer_is_scheduled_once_and_registered(db):
    media.ensure_refresh_scheduled()
    media.ensure_refresh_scheduled()
    assert Timer.objects.filter(kind=media.REFRESH_KIND, status="pending").count() == 1
    assert media.REFRESH_KIND in timers.HANDLERS
