"""Fast layer (no emulator): the group picker's search by group name, owner name and group tag,
scoped by role and bounded."""

from __future__ import annotations

import pytest

from siyu.accounts.selectors import DataScope
from siyu.groups import selectors, services
from siyu.groups.models import GroupChat
from tests.helpers import org_tree

pytestmark = pytest.mark.django_db

EVERYTHING = DataScope(everything=True)


@pytest.fixture
def world():
    people = org_tree()
    rows = {}
    for i, (owner, name, status) in enumerate(
        [
            ("store", "门店福利群", GroupChat.ACTIVE),
            ("west", "西区粉丝群", GroupChat.ACTIVE),
            ("store", "旧福利群", GroupChat.DISMISSED),
            ("east", "", GroupChat.ACTIVE),
        ]
    ):
        rows[name] = GroupChat.objects.create(
            chat_id=f"wr{i}", name=name, owner=people[owner], status=status, member_count=i + 3
        )
    return people, rows


def labels(rows):
    return [r["label"] for r in rows]


def test_by_name_owner_and_tag_newest_first(world):
    _people, rows = world
    assert labels(selectors.search_groups(EVERYTHING, "")[0]) == ["未命名群", "西区粉丝群", "门店福利群"]
    assert labels(selectors.search_groups(EVERYTHING, "福利")[0]) == ["门店福利群"]  # not the dismissed one
    assert labels(selectors.search_groups(EVERYTHING, "West")[0]) == ["西区粉丝群"]  # the owner's name
    tag = services.create_group_tag("高价值")
    services.set_group_tags(rows["门店福利群"], [tag.id])
    assert labels(selectors.search_groups(EVERYTHING, "高价")[0]) == ["门店福利群"]  # a group tag's name
    row = selectors.search_groups(EVERYTHING, "西区")[0][0]
    assert row["value"] == str(rows["西区粉丝群"].id) and "West" in row["sub"] and "4" in row["sub"]
    assert selectors.search_groups(EVERYTHING, "西区", by="chat_id")[0][0]["value"] == "wr1"


def test_scoped_and_bounded(world):
    people, _rows = world
    manager = DataScope(department_id=2)
    assert labels(selectors.search_groups(manager, "")[0]) == ["未命名群", "门店福利群"]
    assert selectors.search_groups(manager, "西区")[0] == []
    assert labels(selectors.search_groups(DataScope(wecom_userid="west"), "")[0]) == ["西区粉丝群"]
    for i in range(25):
        GroupChat.objects.create(chat_id=f"bulk{i}", name=f"福利{i}", owner=people["boss"])
    found, more = selectors.search_groups(EVERYTHING, "福利", limit=20)
    assert len(found) == 20 and more and found[0]["label"] == "福利24"


def test_items_name_the_values_in_scope_only(world):
    _people, rows = world
    manager = DataScope(department_id=2)
    ids = [str(g.id) for g in rows.values()] + ["0", "x"]
    assert set(selectors.group_items(ids, manager)) == {str(rows[n].id) for n in ("门店福利群", "旧福利群", "")}
    assert set(selectors.group_items(["wr0", "wr1", "nope"], manager, by="chat_id")) == {"wr0"}
    assert selectors.names_by_chat(["wr0", "wr1", "nope"]) == {"wr0": "门店福利群", "wr1": "西区粉丝群"}
