"""The REST API (/api/v1/): token and session auth, data scope per role, the customer list's
filters and cursor pages, bulk tagging reaching the emulator, tag changes through WeCom, groups,
employees, the OpenAPI schema and hostile nicknames coming back as plain JSON strings.

The product's database is filled once per module by a real full sync from the session emulator
(300 customers, seed 7), committed; each test then runs in its own rolled-back transaction.
"""

from __future__ import annotations

import hashlib
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Count
from django.test import Client

from siyu.accounts import services as accounts
from siyu.accounts.models import ApiToken, Profile
from siyu.customers.models import Customer, FollowRelation, FollowTag, Tag
from siyu.groups.models import GroupChat
from siyu.org.models import Department, Employee, EmployeeDepartment
from tests.conftest import point_product_at

API = "/api/v1"
PASSWORD = "api-test-pass-word"


@pytest.fixture(scope="module")
def synced(sim, django_db_setup, django_db_blocker):
    """The product synced from the emulator, committed for the module; flushed afterwards."""
    from siyu.sync.services import run_full_sync
    from siyu.wecom import config

    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)
        point_product_at(sim)
        run = run_full_sync(workers=4)
        assert run.status == "done", run.error
    yield sim
    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)
        config.invalidate()


@pytest.fixture
def world(synced, db):
    """The synced product, with the WeCom settings pointing at the emulator (per test)."""
    point_product_at(synced)
    return synced


def user_with(username: str, role: str, **binding):
    user, _ = accounts.ensure_user(username, PASSWORD, role=role, **binding)
    return user


def token_for(user, name: str = "test") -> str:
    return accounts.create_api_token(user, name)[1]


class Api:
    """The test client speaking to /api/v1 with a bearer token."""

    def __init__(self, token: str | None):
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path: str, **params):
        return self.client.get(API + path, params, headers=self.headers)

    def post(self, path: str, body: dict):
        return self.client.post(API + path, json.dumps(body), content_type="application/json", headers=self.headers)

    def patch(self, path: str, body: dict):
        return self.client.patch(API + path, json.dumps(body), content_type="application/json", headers=self.headers)

    def delete(self, path: str):
        return self.client.delete(API + path, headers=self.headers)


@pytest.fixture
def admin_api(world):
    return Api(token_for(user_with("api-admin", Profile.ADMIN)))


def busiest_employee() -> Employee:
    eid = (
        FollowRelation.objects.filter(status=FollowRelation.ACTIVE)
        .values("employee_id")
        .annotate(n=Count("id"))
        .order_by("-n")
        .first()["employee_id"]
    )
    return Employee.objects.get(id=eid)


def all_pages(api: Api, **params) -> list[dict]:
    items, cursor = [], None
    while True:
        q = dict(params, **({"cursor": cursor} if cursor else {}))
        r = api.get("/customers", **q)
        assert r.status_code == 200, r.content
        body = r.json()
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if not cursor:
            return items


# --- auth ----------------------------------------------------------------------------------------
def test_token_missing_invalid_revoked_are_401(world):
    user = user_with("api-op", Profile.OPERATOR)
    row, token = accounts.create_api_token(user, "crm")
    assert Api(None).get("/me").status_code == 401
    r = Api("siyu_not-a-real-token").get("/customers")
    assert r.status_code == 401 and r["WWW-Authenticate"].startswith("Bearer")
    assert Api("garbage").get("/customers").status_code == 401
    ok = Api(token).get("/me")
    assert ok.status_code == 200
    assert ok.json() == {
        "username": "api-op",
        "role": "operator",
        "auth": "token",
        "scope": {"everything": True, "department_id": None, "wecom_userid": ""},
    }
    row.refresh_from_db()
    assert row.last_used_at is not None
    # only the SHA-256 is stored
    assert row.secret_hash == hashlib.sha256(token.encode()).hexdigest()
    assert not ApiToken.objects.filter(secret_hash=token).exists() and token not in row.prefix + row.name
    assert accounts.revoke_api_token(row.id)
    assert Api(token).get("/me").status_code == 401
    assert Api(token).post("/customers/bulk-tag", {"customer_ids": [1], "add_tag": ["x"]}).status_code == 401
    # a token whose owner lost their role (deactivated) stops working too
    other = token_for(user)
    user.is_active = False
    user.save()
    assert Api(other).get("/me").status_code == 401


