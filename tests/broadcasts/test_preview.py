"""Fast layer: the phone-frame preview on the mass-message composer (live, with the limits of the
message kind) and on a broadcast's detail page (server-rendered, variables filled)."""

from __future__ import annotations

import pytest

from siyu.broadcasts.models import Broadcast
from siyu.core import preview

pytestmark = pytest.mark.django_db


def test_composer_has_the_live_preview_with_limits(admin_client):
    page = admin_client.get("/broadcasts/new/?kind=moment").content.decode()
    assert 'data-testid="phone-preview"' in page and "data-live" in page and 'data-form="compose-form"' in page
    assert "2000" in page  # Moments: 2000 characters
    assert "siyu/preview.js" in page


def test_detail_renders_the_message_as_bubbles(admin, admin_client):
    b = Broadcast.objects.create(
        kind="customer",
        name="春季",
        text="你好，我是{员工姓名}<b>",
        attachments=[
            {"type": "link", "title": "春季上新", "url": "https://a.example.com", "desc": "八折"},
            {"type": "miniprogram", "title": "会员中心", "appid": "wx8bd80126147dfa01", "page": "p"},
        ],
        created_by=admin,
    )
    page = admin_client.get(f"/broadcasts/{b.id}/").content.decode()
    assert 'data-testid="bubble-link"' in page and 'data-testid="bubble-miniprogram"' in page
    assert f"你好，我是{preview.SAMPLE_EMPLOYEE}&lt;b&gt;" in page  # filled, escaped


def test_limits_per_kind():
    assert preview.LIMITS["moment"]["kinds"] == ["image", "video", "link"]
    assert preview.LIMITS["group_welcome"]["max_attachments"] == 1
    b = preview.bubbles(
        "hi {nickname}", [{"msgtype": "video", "video": {"media": 1, "name": "v.mp4"}}], {"{nickname}": "A"}
    )
    assert b == [{"type": "text", "text": "hi A"}, {"type": "video", "name": "v.mp4"}]
