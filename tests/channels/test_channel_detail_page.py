"""Fast layer: a channel code's page shows its QR image and its auto-tags by name, and no raw
WeCom field name as a label (issue 16, item 8)."""

from __future__ import annotations

import pytest

from siyu.channels.models import ChannelCode
from siyu.customers.models import Tag, TagGroup
from tests.helpers import client_for, make_user

pytestmark = pytest.mark.django_db


def test_the_code_page_shows_its_qr_image_and_auto_tags_by_name():
    group = TagGroup.objects.create(group_id="etG1", name="会员等级")
    Tag.objects.create(tag_id="etT1", group=group, name="金卡")
    code = ChannelCode.objects.create(name="门店海报", config_id="cfg-1", users=["xujuan"], tag_ids=["etT1", "etGONE"])
    page = client_for(make_user("admin", "admin")).get(f"/channels/{code.id}/").content.decode()
    assert 'data-testid="qr-preview"' in page
    tags = page.split('data-testid="auto-tags"', 1)[1].split("</dd>", 1)[0]
    assert "会员等级 / 金卡" in tags and "已删除的标签" in tags and "etT1" not in tags
    assert "<dt>config_id</dt>" not in page and "<dt>state</dt>" not in page