def test_management_command_prints_token_once(world):
    user_with("cli-owner", Profile.OPERATOR)
    out, err = StringIO(), StringIO()
    call_command("apitoken", "create", "--user", "cli-owner", "--name", "ERP", stdout=out, stderr=err)
    token = out.getvalue().strip()
    assert token.startswith("siyu_") and "shown once" in err.getvalue()
    row = ApiToken.objects.get(name="ERP")
    assert row.secret_hash == hashlib.sha256(token.encode()).hexdigest()
    assert Api(token).get("/me").json()["username"] == "cli-owner"
    listing = StringIO()
    call_command("apitoken", "list", stdout=listing)
    assert "ERP" in listing.getvalue() and token not in listing.getvalue()
    call_command("apitoken", "revoke", str(row.id), stdout=StringIO())
    assert Api(token).get("/me").status_code == 401


def test_session_auth_with_csrf(world):
    user = user_with("api-session", Profile.ADMIN)
    c = Client(enforce_csrf_checks=True)
    c.force_login(user)
    r = c.get(API + "/me")
    assert r.status_code == 200 and r.json()["auth"] == "session"
    body = json.dumps({"customer_ids": [Customer.objects.first().id], "add_tag": ["no-such-tag"]})
    r = c.post(API + "/customers/bulk-tag", body, content_type="application/json")
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    c.get("/")  # the console page sets the csrftoken cookie
    csrf = c.cookies["csrftoken"].value
    r = c.post(API + "/customers/bulk-tag", body, content_type="application/json", headers={"X-CSRFToken": csrf})
    assert r.status_code == 422 and "no-such-tag" in r.json()["detail"]
    # a signed-in user without a role
    from django.contrib.auth import get_user_model

    nobody = get_user_model().objects.create_user("norole", password=PASSWORD)
    c2 = Client()
    c2.force_login(nobody)
    assert c2.get(API + "/me").status_code == 403


# --- scope -------------------------------------------------------------------------------------
def test_guide_sees_only_own_customers_and_gets_403_on_others(world):
    emp = busiest_employee()
    guide = Api(token_for(user_with("api-guide", Profile.GUIDE, wecom_userid=emp.userid)))
    mine = set(FollowRelation.objects.filter(employee=emp).values_list("customer_id", flat=True))
    items = all_pages(guide, limit=100)
    assert {c["id"] for c in items} == mine
    # every relation shown in the list is the guide's own
    assert {r["userid"] for c in items for r in c["relations"]} == {emp.userid}
    other = Customer.objects.exclude(id__in=mine).first()
    r = guide.get(f"/customers/{other.id}")
    assert r.status_code == 403
    assert guide.get("/customers/999999999").status_code == 404
    own = guide.get(f"/customers/{next(iter(mine))}")
    assert own.status_code == 200
    # bulk tagging another's customer is refused, nothing is written
    tag = Tag.objects.filter(deleted=False).first()
    r = guide.post("/customers/bulk-tag", {"customer_ids": [other.id], "add_tag": [tag.tag_id]})
    assert r.status_code == 403
    # groups: only the guide's own; another's group is 403
    groups = guide.get("/groups", limit=200).json()
    assert {g["owner_userid"] for g in groups["items"]} <= {emp.userid}
    foreign = GroupChat.objects.exclude(owner=emp).first()
    assert guide.get(f"/groups/{foreign.chat_id}").status_code == 403
    assert guide.get("/groups/no-such-chat").status_code == 404
    # employees: only themselves
    assert [e["userid"] for e in guide.get("/employees").json()] == [emp.userid]
    # tag changes are for admins and operators
    assert guide.post("/tags/groups", {"name": "导购组", "tags": ["a"]}).status_code == 403


def test_store_manager_sees_department_subtree(world):
    dept = (
        Department.objects.annotate(n=Count("memberships__employee__relations"))
        .filter(n__gt=0, depth__gt=0)
        .order_by("-depth", "-n")
        .first()
    )
    manager = Api(token_for(user_with("api-manager", Profile.STORE_MANAGER, department_id=dept.id)))
    staff = set(
        EmployeeDepartment.objects.filter(department__path__startswith=dept.path).values_list("employee_id", flat=True)
    )
    expected = set(FollowRelation.objects.filter(employee_id__in=staff).values_list("customer_id", flat=True))
    assert expected and len(expected) < Customer.objects.count()
    got = {c["id"] for c in all_pages(manager, limit=200)}
    assert got == expected
    outside = Customer.objects.exclude(id__in=expected).first()
    assert manager.get(f"/customers/{outside.id}").status_code == 403
    emps = {e["userid"] for e in manager.get("/employees", include_left=True).json()}
    assert emps == set(Employee.objects.filter(id__in=staff, placeholder=False).values_list("userid", flat=True))


