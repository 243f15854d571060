"""Fast layer (database only, no emulator): default welcomes are written by services and read by
selectors, one row per employee or department."""

from __future__ import annotations

import pytest

from siyu.channels import selectors, services
from siyu.channels.groupcodes import selectors as groupcode_selectors
from siyu.channels.models import DefaultWelcome, GroupCode

pytestmark = pytest.mark.django_db


def test_save_replaces_and_delete_removes():
    first = services.save_default_welcome("你好", userid="zhangsan")
    again = services.save_default_welcome("您好", userid="zhangsan")
    dept = services.save_default_welcome("欢迎", department_id=3)
    assert first.id == again.id and DefaultWelcome.objects.count() == 2
    assert again.welcome == {"text": "您好", "attachments": []}
    assert [r.id for r in selectors.default_welcomes()] == [dept.id, first.id]
    assert services.welcome_for(None, "zhangsan") == (again.welcome, "employee")
    assert services.delete_default_welcomes([first.id, 10**9]) == 1
    assert [r.id for r in selectors.default_welcomes()] == [dept.id]


def test_group_code_selectors():
    assert groupcode_selectors.group_codes() == [] and not groupcode_selectors.any_live()
    GroupCode.objects.create(name="a", chat_ids=["c1"])
    assert not groupcode_selectors.any_live()
    GroupCode.objects.create(name="b", chat_ids=["c2"], config_id="cfg")
    assert groupcode_selectors.any_live() and len(groupcode_selectors.group_codes()) == 2
