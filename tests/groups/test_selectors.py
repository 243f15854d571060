"""Fast layer (no emulator): which customer groups each scope sees, the list's filters and the
detail's out-of-scope answer, on groups written straight into the database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from siyu.accounts.selectors import DataScope
from siyu.groups import selectors
from siyu.groups.models import GroupChat
from tests.helpers import org_tree

pytestmark = pytest.mark.django_db

EVERYTHING = DataScope(everything=True)


@pytest.fixture
def chats():
    people = org_tree()
    now = timezone.now()
    rows = {}
    for i, (owner, name, status) in enumerate(
        [
            ("store", "门店福利群", GroupChat.ACTIVE),
            ("west", "西区粉丝群", GroupChat.ACTIVE),
            ("store", "旧群", GroupChat.DISMISSED),
        ]
    ):
        rows[name] = GroupChat.objects.create(
            chat_id=f"wr{i}", name=name, owner=people[owner], status=status, created_at=now - timedelta(days=i)
        )
    return rows


def test_no_group_count_before_the_groups_are_synced():
    assert selectors.group_count(EVERYTHING) is None


def test_each_scope_sees_the_groups_of_its_employees(chats):
    assert selectors.group_count(EVERYTHING) == 2  # dismissed groups are not counted
    assert selectors.group_count(DataScope(department_id=2)) == 1
    assert selectors.group_count(DataScope(wecom_userid="west")) == 1
    assert selectors.group_count(DataScope()) == 0
    east = {g.name for g in selectors.groups_for_scope(DataScope(department_id=2))}
    assert east == {"门店福利群", "旧群"}
    assert [e.userid for e in selectors.group_owners(EVERYTHING)] == ["store", "west"]


def test_the_group_list_filters_newest_first(chats):
    assert [g.name for g in selectors.group_list(EVERYTHING)] == ["门店福利群", "西区粉丝群", "旧群"]
    assert [g.name for g in selectors.group_list(EVERYTHING, status=GroupChat.DISMISSED)] == ["旧群"]
    assert [g.name for g in selectors.group_list(EVERYTHING, status="no-such-status")] == [
        "门店福利群",
        "西区粉丝群",
        "旧群",
    ]
    assert [g.name for g in selectors.group_list(EVERYTHING, q="粉丝")] == ["西区粉丝群"]
    assert [g.name for g in selectors.group_list(EVERYTHING, department_id=4)] == ["西区粉丝群"]
    assert [g.name for g in selectors.group_list(DataScope(wecom_userid="west"), department_id=2)] == []


def test_a_group_outside_the_scope_is_told_apart_from_a_missing_one(chats):
    mine = chats["西区粉丝群"]
    guide = DataScope(wecom_userid="west")
    assert selectors.group_detail(guide, mine.id) == mine
    with pytest.raises(selectors.OutOfScope):
        selectors.group_detail(guide, chats["门店福利群"].id)
    assert selectors.group_detail(guide, 10**9) is None
