"""Fast layer (no emulator): the tag and channel pickers' searches, and channels shown by name on
the customer page and in exports (the channel filter finds a channel by its name)."""

from __future__ import annotations

import csv
import io

import pytest
from django.utils import timezone

from siyu.accounts.selectors import DataScope
from siyu.channels import selectors as channel_selectors
from siyu.channels.models import ChannelCode
from siyu.customers import selectors
from siyu.customers.models import Customer, FollowRelation, Tag, TagGroup
from siyu.customers.tags import selectors as tag_selectors
from tests.helpers import client_for, make_user, org_tree

pytestmark = pytest.mark.django_db

EVERYTHING = DataScope(everything=True)


def test_tag_search_grouped_by_tag_group_and_bounded():
    vip = TagGroup.objects.create(group_id="g1", name="会员等级", order=10)
    src = TagGroup.objects.create(group_id="g2", name="来源", order=20)
    Tag.objects.create(tag_id="t1", group=vip, name="金卡")
    Tag.objects.create(tag_id="t2", group=vip, name="银卡")
    Tag.objects.create(tag_id="t3", group=src, name="门店")
    Tag.objects.create(tag_id="t4", group=src, name="旧卡", deleted=True)
    rows, more = tag_selectors.search_tags("")
    assert [(r["group"], r["label"]) for r in rows] == [("来源", "门店"), ("会员等级", "金卡"), ("会员等级", "银卡")]
    assert not more
    assert [r["label"] for r in tag_selectors.search_tags("卡")[0]] == ["金卡", "银卡"]  # never a deleted one
    assert [r["label"] for r in tag_selectors.search_tags("会员")[0]] == ["金卡", "银卡"]  # by the group's name
    assert tag_selectors.search_tags("金", by="tag_id")[0][0]["value"] == "t1"
    rows, more = tag_selectors.search_tags("", limit=2)
    assert len(rows) == 2 and more
    assert set(tag_selectors.tag_items(["t1", "t4", "nope"], by="tag_id")) == {"t1"}


def _code(name, users, **kw):
    return ChannelCode.objects.create(name=name, users=users, **kw)


def test_channel_search_and_names_by_state_within_scope():
    org_tree()
    east = _code("东区海报", ["east"], folder="门店")
    west = _code("西区直播", ["west"])
    gone = _code("旧活动", ["east"], enabled=False)
    rows, _more = channel_selectors.search_codes(EVERYTHING, "")
    assert {r["label"] for r in rows} == {"东区海报", "西区直播"}  # deleted codes are not offered
    assert [r["value"] for r in channel_selectors.search_codes(EVERYTHING, "直播")[0]] == [west.state]
    assert [r["label"] for r in channel_selectors.search_codes(EVERYTHING, "门店")[0]] == ["东区海报"]  # folder
    manager = DataScope(department_id=2)
    assert [r["label"] for r in channel_selectors.search_codes(manager, "")[0]] == ["东区海报"]
    assert set(channel_selectors.code_items([east.state, west.state, "ch:x", "other"], manager)) == {east.state}
    assert channel_selectors.names_by_state([east.state, gone.state, "ch_pkgcard_01", ""]) == {
        east.state: "东区海报",
        gone.state: "旧活动",  # a deleted code's customers keep its name
    }


def test_customer_page_and_export_show_the_channel_by_name_and_filter_by_it():
    people = org_tree()
    code = _code("春季<b>海报</b>", ["east"])
    other = _code("直播", ["east"])
    now = timezone.now()
    for i, state in enumerate([code.state, other.state, "ch_pkgcard_01"]):
        c = Customer.objects.create(external_userid=f"wm{i}", name=f"客户{i}", first_added_at=now)
        FollowRelation.objects.create(customer=c, employee=people["east"], state=state, added_at=now)
    admin = client_for(make_user("admin", "admin"))
    first = Customer.objects.get(external_userid="wm0")
    body = admin.get(f"/customers/{first.id}/").content.decode()
    assert "春季&lt;b&gt;海报&lt;/b&gt;" in body and code.state not in body
    third = Customer.objects.get(external_userid="wm2")
    assert "ch_pkgcard_01" in admin.get(f"/customers/{third.id}/").content.decode()  # no code: as it came
    r = admin.get("/customers/export.csv", {"state": code.state})
    rows = list(csv.reader(io.StringIO(b"".join(r.streaming_content).decode("utf-8-sig"))))
    assert len(rows) == 2 and "春季<b>海报</b>" in rows[1]
    # the filter's picker shows the chosen channel by name; a forged state is a form error, not a 500
    r = admin.get("/customers/", {"state": code.state})
    assert r.status_code == 200 and "春季&lt;b&gt;海报&lt;/b&gt;" in r.content.decode()
    assert [x["customer"].id for x in r.context["rows"]] == [first.id]
    assert 'data-testid="row-channel">春季&lt;b&gt;海报&lt;/b&gt;<' in r.content.decode()  # the list names it too
    r = admin.get("/customers/", {"state": "ch:999999"})
    assert r.status_code == 200 and "filter-error" in r.content.decode()
    assert selectors.channel_names([code.state]) == {code.state: code.name}