# --- list: filters, pages, validation ----------------------------------------------------------
def test_filters_match_the_database(admin_api):
    counts = (
        FollowTag.objects.filter(tag__deleted=False)
        .values("tag_id")
        .annotate(n=Count("customer_id", distinct=True))
        .order_by("-n")
    )
    t1, t2 = (Tag.objects.get(id=c["tag_id"]) for c in counts[:2])
    with1 = set(FollowTag.objects.filter(tag=t1).values_list("customer_id", flat=True))
    with2 = set(FollowTag.objects.filter(tag=t2).values_list("customer_id", flat=True))
    every = set(Customer.objects.values_list("id", flat=True))

    def ids(**params):
        return {c["id"] for c in all_pages(admin_api, limit=200, **params)}

    assert ids(tag=[t1.tag_id, t2.tag_id]) == with1 | with2
    assert ids(tag=[t1.tag_id, t2.tag_id], tag_mode="all") == with1 & with2
    assert ids(tag=[t1.tag_id], tag_mode="none") == every - with1
    emp = busiest_employee()
    assert ids(employee=emp.userid) == set(
        FollowRelation.objects.filter(employee=emp).values_list("customer_id", flat=True)
    )
    assert ids(status="lost") == set(Customer.objects.filter(status=Customer.LOST).values_list("id", flat=True))
    assert (
        ids(employee=emp.userid, tag=[t1.tag_id], status="active")
        == set(
            FollowRelation.objects.filter(employee=emp, status=FollowRelation.ACTIVE).values_list(
                "customer_id", flat=True
            )
        )
        & with1
    )
    sample = Customer.objects.exclude(name="").order_by("id")[5]
    found = all_pages(admin_api, q=sample.name[:3].lower())
    assert sample.id in {c["id"] for c in found}
    r = admin_api.get("/customers", tag=[t1.tag_id], limit=5)
    body = r.json()
    assert body["count"] == len(with1) and not body["count_capped"]
    assert all(t1.tag_id in {t["tag_id"] for t in c["tags"]} for c in body["items"])


def test_cursor_pages_cover_everything_once(admin_api):
    for sort in ("-added", "added", "name", "-updated"):
        items = all_pages(admin_api, limit=37, sort=sort)
        ids = [c["id"] for c in items]
        assert len(ids) == len(set(ids)) == Customer.objects.count(), sort
    first = admin_api.get("/customers", limit=10, sort="-added").json()
    times = [c["first_added_at"] for c in first["items"]]
    assert times == sorted(times, reverse=True)
    r = admin_api.get("/customers", cursor="not-a-cursor")
    assert r.status_code == 400 and "cursor" in r.json()["detail"]


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1000}, "limit"),
        ({"status": "gone"}, "status"),
        ({"tag_mode": "some"}, "tag_mode"),
        ({"added_from": "2024-13-45"}, "added_from"),
        ({"sort": "id; DROP"}, "sort"),
    ],
)
def test_invalid_query_is_422_with_the_field(admin_api, params, fragment):
    r = admin_api.get("/customers", **params)
    assert r.status_code == 422
    assert fragment in json.dumps(r.json()["detail"])


def test_unknown_ids_in_filters_are_422(admin_api):
    assert "unknown tag" in admin_api.get("/customers", tag=["etNOPE"]).json()["detail"]
    r = admin_api.get("/customers", employee="nobody-here")
    assert r.status_code == 422 and "nobody-here" in r.json()["detail"]
    r = admin_api.get("/customers", added_from="2025-02-01", added_to="2025-01-01")
    assert r.status_code == 422


# --- detail ------------------------------------------------------------------------------------
def test_detail_has_relations_tags_groups_timeline(admin_api):
    from siyu.groups.models import GroupMember

    stay = GroupMember.objects.filter(customer__isnull=False, left_at__isnull=True).select_related("group").first()
    c = Customer.objects.get(id=stay.customer_id)
    r = admin_api.get(f"/customers/{c.id}")
    assert r.status_code == 200
    d = r.json()
    assert d["external_userid"] == c.external_userid
    assert {x["userid"] for x in d["relations"]} == set(
        FollowRelation.objects.filter(customer=c).values_list("employee__userid", flat=True)
    )
    assert stay.group.chat_id in {g["chat_id"] for g in d["groups"]}
    assert any(e["kind"] == "added" for e in d["timeline"])
    expect_tags = set(
        FollowTag.objects.filter(customer=c, relation__status=FollowRelation.ACTIVE, tag__deleted=False).values_list(
            "tag__tag_id", flat=True
        )
    )
    assert {t["tag_id"] for t in d["tags"]} == expect_tags


