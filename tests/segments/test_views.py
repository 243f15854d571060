"""The segment console: the builder and its live count, saving (and refusing bad definitions as
form errors), the one-click segment, the list, the detail with its members, exports, archive, the
viewer's scope and hostile names. Real database, the console through Django's test client."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from openpyxl import load_workbook

from siyu.accounts.models import Profile as Account
from siyu.accounts.selectors import DataScope
from siyu.customers.models import FollowRelation, Tag
from siyu.org.models import Employee
from siyu.profiles.models import CustomField, Profile
from siyu.segments import services
from siyu.segments.models import Segment, SegmentCount
from tests.helpers import client_for, make_user
from tests.segments import world

EVERYTHING = DataScope(everything=True)


@pytest.fixture
def w(db):
    return world.build(seed=5, persons=40)


def tag_def(tag_ids, op="any"):
    return {"op": "and", "items": [{"field": "tag", "op": op, "value": tag_ids}]}


def post_count(client, definition):
    raw = definition if isinstance(definition, str) else json.dumps(definition)
    return client.post("/segments/count/", {"definition": raw})


def test_builder_renders_catalog_pickers_and_prefill(w, admin_client):
    r = admin_client.get("/segments/new/?rfm_class=important_value&stage=loyal&stage=bogus")
    assert r.status_code == 200
    html = r.content.decode()
    assert 'id="segment-catalog"' in html and 'id="segment-strings"' in html
    for src in ("tags", "employees", "departments", "channels", "groups"):
        assert f'data-picker-template="{src}"' in html
    assert "segments/builder.js" in html
    assert "<script>" not in html.replace('<script src="', "")  # no inline script (CSP)
    definition = json.loads(r.context["form"]["definition"].value())
    assert definition == {
        "op": "and",
        "items": [
            {"field": "rfm_class", "op": "in", "value": ["important_value"]},
            {"field": "stage", "op": "in", "value": ["loyal"]},
        ],
    }
    catalog = r.context["catalog"]
    # every field of the grammar has an entry, custom fields included
    from siyu.segments.grammar import FIELD_OPS

    for name, ops in FIELD_OPS.items():
        assert {o["op"] for o in catalog["fields"][name]["ops"]} == set(ops), name
    assert "custom.size" in catalog["fields"]


def test_count_endpoint_answers_persons_and_wecom_friends(w, admin_client):
    d = tag_def([w.tags[0], w.tags[1]])
    r = post_count(admin_client, d)
    assert r.status_code == 200, r.content
    data = r.json()
    assert data["ok"] is True
    assert data["persons"] == services.count(d, EVERYTHING) > 0
    active = {"op": "and", "items": [d, {"field": "relation", "op": "eq", "value": "active"}]}
    assert data["customers"] == services.count(active, EVERYTHING)
    assert data["customers"] <= data["persons"]
    assert data["ms"] >= 0
    # nested AND/OR with NOT changes the count
    nested = {
        "op": "and",
        "items": [
            {"field": "tag", "op": "any", "value": [w.tags[0]]},
            {
                "op": "or",
                "not": True,
                "items": [
                    {"field": "stage", "op": "in", "value": ["loyal"]},
                    {"field": "order_count", "op": "gte", "value": 2, "days": 365},
                ],
            },
        ],
    }
    assert post_count(admin_client, nested).json()["persons"] == services.count(nested, EVERYTHING)


@pytest.mark.parametrize(
    "bad",
    [
        "{not json",
        "[1, 2]",
        json.dumps({"op": "xor", "items": []}),
        json.dumps({"op": "and", "items": [{"field": "tag", "op": "any", "value": []}]}),
        json.dumps({"op": "and", "items": [{"field": "nope", "op": "in", "value": [1]}]}),
        json.dumps({"op": "and", "items": [{"field": "tag", "op": "any", "value": ["<script>"]}]}),
        "x" * 60_000,
    ],
)
def test_count_endpoint_refuses_bad_definitions_with_a_message(w, admin_client, bad):
    r = post_count(admin_client, bad)
    assert r.status_code == 400
    assert r.json()["ok"] is False and r.json()["error"]


def test_count_needs_post_and_a_role(w, admin_client, client):
    assert admin_client.get("/segments/count/").status_code == 405
    r = client.post("/segments/count/", {"definition": "{}"})
    assert r.status_code in (302, 403)


def test_save_edit_and_history(w, admin, admin_client):
    d = tag_def([w.tags[0]])
    r = admin_client.post("/segments/new/", {"name": "老客", "description": "说明", "definition": json.dumps(d)})
    assert r.status_code == 302
    s = Segment.objects.get(name="老客")
    assert r["Location"] == f"/segments/{s.id}/"
    assert s.definition == d and s.created_by == admin
    assert s.count == services.count(d, EVERYTHING)
    assert SegmentCount.objects.filter(segment=s).count() == 1
    # edit: the builder shows it, saving records a new count
    r = admin_client.get(f"/segments/{s.id}/edit/")
    assert r.status_code == 200 and json.loads(r.context["form"]["definition"].value()) == d
    d2 = tag_def([w.tags[0], w.tags[2]])
    r = admin_client.post(f"/segments/{s.id}/edit/", {"name": "老客2", "definition": json.dumps(d2)})
    assert r.status_code == 302
    s.refresh_from_db()
    assert s.name == "老客2" and s.definition == d2
    assert SegmentCount.objects.filter(segment=s).count() == 2
    r = admin_client.post(f"/segments/{s.id}/recount/")
    assert r.status_code == 302 and SegmentCount.objects.filter(segment=s).count() == 3
    r = admin_client.get(f"/segments/{s.id}/")
    assert 'data-testid="segment-chart"' in r.content.decode()


@pytest.mark.parametrize(
    "post",
    [
        {"name": "", "definition": json.dumps({"op": "and", "items": []})},
        {"name": "坏", "definition": "{oops"},
        {"name": "坏", "definition": json.dumps({"op": "and", "items": [{"field": "stage", "op": "in"}]})},
        {
            "name": "坏",
            "definition": json.dumps({"op": "and", "items": [{"field": "tag", "op": "any", "value": [999999]}]}),
        },
        {"name": "x" * 65, "definition": "{}"},
    ],
)
def test_bad_definitions_are_form_errors_not_500(w, admin_client, post):
    r = admin_client.post("/segments/new/", post)
    assert r.status_code == 400
    assert 'data-testid="form-errors"' in r.content.decode()
    assert not Segment.objects.exists()


def test_quick_create_from_rfm_class_and_stage(w, admin_client):
    r = admin_client.post("/segments/quick/", {"rfm_class": "important_value"})
    s = Segment.objects.get()
    assert r.status_code == 302 and r["Location"] == f"/segments/{s.id}/"
    assert s.name == "重要价值"
    assert s.definition == {"op": "and", "items": [{"field": "rfm_class", "op": "in", "value": ["important_value"]}]}
    r = admin_client.post("/segments/quick/", {"stage": "loyal"})
    assert Segment.objects.filter(name="忠诚客").exists()
    for bad in ({}, {"stage": "nope"}, {"rfm_class": "important_value", "stage": "loyal"}):
        r = admin_client.post("/segments/quick/", bad)
        assert r.status_code == 302 and r["Location"] == "/segments/"
    assert Segment.objects.count() == 2
    assert admin_client.get("/segments/quick/").status_code == 405


def test_list_detail_members_and_description_name_things(w, admin_client):
    Tag.objects.filter(id=w.tags[0]).update(name="钻石会员")
    Employee.objects.filter(id=w.employees[0]).update(name="王导购")
    tag = Tag.objects.get(id=w.tags[0])
    d = {
        "op": "and",
        "items": [
            {"field": "tag", "op": "any", "value": [tag.id]},
            {"field": "employee", "op": "any", "value": [w.employees[0]]},
            {"field": "stage", "op": "in", "value": ["loyal", "new"]},
        ],
    }
    s = services.save_segment("会员", tag_def([tag.id]))
    services.update_segment(s, definition=d)
    r = admin_client.get("/segments/")
    assert r.status_code == 200 and "会员" in r.content.decode()
    r = admin_client.get(f"/segments/{s.id}/")
    html = r.content.decode()
    desc = r.context["description"]
    assert desc == f"标签 包含任一 {tag.name} 且 跟进员工 包含任一 王导购 且 生命周期阶段 属于 忠诚客、新客"
    members = r.context["members"]
    assert [m["profile_id"] for m in members] == services.person_ids(d, EVERYTHING)[:50]
    for m in members:
        assert f'href="/profiles/{m["profile_id"]}/"' in html


def test_member_pages_are_keyset(w, admin_client):
    d = {"op": "and", "items": []}  # everyone
    s = services.save_segment("全部", d)
    everyone = services.person_ids(d, EVERYTHING)
    assert len(everyone) > 30
    from siyu.segments import views

    seen: list[int] = []
    url = f"/segments/{s.id}/"
    old = views.selectors.member_page

    def small(definition, scope, after=None, limit=50, now=None):
        return old(definition, scope, after=after, limit=min(limit, 15), now=now)

    views.selectors.member_page = small
    try:
        while url:
            r = admin_client.get(url)
            seen += [m["profile_id"] for m in r.context["members"]]
            nxt = r.context["next_after"]
            url = f"/segments/{s.id}/?after={nxt}" if nxt else ""
    finally:
        views.selectors.member_page = old
    assert seen == everyone
    assert admin_client.get(f"/segments/{s.id}/?after=junk").status_code == 200


def test_exports_are_spreadsheet_safe(w, admin_client):
    p = Profile.objects.filter(merged_into__isnull=True).order_by("id").first()
    Profile.objects.filter(id=p.id).update(name='=HYPERLINK("http://x")', member_level="+1")
    s = services.save_segment("导出", {"op": "and", "items": []})
    r = admin_client.get(f"/segments/{s.id}/export.csv")
    assert r.status_code == 200
    text = b"".join(r.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][0] == "姓名"
    assert len(rows) - 1 == services.count({"op": "and", "items": []}, EVERYTHING)
    hostile = next(row for row in rows if "HYPERLINK" in row[0])
    assert hostile[0].startswith("'=") and hostile[2] == "'+1"
    r = admin_client.get(f"/segments/{s.id}/export.xlsx")
    assert r.status_code == 200
    ws = load_workbook(io.BytesIO(r.content)).active
    values = [c.value for c in ws["A"]]
    assert any(str(v).startswith("'=") for v in values)
    assert admin_client.get(f"/segments/{s.id}/export.pdf").status_code == 404


def test_archive_and_restore(w, admin_client):
    s = services.save_segment("旧", {"op": "and", "items": []})
    admin_client.post(f"/segments/{s.id}/archive/")
    s.refresh_from_db()
    assert s.archived
    assert "旧" not in admin_client.get("/segments/").content.decode()
    assert "旧" in admin_client.get("/segments/?archived=1").content.decode()
    admin_client.post(f"/segments/{s.id}/archive/", {"restore": "1"})
    s.refresh_from_db()
    assert not s.archived


def test_scope_guides_see_their_own_segments_and_members_in_scope(w, admin_client):
    emp = w.employees[0]
    guide = make_user("guide1", Account.GUIDE, wecom_userid=w.employee_userids[emp])
    gc = client_for(guide)
    theirs = services.save_segment("管理员的", {"op": "and", "items": []})
    assert gc.get(f"/segments/{theirs.id}/").status_code == 404
    assert gc.get(f"/segments/{theirs.id}/export.csv").status_code == 404
    assert "管理员的" not in gc.get("/segments/").content.decode()
    # the guide's own segment: members only among the customers followed by the guide
    r = gc.post("/segments/new/", {"name": "我的", "definition": json.dumps({"op": "and", "items": []})})
    assert r.status_code == 302
    mine = Segment.objects.get(name="我的")
    r = gc.get(f"/segments/{mine.id}/")
    ids = {m["profile_id"] for m in r.context["members"]}
    everyone = {"op": "and", "items": []}
    scope = DataScope(wecom_userid=w.employee_userids[emp])
    assert r.context["persons"] == services.count(everyone, scope)
    assert 0 < r.context["persons"] < services.count(everyone, EVERYTHING)
    assert ids <= set(services.person_ids(everyone, scope))
    # the stored count is over everyone: not shown to a scoped viewer
    assert gc.get("/segments/").context["counts"] is False
    # an employee outside the guide's scope is refused, by name
    other = {"op": "and", "items": [{"field": "employee", "op": "any", "value": [w.employees[1]]}]}
    r = post_count(gc, other)
    assert r.status_code == 400 and "员工" in r.json()["error"]
    assert post_count(admin_client, other).status_code == 200
    # the picker search answers only the guide's own segments
    names = [i["label"] for i in gc.get("/segments/pick/?q=").json()["items"]]
    assert names == ["我的"]
    names = [i["label"] for i in admin_client.get("/segments/pick/?q=管理").json()["items"]]
    assert names == ["管理员的"]


def test_hostile_names_are_escaped(w, admin_client):
    Tag.objects.filter(id=w.tags[0]).update(name="<img src=x onerror=alert(1)>")
    Profile.objects.update(name="<script>alert(1)</script>")
    s = services.save_segment("<b>坏名字</b>", tag_def([w.tags[0]]))
    for url in ("/segments/", f"/segments/{s.id}/", f"/segments/{s.id}/edit/"):
        html = admin_client.get(url).content.decode()
        assert "<b>坏名字</b>" not in html
        assert "<script>alert(1)</script>" not in html
        assert "<img src=x" not in html
    html = admin_client.get(f"/segments/{s.id}/").content.decode()
    assert "&lt;b&gt;坏名字&lt;/b&gt;" in html and "&lt;img src=x" in html


def test_menu_lists_the_segments_page(w, admin_client):
    html = admin_client.get("/segments/").content.decode()
    assert 'href="/segments/"' in html and "客户分群" in html


def test_active_relations_count_as_wecom_friends(w, admin_client):
    d = {"op": "and", "items": [{"field": "relation", "op": "eq", "value": "none"}]}
    data = post_count(admin_client, d).json()
    assert data["persons"] > 0 and data["customers"] == 0
    assert FollowRelation.objects.exists()


def test_english_pages_have_no_chinese_left(w, admin):
    from siyu.org.models import Department
    from tests.helpers import CJK, text_without_switcher

    Profile.objects.update(name="Ann")
    Tag.objects.update(name="vip")
    Employee.objects.update(name="Bob")
    Department.objects.update(name="Store")
    CustomField.objects.filter(key="likes").update(options=["red", "blue"])
    c = client_for(admin, language="en")
    d = {
        "op": "and",
        "items": [
            {"field": "tag", "op": "any", "value": [w.tags[0]]},
            {"op": "or", "not": True, "items": [{"field": "stage", "op": "in", "value": ["loyal"]}]},
            {"field": "event", "type": "coupon_claimed", "op": "gte", "value": 1, "days": 30},
        ],
    }
    s = services.save_segment("Loyal", d)
    for url in (
        "/segments/",
        "/segments/new/",
        f"/segments/{s.id}/",
        f"/segments/{s.id}/edit/",
        "/segments/?archived=1",
    ):
        r = c.get(url)
        assert r.status_code == 200, url
        # the sidebar is other parts' menu entries: the page's own text is checked
        html = re.sub(r'<aside class="sidebar".*?</aside>', "", r.content.decode(), flags=re.DOTALL)
        leftovers = CJK.findall(text_without_switcher(html))
        assert not leftovers, f"{url}: untranslated {''.join(leftovers)!r}"
    r = c.get(f"/segments/{s.id}/")
    assert r.context["description"] == (
        "Tag has any of vip and NOT Lifecycle stage is one of Loyal"
        " and in the last 30 days Claimed a coupon at least 1 times"
    )
    r = c.get("/segments/new/")
    assert r.context["strings"]["add_condition"] == "+ Condition"
    assert not CJK.findall(json.dumps(r.context["catalog"], ensure_ascii=False))
    r = c.post("/segments/count/", {"definition": "{oops"})
    assert not CJK.findall(r.json()["error"])
