"""REST for segments: count without saving, create / update / list / get / archive, members in
cursor pages, export; scoped by the caller's role; bad definitions answer 422 with the problems."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.test import Client
from openpyxl import load_workbook

from siyu.accounts import services as accounts
from siyu.accounts.models import Profile as Account
from siyu.accounts.selectors import DataScope
from siyu.segments import services, sqlcompile
from siyu.segments.grammar import parse
from siyu.segments.models import Segment, SegmentCount
from tests.segments import world as W

API = "/api/v1"
PASSWORD = "s3cret-pass-word"


class Api:
    def __init__(self, username: str, role: str, **binding):
        user, _ = accounts.ensure_user(username, PASSWORD, role=role, **binding)
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {accounts.create_api_token(user, 'test')[1]}"}

    def get(self, path: str, **params):
        return self.client.get(API + path, params, headers=self.headers)

    def post(self, path: str, body: dict):
        return self.client.post(API + path, json.dumps(body), content_type="application/json", headers=self.headers)

    def patch(self, path: str, body: dict):
        return self.client.patch(API + path, json.dumps(body), content_type="application/json", headers=self.headers)


@pytest.fixture
def world(db):
    return W.build(seed=3, persons=40)


EVERYONE = {"op": "and", "items": []}
BOUGHT = {
    "op": "or",
    "items": [{"field": "bought", "op": "category", "value": ["戒指"]}, {"field": "tag", "op": "any", "value": [1, 2]}],
}


def test_count_without_saving_is_the_sql_count_and_scoped(world):
    admin = Api("seg-admin", Account.ADMIN)
    r = admin.post("/segments/count", {"definition": BOUGHT})
    assert r.status_code == 200, r.content
    everything = sqlcompile.sql_count(parse(BOUGHT), DataScope(everything=True))
    assert r.json()["count"] == everything
    guide = Api("seg-guide", Account.GUIDE, wecom_userid="emp2")
    mine = guide.post("/segments/count", {"definition": BOUGHT}).json()["count"]
    assert mine == sqlcompile.sql_count(parse(BOUGHT), DataScope(wecom_userid="emp2")) < everything


def test_bad_definitions_answer_422_with_the_problems(world):
    admin = Api("seg-admin", Account.ADMIN)
    r = admin.post(
        "/segments/count", {"definition": {"op": "and", "items": [{"field": "tag", "op": "any", "value": []}]}}
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["path"] == "items.0.value"
    r = admin.post("/segments/count", {"definition": {"op": "nand", "items": []}})
    assert r.status_code == 422  # the schema's own check
    r = admin.post(
        "/segments",
        {"name": "x", "definition": {"op": "and", "items": [{"field": "stage", "op": "in", "value": ["vip"]}]}},
    )
    assert r.status_code == 422 and not Segment.objects.exists()


def test_segment_lifecycle_members_and_export(world):
    admin = Api("seg-admin", Account.ADMIN)
    r = admin.post("/segments", {"name": "买过戒指或有标签", "definition": BOUGHT})
    assert r.status_code == 201, r.content
    seg = r.json()
    expected = sqlcompile.sql_person_ids(parse(BOUGHT), DataScope(everything=True))
    assert seg["count"] == len(expected) and SegmentCount.objects.filter(segment_id=seg["id"]).count() == 1
    # members in cursor pages
    got, after = [], None
    while True:
        params = {"limit": 7} | ({"after": after} if after is not None else {})
        page = admin.get(f"/segments/{seg['id']}/members", **params).json()
        got += [m["id"] for m in page["items"]]
        after = page["next_cursor"]
        if after is None:
            break
    assert got == expected
    # export: CSV and XLSX, a header and one row per member
    r = admin.get(f"/segments/{seg['id']}/export", format="csv")
    rows = list(csv.reader(io.StringIO(b"".join(r.streaming_content).decode("utf-8-sig"))))
    assert [int(x[0]) for x in rows[1:]] == expected
    r = admin.get(f"/segments/{seg['id']}/export", format="xlsx")
    sheet = load_workbook(io.BytesIO(r.content)).active
    assert sheet.max_row == len(expected) + 1
    assert admin.get(f"/segments/{seg['id']}/export", format="pdf").status_code == 422
    # update: a new count recorded; list; archive
    r = admin.patch(f"/segments/{seg['id']}", {"definition": EVERYONE})
    assert r.status_code == 200 and r.json()["count"] == len(
        sqlcompile.sql_person_ids(parse(EVERYONE), DataScope(everything=True))
    )
    assert SegmentCount.objects.filter(segment_id=seg["id"]).count() == 2
    assert [s["id"] for s in admin.get("/segments").json()["items"]] == [seg["id"]]
    assert admin.post(f"/segments/{seg['id']}/archive", {}).json()["archived"] is True
    assert admin.get("/segments").json()["items"] == []
    assert admin.get("/segments/999999").status_code == 404


def test_guides_count_but_do_not_edit(world):
    guide = Api("seg-guide", Account.GUIDE, wecom_userid="emp1")
    assert guide.post("/segments", {"name": "x", "definition": EVERYONE}).status_code == 403
    user = accounts.ensure_user("seg-guide", PASSWORD, role=Account.GUIDE, wecom_userid="emp1")[0]
    seg = services.save_segment("全部", EVERYONE, user=user)
    page = guide.get(f"/segments/{seg.pk}/members", limit=500).json()
    mine = sqlcompile.sql_person_ids(parse(EVERYONE), DataScope(wecom_userid="emp1"))
    assert [m["id"] for m in page["items"]] == mine
    # the recorded count is over every person: a scoped caller gets null, and counts in its scope
    assert seg.count > len(mine)
    assert guide.get(f"/segments/{seg.pk}").json()["count"] is None
    assert [s["count"] for s in guide.get("/segments").json()["items"]] == [None]
    assert guide.post("/segments/count", {"definition": EVERYONE}).json()["count"] == len(mine)
    # someone else's segment: not there for a guide (the console's rule)
    other = services.save_segment("别人的", EVERYONE)
    assert guide.get(f"/segments/{other.pk}").status_code == 404
    assert guide.get(f"/segments/{other.pk}/members").status_code == 404


def test_openapi_documents_the_definition_grammar(db):
    schema = Client().get(f"{API}/openapi.json").json()
    assert "/api/v1/segments/count" in schema["paths"]
    names = schema["components"]["schemas"]
    assert "GroupSchema" in names and "ConditionSchema" in names
    assert "birthday_within_days" in names["ConditionSchema"]["description"]


HOSTILE = [
    {"op": "and", "items": [{"field": "tag", "op": "any", "value": [2**70]}]},
    {"op": "and", "items": [{"field": "profile.points", "op": "gte", "value": 2**80}]},
    {"op": "and", "items": [{"field": "amount_spent", "op": "gte", "value": "1e400"}]},
    {"op": "and", "items": [{"field": "amount_spent", "op": "gte", "value": "NaN"}]},
    {"op": "and", "items": [{"field": "custom.x", "op": "eq", "value": {"a": 1}}]},
    {"op": "and", "items": [{"field": "added_at", "op": "between", "value": ["9999-12-31", "9999-12-31"]}]},
    {"op": "and", "items": [{"field": "channel", "op": "any", "value": ["\x00"]}]},
    {"op": "and", "items": [{"field": "event", "type": "x" * 500, "op": "gte", "value": 1}]},
    {"op": "and", "items": [{"field": "last_order_at", "op": "within_days", "value": 10**12}]},
    {"op": "and", "items": [{"field": "group", "op": "any", "value": [None]}]},
]


def test_hostile_definitions_never_answer_500(world):
    admin = Api("seg-admin", Account.ADMIN)
    deep: dict = {"op": "and", "items": []}
    for _ in range(60):
        deep = {"op": "or", "items": [deep]}
    for definition in [*HOSTILE, deep]:
        r = admin.post("/segments/count", {"definition": definition})
        assert r.status_code == 422, (definition, r.status_code, r.content[:300])
    assert admin.get("/segments/99999999999999999999").status_code in (404, 422)
    assert admin.get("/segments/1/members", after=2**70).status_code in (404, 422)