# --- bulk tag through the gateway ----------------------------------------------------------------
def test_bulk_tag_reaches_the_emulator(admin_api, world):
    sim = world
    customers = list(Customer.objects.filter(status=Customer.ACTIVE).order_by("id")[:3])
    tag = Tag.objects.filter(deleted=False).exclude(follow_tags__customer__in=customers).first()
    r = admin_api.post("/customers/bulk-tag", {"customer_ids": [c.id for c in customers], "add_tag": [tag.tag_id]})
    assert r.status_code == 200, r.content
    body = r.json()
    pairs = FollowRelation.objects.filter(customer__in=customers, status=FollowRelation.ACTIVE).count()
    assert body["relations"] == body["succeeded"] == pairs and body["failures"] == []
    for c in customers:
        got = sim.get("externalcontact/get", external_userid=c.external_userid)
        assert got["errcode"] == 0
        for f in got["follow_user"]:
            if any(
                rel.employee.userid == f["userid"] and rel.status == "active"
                for rel in c.relations.select_related("employee")
            ):
                assert tag.tag_id in {t["tag_id"] for t in f["tags"]}, (c.external_userid, f["userid"])
        detail = admin_api.get(f"/customers/{c.id}").json()
        assert tag.tag_id in {t["tag_id"] for t in detail["tags"]}
        assert any(e["kind"] == "tagged" and tag.name in e["detail"]["tags"] for e in detail["timeline"])
    # and off again
    r = admin_api.post("/customers/bulk-tag", {"customer_ids": [c.id for c in customers], "remove_tag": [tag.tag_id]})
    assert r.status_code == 200 and r.json()["succeeded"] == pairs
    got = sim.get("externalcontact/get", external_userid=customers[0].external_userid)
    assert all(tag.tag_id not in {t["tag_id"] for t in f["tags"]} for f in got["follow_user"])


def test_bulk_tag_validation(admin_api):
    tag = Tag.objects.filter(deleted=False).first()
    c = Customer.objects.first()
    assert admin_api.post("/customers/bulk-tag", {"customer_ids": [], "add_tag": [tag.tag_id]}).status_code == 422
    assert admin_api.post("/customers/bulk-tag", {"customer_ids": [c.id]}).status_code == 422
    r = admin_api.post(
        "/customers/bulk-tag", {"customer_ids": [c.id], "add_tag": [tag.tag_id], "remove_tag": [tag.tag_id]}
    )
    assert r.status_code == 422
    assert (
        admin_api.post("/customers/bulk-tag", {"customer_ids": [987654321], "add_tag": [tag.tag_id]}).status_code == 404
    )
    assert admin_api.post("/customers/bulk-tag", {"customer_ids": "x", "add_tag": []}).status_code == 422
    bad = admin_api.client.post(
        API + "/customers/bulk-tag", "{not json", content_type="application/json", headers=admin_api.headers
    )
    assert bad.status_code in (400, 422)


# --- tags through WeCom ------------------------------------------------------------------------
def test_tag_create_rename_delete_reach_wecom(admin_api, world):
    sim = world
    listed = admin_api.get("/tags").json()
    assert sum(len(g["tags"]) for g in listed) == Tag.objects.filter(deleted=False, group__deleted=False).count()
    r = admin_api.post("/tags/groups", {"name": "API 测试组", "tags": ["甲", "乙"]})
    assert r.status_code == 201, r.content
    group = r.json()
    assert [t["name"] for t in group["tags"]] == ["甲", "乙"]

    def wecom_group(gid):
        res = sim.call("externalcontact/get_corp_tag_list", {"group_id": [gid]})
        return (res.get("tag_group") or [None])[0]

    assert {t["name"] for t in wecom_group(group["group_id"])["tag"]} == {"甲", "乙"}
    tag_id = group["tags"][0]["tag_id"]
    r = admin_api.patch(f"/tags/{tag_id}", {"name": "甲改"})
    assert r.status_code == 200 and r.json()["name"] == "甲改"
    assert "甲改" in {t["name"] for t in wecom_group(group["group_id"])["tag"]}
    r = admin_api.post(f"/tags/groups/{group['group_id']}/tags", {"names": ["丙"]})
    assert r.status_code == 201 and "丙" in {t["name"] for t in r.json()["tags"]}
    # WeCom refuses a name another tag of the group has: 400 with its errcode
    r = admin_api.patch(f"/tags/{group['tags'][1]['tag_id']}", {"name": "丙"})
    assert r.status_code == 400 and r.json()["errcode"] == 40071, r.content
    assert admin_api.delete(f"/tags/{tag_id}").status_code == 204
    assert tag_id not in {t["id"] for t in wecom_group(group["group_id"])["tag"]}
    assert admin_api.delete(f"/tags/{tag_id}").status_code == 404
    assert admin_api.delete(f"/tags/groups/{group['group_id']}").status_code == 204
    assert wecom_group(group["group_id"]) is None or wecom_group(group["group_id"]).get("deleted")
    assert admin_api.post("/tags/groups", {"name": "", "tags": ["x"]}).status_code == 422


# --- groups, employees -------------------------------------------------------------------------
def test_groups_and_employees(admin_api):
    page = admin_api.get("/groups", limit=10).json()
    assert page["count"] == GroupChat.objects.count() and len(page["items"]) == min(10, page["count"])
    g = GroupChat.objects.filter(status=GroupChat.ACTIVE).order_by("-member_count").first()
    d = admin_api.get(f"/groups/{g.chat_id}").json()
    assert len(d["members"]) == g.members.filter(left_at__isnull=True).count()
    assert {m["type"] for m in d["members"]} <= {1, 2}
    emps = admin_api.get("/employees").json()
    assert len(emps) == Employee.objects.filter(placeholder=False).exclude(status=Employee.STATUS_LEFT).count()
    busiest = busiest_employee()
    row = next(e for e in emps if e["userid"] == busiest.userid)
    assert row["active_customers"] == FollowRelation.objects.filter(employee=busiest, status="active").count()


# --- docs, hostile text ----------------------------------------------------------------------------
def test_openapi_schema_and_offline_docs(world):
    r = Client().get(API + "/openapi.json")
    assert r.status_code == 200
    schema = r.json()
    for p in (
        "/api/v1/customers",
        "/api/v1/customers/{customer_id}",
        "/api/v1/customers/bulk-tag",
        "/api/v1/tags",
        "/api/v1/groups",
        "/api/v1/employees",
    ):
        assert p in schema["paths"], p
    schemes = schema["components"]["securitySchemes"]
    assert {"type": "http", "scheme": "bearer"}.items() <= schemes["TokenAuth"].items()
    assert schemes["ConsoleSessionAuth"]["in"] == "cookie"
    docs = Client().get(API + "/docs")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower() and "unpkg" not in html.lower()
    # the bundled assets are served by the product itself (WhiteNoise, from the installed app)
    asset = Client().get("/static/ninja/swagger-ui-bundle.js")
    assert asset.status_code == 200


def test_hostile_nicknames_are_plain_json_strings(admin_api, world):
    hostile = world.control("world/sample", {"n": 50})["hostile"]
    assert hostile
    names = {h["external_userid"]: h["name"] for h in hostile}
    rows = dict(Customer.objects.filter(external_userid__in=list(names)).values_list("external_userid", "id"))
    assert rows
    for ext, cid in rows.items():
        r = admin_api.get(f"/customers/{cid}")
        assert r["Content-Type"].startswith("application/json")
        assert r.json()["name"] == names[ext][:128]
        assert "&lt;" not in r.content.decode()
    script = next(h for h in hostile if h["name"].startswith("<script>"))
    found = admin_api.get("/customers", q="<script>").json()["items"]
    assert script["name"] in {c["name"] for c in found}


# --- settings page -------------------------------------------------------------------------------
def test_settings_page_creates_and_revokes_tokens(world):
    admin = user_with("page-admin", Profile.ADMIN)
    owner = user_with("page-owner", Profile.OPERATOR)
    c = Client()
    c.force_login(admin)
    assert c.get("/settings/api-tokens/").status_code == 200
    r = c.post("/settings/api-tokens/", {"name": "BI 报表", "user": owner.id})
    assert r.status_code == 200 and r["Cache-Control"] == "no-store"
    row = ApiToken.objects.get(name="BI 报表")
    token = r.context["new_token"]["token"]
    assert token in r.content.decode() and row.user == owner
    assert Api(token).get("/me").json()["username"] == "page-owner"
    again = c.get("/settings/api-tokens/").content.decode()
    assert token not in again and row.prefix in again
    c.post(f"/settings/api-tokens/{row.id}/revoke/")
    row.refresh_from_db()
    assert row.revoked and Api(token).get("/me").status_code == 401
    op = Client()
    op.force_login(owner)
    assert op.get("/settings/api-tokens/").status_code == 403
    assert op.post("/settings/api-tokens/", {"name": "x", "user": owner.id}).status_code == 403
