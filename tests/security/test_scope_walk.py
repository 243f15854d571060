"""Data scope, walked (issue 14): every customer-related REST route and console page, for each of
the four roles, with ids outside the role's scope. Nothing outside the scope is readable (no
out-of-scope customer name, remark, description, mobile or timeline entry appears in any answer)
or writable (writes are refused and change nothing, in the database or in WeCom).

The routes are enumerated from the ninja router and the URL confs: a customer-related route that
this module does not walk fails ``test_every_customer_route_is_walked``, so a new route is walked
before it lands.

Also the regression tests of two defects found by the probe:
- defect 2: one customer's view (console detail page, ``GET /api/v1/customers/{id}``) showed the
  relations, tags and timeline of every employee following a shared customer;
- defect 3: ``POST /api/v1/transfers/onjob`` handed over customers that were not the handover
  employee's or not in the caller's scope (and named them); ``/onjob/preview`` gave anyone the
  90-day count of any customer.

The world (two stores, a customer shared across them, groups, a channel code, a broadcast, a
handover, churn) is built through the module's own emulator and a real full sync, committed once
for the module; each test runs in its own rolled-back transaction.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import pytest
from django.core.management import call_command
from django.db.models import F
from django.test import Client
from django.urls import URLResolver, get_resolver
from django.utils import timezone

from siyu.accounts import services as accounts
from siyu.accounts.models import Profile
from siyu.broadcasts.models import Broadcast
from siyu.channels.models import ChannelCode, DefaultWelcome
from siyu.customers.models import (
    BulkTagJob,
    Customer,
    CustomerEvent,
    FollowRelation,
    FollowTag,
    Tag,
    TagGroup,
)
from siyu.groups.models import GroupChat
from siyu.insights.models import Settings as InsightSettings
from siyu.org.models import Employee
from siyu.profiles import services as profile_services
from siyu.profiles.models import CustomField, ProfileKey
from siyu.profiles.models import Profile as Person
from siyu.segments.models import Segment
from siyu.transfers import services as transfer_services
from siyu.transfers.models import (
    ChurnEvent,
    ChurnRule,
    GroupHandoverItem,
    Handover,
    HandoverItem,
)
from siyu.wecom.models import ApiCall
from tests.conftest import point_product_at
from tests.sim.helpers import customer_of, employee, new_tags, own_sim, uid

sim = own_sim(customers=4, seed=83)

API = "/api/v1"
PASSWORD = "scope-walk-pass-word"
ROLES = [Profile.ADMIN, Profile.OPERATOR, Profile.STORE_MANAGER, Profile.GUIDE]

# Markers: ASCII so that neither HTML escaping nor JSON's \u escapes can hide them from the check.
B_REMARK = "OOSBREMARK71"  # store B's employee's remark on the shared customer
B_DESC = "OOSBDESC71"
B_MOBILE = "13987650171"
B_EVENT = "OOSBEVENT71"  # in store B's employee's timeline entry on the shared customer
ONLYB_NAME = "OOSONLYBNAME71"  # a customer of store B only
ONLYB_REMARK = "OOSONLYBREMARK71"
GONEB_NAME = "OOSGONEBNAME71"  # store B's customer in a handover and a churn alert
GROUP_B = "OOSGROUPB71"
CODE_B = "OOSCODEB71"
BC_B = "OOSBROADCASTB71"
A2_REMARK = "OOSATWOREMARK71"  # a customer of the guide's colleague in store A
ONLYA2_NAME = "OOSONLYATWONAME71"
A1_REMARK = "MINEAONEREMARK71"  # the guide's own remark on the shared customer

# What each role must never read.
STORE_B = [B_REMARK, B_DESC, B_MOBILE, B_EVENT, ONLYB_NAME, ONLYB_REMARK, GONEB_NAME, GROUP_B, CODE_B, BC_B]
FORBIDDEN = {
    Profile.ADMIN: [],
    Profile.OPERATOR: [],
    Profile.STORE_MANAGER: STORE_B,
    Profile.GUIDE: [*STORE_B, A2_REMARK, ONLYA2_NAME],
}


@dataclass
class World:
    sim: object
    ids: dict = field(default_factory=dict)
    users: dict = field(default_factory=dict)


@pytest.fixture(scope="module")
def built(sim, django_db_setup, django_db_blocker):
    """Two stores under the root: A (a1, a2) and B (b1, b2). ``shared`` is followed by a1 and b1,
    each with their own remark and tag; ``only_b``/``gone_b`` are b1's, ``only_a2`` is a2's. Store
    B has a group, a channel code, a broadcast (by its manager), a handover and a churn alert."""
    from siyu.sync.services import run_full_sync
    from siyu.wecom import config

    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)
        point_product_at(sim)
        s = sim
        store_a = s.control("department/create", {"name": uid("甲店"), "parentid": 1})["department"]["id"]
        store_b = s.control("department/create", {"name": uid("乙店"), "parentid": 1})["department"]["id"]
        a1, a2 = employee(s, department=[store_a]), employee(s, department=[store_a])
        b1, b2 = employee(s, department=[store_b]), employee(s, department=[store_b])
        shared = customer_of(s, a1)
        customer_of(s, b1, external_userid=shared)
        only_b, gone_b, only_a2 = customer_of(s, b1), customer_of(s, b1), customer_of(s, a2)
        tag_a, tag_b = new_tags(s, "A店标签", "B店标签")

        def edit(**body):
            return s.control("customer/edit", body)

        edit(userid=a1, external_userid=shared, remark=A1_REMARK, add_tag=[tag_a])
        edit(
            userid=b1,
            external_userid=shared,
            remark=B_REMARK,
            description=B_DESC,
            remark_mobiles=[B_MOBILE],
            add_tag=[tag_b],
        )
        edit(userid=b1, external_userid=only_b, remark=ONLYB_REMARK)
        edit(userid=a2, external_userid=only_a2, remark=A2_REMARK)
        chat_b = s.control("group/create", {"owner": b1, "name": GROUP_B, "members": [only_b, shared]})["chat_id"]
        run = run_full_sync(workers=2)
        assert run.status == "done", run.error

        # nicknames the check can find (a WeChat user's nickname is theirs; the test names them)
        for x, name in ((only_b, ONLYB_NAME), (gone_b, GONEB_NAME), (only_a2, ONLYA2_NAME)):
            Customer.objects.filter(external_userid=x).update(name=name, search_text=name.lower())
        emp = {u: Employee.objects.get(userid=u) for u in (a1, a2, b1, b2)}
        cust = {x: Customer.objects.get(external_userid=x) for x in (shared, only_b, gone_b, only_a2)}
        # store B's employee's timeline entry on the shared customer (as a remark-change callback writes it)
        CustomerEvent.objects.create(
            customer=cust[shared],
            kind=CustomerEvent.REMARK_CHANGED,
            employee=emp[b1],
            at=timezone.now(),
            detail={"remark": [B_REMARK, B_EVENT]},
        )
        # a churn alert and a (not yet submitted) on-job handover in store B
        ChurnEvent.objects.create(
            kind=ChurnEvent.BY_CUSTOMER,
            external_userid=gone_b,
            userid=b1,
            employee=emp[b1],
            customer=cust[gone_b],
            at=timezone.now(),
            notify_status=ChurnEvent.SKIPPED,
        )
        plan = transfer_services.plan("single", external_userids=[gone_b], chat_ids=[], takeovers=[emp[b2].id])
        handover_b = transfer_services.create_handover(Handover.ONJOB, emp[b1], plan, message="hi")

        users = {
            Profile.ADMIN: accounts.ensure_user("walk-admin", PASSWORD, role=Profile.ADMIN)[0],
            Profile.OPERATOR: accounts.ensure_user("walk-operator", PASSWORD, role=Profile.OPERATOR)[0],
            Profile.STORE_MANAGER: accounts.ensure_user(
                "walk-manager-a", PASSWORD, role=Profile.STORE_MANAGER, department_id=store_a
            )[0],
            Profile.GUIDE: accounts.ensure_user("walk-guide-a1", PASSWORD, role=Profile.GUIDE, wecom_userid=a1)[0],
        }
        manager_b = accounts.ensure_user("walk-manager-b", PASSWORD, role=Profile.STORE_MANAGER, department_id=store_b)[
            0
        ]
        # store B's channel code (through WeCom) and its manager's broadcast draft, as they would be made
        admin = Api(accounts.create_api_token(users[Profile.ADMIN], "setup")[1])
        r = admin.send("POST", "/channel-codes", {"name": CODE_B, "users": [b1]})
        assert r.status_code == 201, r.content
        code_b = r.json()["id"]
        r = Api(accounts.create_api_token(manager_b, "setup")[1]).send(
            "POST", "/broadcasts/", {"name": BC_B, "text": BC_B, "employees": [emp[b1].id]}
        )
        assert r.status_code == 201, r.content
        bc_b = r.json()["id"]

        tag_b_row = Tag.objects.select_related("group").get(tag_id=tag_b)
        # the customer data platform: every WeCom customer a person; a custom field; store B's
        # manager's saved segment
        profile_services.link_backfill()
        walk_field = CustomField.objects.create(key="walk", label="walk", type="text")
        seg_b = Segment.objects.create(name="B店分群", definition={"op": "and", "items": []}, created_by=manager_b)
        ids = {
            "a1": a1,
            "a2": a2,
            "b1": b1,
            "b2": b2,
            "a1_id": emp[a1].id,
            "a2_id": emp[a2].id,
            "b1_id": emp[b1].id,
            "b2_id": emp[b2].id,
            "shared": cust[shared].id,
            "shared_x": shared,
            "only_b": cust[only_b].id,
            "only_b_x": only_b,
            "gone_b": cust[gone_b].id,
            "gone_b_x": gone_b,
            "only_a2": cust[only_a2].id,
            "only_a2_x": only_a2,
            "tag_a": tag_a,
            "tag_b": tag_b,
            "tag_b_pk": tag_b_row.id,
            "tag_group": tag_b_row.group.group_id,
            "chat_b": chat_b,
            "group_b": GroupChat.objects.get(chat_id=chat_b).id,
            "code_b": code_b,
            "bc_b": bc_b,
            "handover_b": handover_b.id,
            # a background bulk-tag job of nobody's here, naming B's customer: only admins see it
            "bulk_job_b": BulkTagJob.objects.create(
                failures=[{"customer_name": ONLYB_NAME, "userid": b1, "errcode": 40068, "errmsg": "x"}]
            ).id,
            "store_a": store_a,
            "store_b": store_b,
            "person_b": ProfileKey.objects.get(customer_id=cust[only_b].id).profile_id,
            "person_shared": ProfileKey.objects.get(customer_id=cust[shared].id).profile_id,
            "field": walk_field.id,
            "seg_b": seg_b.id,
        }
        world = World(sim=sim, ids=ids, users={**users, "manager_b": manager_b})
    yield world
    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)
        config.invalidate()


@pytest.fixture
def world(built, db):
    point_product_at(built.sim)
    return built


class Api:
    """/api/v1 with a bearer token."""

    def __init__(self, token: str):
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {token}"}

    def send(self, method: str, path: str, body=None, params=None):
        if method == "GET":
            return self.client.get(API + path, params or {}, headers=self.headers)
        data = json.dumps(body if body is not None else {})
        return self.client.generic(method, API + path, data, content_type="application/json", headers=self.headers)


def console(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def api_for(user) -> Api:
    return Api(accounts.create_api_token(user, "walk")[1])


# --- what must not change -------------------------------------------------------------------------
# WeCom writes the routes below could make (gateway paths in the API-call log).
WECOM_WRITES = (
    "mark_tag",
    "transfer_customer",
    "groupchat/transfer",
    "onjob_transfer",
    "contact_way",
    "corp_tag",
    "add_msg_template",
    "remark",
    "cancel_groupmsg",
    "remind_groupmsg",
    "join_way",
    "welcome",
)


def state() -> tuple:
    """The stored state a refused write must leave as it was."""
    return (
        sorted(FollowTag.objects.values_list("relation_id", "tag_id")),
        sorted(FollowRelation.objects.values_list("id", "employee_id", "status", "remark")),
        sorted(Tag.objects.values_list("tag_id", "name", "deleted", "group_id")),
        sorted(TagGroup.objects.values_list("group_id", "name", "deleted")),
        sorted((c.id, c.name, c.enabled, tuple(c.users), c.config_id) for c in ChannelCode.objects.all()),
        sorted(Broadcast.objects.values_list("id", "status", "name", "text")),
        sorted(DefaultWelcome.objects.values_list("id", "userid")),
        Handover.objects.count(),
        sorted(HandoverItem.objects.values_list("id", "status", "takeover_id")),
        GroupHandoverItem.objects.count(),
        sorted(Person.objects.values_list("id", "merged_into_id", "name", "member_level")),
        sorted((p.id, json.dumps(p.custom, sort_keys=True)) for p in Person.objects.all()),
        sorted(CustomField.objects.values_list("id", "key", "label", "active")),
        sorted(Segment.objects.filter(created_by__isnull=False).values_list("id", "name", "archived")),
        sorted(InsightSettings.objects.values_list("window_days", "scoring"))
        or [(365, "quantile")],  # made when first read
        sorted(ChurnRule.objects.values_list("mode", "digest_hour"))
        or [(ChurnRule.IMMEDIATE, 9)],  # made when first read
        sum(1 for p in ApiCall.objects.values_list("path", flat=True) if any(w in p for w in WECOM_WRITES)),
    )


# --- the routes -----------------------------------------------------------------------------------
@dataclass
class Req:
    method: str
    path: str
    body: object = None  # JSON (API) or form data (console)
    write: bool = False
    headers: dict = field(default_factory=dict)


def G(path, params=None):
    return Req("GET", path, params)


def W(method, path, body=None):
    return Req(method, path, body, write=True)


def targets(role: str, i: dict) -> dict:
    """Ids outside the role's scope (for the admin and the operator nothing is: the same ids then
    check that the walk reads what it should)."""
    outside = [i["only_b"]] + ([i["only_a2"]] if role == Profile.GUIDE else [])
    outside_x = [i["only_b_x"]] + ([i["only_a2_x"]] if role == Profile.GUIDE else [])
    return {"customers": outside, "xs": outside_x}


# REST: "METHOD /path" as the router declares it → the requests walking it.
def rest_routes(i: dict, t: dict) -> dict:
    c0, x0 = t["customers"][0], t["xs"][0]
    customer_reads = [G(f"/customers/{c}") for c in t["customers"]] + [G(f"/customers/{i['shared']}")]
    return {
        "GET /customers": [
            G("/customers"),
            G("/customers", {"q": B_REMARK.lower()}),
            G("/customers", {"q": B_MOBILE}),
            G("/customers", {"q": ONLYB_NAME.lower()}),
            G("/customers", {"employee": i["b1"]}),
            G("/customers", {"group": i["chat_b"]}),
            G("/customers", {"department": i["store_b"]}),
        ],
        "GET /customers/{int:customer_id}": customer_reads,
        "POST /customers/bulk-tag": [
            W("POST", "/customers/bulk-tag", {"customer_ids": t["customers"], "add_tag": [i["tag_a"]]}),
            W("POST", "/customers/bulk-tag", {"customer_ids": [i["shared"], c0], "remove_tag": [i["tag_b"]]}),
        ],
        "GET /tags": [G("/tags")],
        "POST /tags/groups": [W("POST", "/tags/groups", {"name": "walkgroup", "tags": ["walktag"]})],
        "POST /tags/groups/{group_id}/tags": [W("POST", f"/tags/groups/{i['tag_group']}/tags", {"names": ["walktag"]})],
        "PATCH /tags/groups/{group_id}": [W("PATCH", f"/tags/groups/{i['tag_group']}", {"name": "walkrename"})],
        "DELETE /tags/groups/{group_id}": [W("DELETE", f"/tags/groups/{i['tag_group']}")],
        "PATCH /tags/{tag_id}": [W("PATCH", f"/tags/{i['tag_b']}", {"name": "walkrename"})],
        "DELETE /tags/{tag_id}": [W("DELETE", f"/tags/{i['tag_b']}")],
        "GET /groups": [G("/groups"), G("/groups", {"q": GROUP_B})],
        "GET /groups/{chat_id}": [G(f"/groups/{i['chat_b']}")],
        "GET /employees": [G("/employees")],
        "GET /channel-codes": [G("/channel-codes")],
        "POST /channel-codes": [W("POST", "/channel-codes", {"name": "walkcode", "users": [i["b1"]]})],
        "GET /channel-codes/{code_id}": [G(f"/channel-codes/{i['code_b']}")],
        "PUT /channel-codes/{code_id}": [
            W("PUT", f"/channel-codes/{i['code_b']}", {"name": "walkrename", "users": [i["a1"]]})
        ],
        "DELETE /channel-codes/{code_id}": [W("DELETE", f"/channel-codes/{i['code_b']}")],
        "GET /channel-analytics": [
            G("/channel-analytics"),
            G("/channel-analytics", {"dimension": "employee"}),
            G("/channel-analytics", {"code": i["code_b"]}),
        ],
        "GET /broadcasts/": [G("/broadcasts/")],
        "POST /broadcasts/": [W("POST", "/broadcasts/", {"name": "walkbc", "text": "x", "employees": [i["b1_id"]]})],
        "PUT /broadcasts/{pk}": [W("PUT", f"/broadcasts/{i['bc_b']}", {"name": "walkrename", "text": "x"})],
        "GET /broadcasts/{pk}": [G(f"/broadcasts/{i['bc_b']}")],
        "GET /broadcasts/{pk}/estimate": [G(f"/broadcasts/{i['bc_b']}/estimate")],
        "POST /broadcasts/{pk}/{op}": [
            W("POST", f"/broadcasts/{i['bc_b']}/{op}") for op in ("send", "cancel", "copy", "remind", "sync")
        ],
        "GET /broadcasts/{pk}/employees": [G(f"/broadcasts/{i['bc_b']}/employees")],
        "GET /broadcasts/{pk}/recipients": [G(f"/broadcasts/{i['bc_b']}/recipients")],
        "GET /transfers/unassigned": [G("/transfers/unassigned")],
        "GET /transfers/handovers": [G("/transfers/handovers")],
        "GET /transfers/handovers/{int:handover_id}": [G(f"/transfers/handovers/{i['handover_b']}")],
        "POST /transfers/resigned": [
            W("POST", "/transfers/resigned", {"handover_userid": i["b1"], "takeover_userids": [i["a1"]]})
        ],
        "POST /transfers/onjob/preview": [W("POST", "/transfers/onjob/preview", {"external_userids": t["xs"]})],
        "POST /transfers/onjob": [
            W(
                "POST",
                "/transfers/onjob",
                {"handover_userid": i["a1"], "takeover_userid": i["a2"], "external_userids": [x0]},
            ),
            W(
                "POST",
                "/transfers/onjob",
                {"handover_userid": i["a1"], "takeover_userid": i["a2"], "external_userids": [i["shared_x"], *t["xs"]]},
            ),
            W(
                "POST",
                "/transfers/onjob",
                {"handover_userid": i["a1"], "takeover_userid": i["a2"], "chat_ids": [i["chat_b"]]},
            ),
            W(
                "POST",
                "/transfers/onjob",
                {"handover_userid": i["b1"], "takeover_userid": i["b2"], "external_userids": [x0]},
            ),
        ],
        "POST /transfers/poll": [Req("POST", "/transfers/poll")],  # reads WeCom's results (counts only)
        "GET /transfers/churn": [G("/transfers/churn"), G("/transfers/churn", {"employee": i["b1"]})],
        # customer data batches and orders (issue 17, part A): admin and operator only, 403 for the scoped roles
        **{f"POST /cdp/{kind}": [W("POST", f"/cdp/{kind}", {"rows": []})] for kind in ("orders", "events", "members")},
        "GET /cdp/orders": [G("/cdp/orders", {"profile": 1})],
        # persons (issue 17, part B): a scoped viewer gets 404 for another store's person
        "GET /cdp/profiles": [G("/cdp/profiles"), G("/cdp/profiles", {"q": ONLYB_NAME})],
        "GET /cdp/profiles/{int:profile_id}": [G(f"/cdp/profiles/{i['person_b']}")],
        "PATCH /cdp/profiles/{int:profile_id}": [
            W("PATCH", f"/cdp/profiles/{i['person_b']}", {"custom": {"walk": "x"}, "member_level": "gold"})
        ],
        "GET /cdp/profiles/{int:profile_id}/metrics": [G(f"/cdp/profiles/{i['person_b']}/metrics")],
        "POST /cdp/profiles/{int:profile_id}/merge": [
            W("POST", f"/cdp/profiles/{i['person_shared']}/merge", {"other": i["person_b"]}),
            W("POST", f"/cdp/profiles/{i['person_b']}/merge", {"other": i["person_shared"]}),
        ],
        "POST /cdp/profiles/{int:profile_id}/unmerge": [W("POST", f"/cdp/profiles/{i['person_b']}/unmerge")],
        "GET /cdp/conflicts": [G("/cdp/conflicts")],
        "POST /cdp/conflicts/{int:conflict_id}/resolve": [
            W("POST", "/cdp/conflicts/999999/resolve", {"action": "keep_apart"})
        ],
        "GET /cdp/fields": [G("/cdp/fields")],
        "GET /cdp/fields/{int:field_id}": [G(f"/cdp/fields/{i['field']}")],
        "POST /cdp/fields": [W("POST", "/cdp/fields", {"key": "walk2", "label": "w", "type": "text"})],
        "PATCH /cdp/fields/{int:field_id}": [W("PATCH", f"/cdp/fields/{i['field']}", {"label": "w2"})],
        "DELETE /cdp/fields/{int:field_id}": [W("DELETE", f"/cdp/fields/{i['field']}")],
        # insights (part C): counts within the viewer's scope; settings for admin and operator only
        "GET /cdp/rfm": [G("/cdp/rfm")],
        "GET /cdp/insights/settings": [G("/cdp/insights/settings")],
        "PUT /cdp/insights/settings": [W("PUT", "/cdp/insights/settings", {"window_days": 200})],
        # segments (parts D and E): a scoped viewer counts within their scope and sees only their own
        "GET /segments": [G("/segments")],
        "POST /segments/count": [Req("POST", "/segments/count", {"definition": {"op": "and", "items": []}})],
        "POST /segments": [
            W("POST", "/segments", {"name": "walkseg", "definition": {"op": "and", "items": []}}),
        ],
        "GET /segments/{segment_id}": [G(f"/segments/{i['seg_b']}")],
        "PATCH /segments/{segment_id}": [W("PATCH", f"/segments/{i['seg_b']}", {"name": "walkrename"})],
        "GET /segments/{segment_id}/members": [G(f"/segments/{i['seg_b']}/members")],
        "GET /segments/{segment_id}/export": [G(f"/segments/{i['seg_b']}/export", {"format": "csv"})],
        "POST /segments/{segment_id}/archive": [W("POST", f"/segments/{i['seg_b']}/archive")],
    }


# REST routes that are not about customers.
REST_UNRELATED = {
    "GET /me",
    # corp-wide message material (group welcome templates, stored files), no customer data; admin and
    # operator only (tests/channels/test_group_welcomes.py)
    "GET /group-welcome-templates",
    "GET /group-welcome-templates/{pk}",
    "POST /group-welcome-templates",
    "PUT /group-welcome-templates/{pk}",
    "DELETE /group-welcome-templates/{pk}",
    "POST /media",
}


# Console: the URL pattern as the URL conf declares it → the requests walking it.
def console_routes(i: dict, t: dict) -> dict:
    x0 = t["xs"][0]
    bc, code, h = i["bc_b"], i["code_b"], i["handover_b"]
    return {
        "": [G("/")],
        "customers/": [
            G("/customers/"),
            G("/customers/", {"q": B_REMARK.lower()}),
            G("/customers/", {"q": B_MOBILE}),
            G("/customers/", {"employee": i["b1_id"]}),
            G("/customers/", {"group": i["group_b"]}),
            Req(
                "GET",
                "/customers/",
                {"employee": i["b1_id"]},  # the htmx fragment of the results
                headers={"HX-Request": "true", "HX-Target": "customer-results"},
            ),
        ],
        "customers/<id:customer_id>/": [G(f"/customers/{c}/") for c in t["customers"]]
        + [G(f"/customers/{i['shared']}/")],
        "customers/bulk-tag/": [
            W("POST", "/customers/bulk-tag/", {"ids": t["customers"], "add_tags": [i["tag_b_pk"]]}),
            W("POST", "/customers/bulk-tag/", {"target": "all", "q": ONLYB_NAME.lower(), "add_tags": [i["tag_b_pk"]]}),
        ],
        "customers/bulk-tag/<id:job_id>/": [G(f"/customers/bulk-tag/{i['bulk_job_b']}/")],
        "customers/export.<str:fmt>": [
            G("/customers/export.csv"),
            G("/customers/export.xlsx"),
            G("/customers/export.csv", {"q": B_REMARK.lower()}),
        ],
        "tags/": [G("/tags/")],
        "tags/groups/new/": [W("POST", "/tags/groups/new/", {"name": "walkgroup", "tags": "walktag"})],
        "tags/refresh/": [W("POST", "/tags/refresh/")],
        "tags/groups/<str:group_id>/tags/": [W("POST", f"/tags/groups/{i['tag_group']}/tags/", {"names": "walktag"})],
        "tags/groups/<str:group_id>/delete/": [W("POST", f"/tags/groups/{i['tag_group']}/delete/")],
        "tags/tags/<str:tag_id>/delete/": [W("POST", f"/tags/tags/{i['tag_b']}/delete/")],
        "tags/<str:obj_id>/rename/": [W("POST", f"/tags/{i['tag_b']}/rename/", {"name": "walkrename"})],
        "tags/<str:obj_id>/move/": [W("POST", f"/tags/{i['tag_b']}/move/", {"direction": "up"})],
        "groups/": [G("/groups/"), G("/groups/", {"owner": i["b1_id"]}), G("/groups/", {"q": GROUP_B})],
        "groups/<id:group_id>/": [G(f"/groups/{i['group_b']}/")],
        "employees/": [G("/employees/"), G("/employees/", {"left": "1"})],
        # the pickers' searches (siyu.core.pickers): every one scoped like its list
        "employees/pick/employees/": [
            G("/employees/pick/employees/"),
            G("/employees/pick/employees/", {"by": "userid", "dept": i["store_b"]}),
        ],
        "employees/pick/departments/": [G("/employees/pick/departments/")],
        "employees/pick/tree/": [G("/employees/pick/tree/")],
        "tags/pick/": [G("/tags/pick/"), G("/tags/pick/", {"by": "tag_id"})],
        "groups/pick/": [G("/groups/pick/"), G("/groups/pick/", {"q": "OOS", "by": "chat_id"})],
        "groups/pick/tags/": [G("/groups/pick/tags/")],
        "channels/pick/": [G("/channels/pick/"), G("/channels/pick/", {"q": "OOS"})],
        "channels/": [G("/channels/"), G("/channels/", {"q": CODE_B})],
        "channels/new/": [
            G("/channels/new/"),
            W("POST", "/channels/new/", {"name": "walkcode", "kind": "channel", "users": i["b1"]}),
        ],
        "channels/<id:code_id>/": [G(f"/channels/{code}/")],
        "channels/<id:code_id>/edit/": [
            G(f"/channels/{code}/edit/"),
            W("POST", f"/channels/{code}/edit/", {"name": "walkrename"}),
        ],
        "channels/<id:code_id>/delete/": [W("POST", f"/channels/{code}/delete/")],
        "channels/<id:code_id>/qr.png": [G(f"/channels/{code}/qr.png")],
        "channels/<id:code_id>/poster.png": [G(f"/channels/{code}/poster.png")],
        "channels/groups/": [G("/channels/groups/")],
        "channels/groups/welcomes/": [
            G("/channels/groups/welcomes/"),
            W("POST", "/channels/groups/welcomes/", {"name": "walk", "text": "walk"}),
        ],
        "channels/groups/welcomes/<id:pk>/": [G("/channels/groups/welcomes/999999/")],
        "channels/groups/welcomes/<id:pk>/delete/": [W("POST", "/channels/groups/welcomes/999999/delete/")],
        "channels/welcomes/": [
            G("/channels/welcomes/"),
            W("POST", "/channels/welcomes/", {"userid": i["b1"], "text": "walk"}),
        ],
        "channels/analytics/": [
            G("/channels/analytics/"),
            G("/channels/analytics/", {"code": code, "dim": "employee"}),
        ],
        "channels/analytics/export.csv": [G("/channels/analytics/export.csv", {"dim": "employee"})],
        "broadcasts/": [G("/broadcasts/"), G("/broadcasts/", {"part": "rows"})],
        "broadcasts/moments/": [G("/broadcasts/moments/"), G("/broadcasts/moments/", {"part": "rows"})],
        "broadcasts/new/": [
            G("/broadcasts/new/"),
            W(
                "POST",
                "/broadcasts/new/",
                {"kind": "customer", "name": "walkbc", "text": "x", "employees": [i["b1_id"]], "tag_mode": "any"},
            ),
        ],
        "broadcasts/estimate/": [
            Req(
                "POST",
                "/broadcasts/estimate/",
                {"kind": "customer", "name": "walkbc", "text": "x", "employees": [i["b1_id"]], "tag_mode": "any"},
            )
        ],
        "broadcasts/media/": [W("POST", "/broadcasts/media/", {"kind": "image"})],
        "broadcasts/<id:pk>/": [G(f"/broadcasts/{bc}/"), G(f"/broadcasts/{bc}/", {"part": "live"})],
        "broadcasts/<id:pk>/edit/": [
            G(f"/broadcasts/{bc}/edit/"),
            W("POST", f"/broadcasts/{bc}/edit/", {"name": "walkrename"}),
        ],
        "broadcasts/<id:pk>/action/<str:op>/": [
            W("POST", f"/broadcasts/{bc}/action/{op}/") for op in ("send", "copy", "delete", "sync", "remind", "cancel")
        ],
        "broadcasts/<id:pk>/export/<str:what>.csv": [
            G(f"/broadcasts/{bc}/export/{w}.csv") for w in ("employees", "recipients")
        ],
        "transfers/": [G("/transfers/")],
        "transfers/resigned/": [G("/transfers/resigned/")],
        "transfers/resigned/<id:employee_id>/": [
            G(f"/transfers/resigned/{i['b1_id']}/"),
            W("POST", f"/transfers/resigned/{i['b1_id']}/", {"strategy": "single", "takeover": i["a1_id"]}),
        ],
        "transfers/onjob/": [
            G("/transfers/onjob/", {"handover": i["a1_id"]}),
            G("/transfers/onjob/", {"handover": i["b1_id"]}),
            W("POST", "/transfers/onjob/", {"handover": i["a1_id"], "takeover": i["a2_id"], "x": t["xs"]}),
            W("POST", "/transfers/onjob/", {"handover": i["a1_id"], "takeover": i["a2_id"], "chat": i["chat_b"]}),
            W("POST", "/transfers/onjob/", {"handover": i["b1_id"], "takeover": i["b2_id"], "x": [x0]}),
        ],
        "transfers/handovers/<id:handover_id>/": [
            G(f"/transfers/handovers/{h}/"),
            *[G(f"/transfers/handovers/{h}/", {"part": part}) for part in ("counts", "items")],
        ],
        "transfers/handovers/<id:handover_id>/refresh/": [W("POST", f"/transfers/handovers/{h}/refresh/")],
        "transfers/churn/": [
            G("/transfers/churn/"),
            G("/transfers/churn/", {"employee": i["b1_id"]}),
            W("POST", "/transfers/churn/", {"mode": "off", "digest_hour": "3"}),
        ],
        "transfers/churn/export.csv": [G("/transfers/churn/export.csv")],
    }


# Console URL prefixes whose pages show or change customers (and the overview's counters).
CONSOLE_PREFIXES = ("customers/", "tags/", "groups/", "employees/", "channels/", "broadcasts/", "transfers/")


def declared_rest_routes() -> set[str]:
    from siyu.api import api

    out = set()
    for _prefix, router in api._routers:
        for path, view in router.path_operations.items():
            for op in view.operations:
                out.update(f"{m} {path}" for m in op.methods)
    return out


def declared_console_routes() -> set[str]:
    out = set()

    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                if not str(p.pattern).startswith("api/"):
                    walk(p.url_patterns, prefix + str(p.pattern))
            else:
                out.add(prefix + str(p.pattern))

    walk(get_resolver().url_patterns)
    return {r for r in out if r == "" or r.startswith(CONSOLE_PREFIXES)}


def test_every_customer_route_is_walked(world):
    t = targets(Profile.GUIDE, world.ids)
    rest = declared_rest_routes() - REST_UNRELATED
    assert set(rest_routes(world.ids, t)) == rest, "walk every customer-related REST route in this module"
    walked = set(console_routes(world.ids, t))
    assert walked == declared_console_routes(), "walk every customer-related console page in this module"


# --- the walk -------------------------------------------------------------------------------------
def _body(r) -> str:
    raw = b"".join(r.streaming_content) if getattr(r, "streaming", False) else r.content
    if r.get("Content-Type", "").startswith("application/vnd.openxmlformats"):
        import io
        import zipfile

        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            return "".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
    return raw.decode("utf-8", "replace")


def _send_console(c: Client, req: Req):
    if req.method == "GET":
        return c.get(req.path, req.body or {}, headers=req.headers)
    return c.post(req.path, req.body or {}, headers=req.headers)


@pytest.mark.parametrize("role", ROLES)
def test_walk_every_route_within_scope(world, role):
    i = world.ids
    user = world.users[role]
    t = targets(role, i)
    forbidden = FORBIDDEN[role]
    scoped = bool(forbidden)
    api, c = api_for(user), console(user)
    before = state()
    for kind, table, send in (
        (
            "api",
            rest_routes(i, t),
            lambda req: api.send(req.method, req.path, req.body, req.body if req.method == "GET" else None),
        ),
        ("console", console_routes(i, t), lambda req: _send_console(c, req)),
    ):
        for reqs in table.values():
            for req in reqs:
                if req.write and not scoped:
                    continue  # everything is in the admin's and operator's scope: their writes are legitimate
                r = send(req)
                where = f"{role} {kind} {req.method} {req.path} {req.body}"
                assert r.status_code < 500, f"{where}: {r.status_code}"
                body = _body(r)
                asked = f"{req.path} {json.dumps(req.body)}".lower()  # what the caller typed comes back (a search box)
                leaked = [m for m in forbidden if (m in body or m.lower() in body) and m.lower() not in asked]
                assert not leaked, f"{where}: answered {leaked}"
                if req.write:
                    assert r.status_code in (200, 302, 400, 403, 404, 405, 409, 422), f"{where}: {r.status_code}"
                    assert state() == before, f"{where}: a refused write changed something"
    assert state() == before
    if not scoped:
        # the positive side: the walk did reach the data (admin and operator see store B)
        d = api.send("GET", f"/customers/{i['shared']}").json()
        assert {r["remark"] for r in d["relations"]} == {A1_REMARK, B_REMARK}
        assert B_REMARK in _body(c.get(f"/customers/{i['shared']}/"))


# --- defect 2: one customer's view is scoped ---------------------------------------------------
@pytest.mark.parametrize("role", [Profile.STORE_MANAGER, Profile.GUIDE])
def test_shared_customer_detail_shows_only_the_scope(world, role):
    i = world.ids
    user = world.users[role]
    d = api_for(user).send("GET", f"/customers/{i['shared']}")
    assert d.status_code == 200
    d = d.json()
    assert [(r["userid"], r["remark"]) for r in d["relations"]] == [(i["a1"], A1_REMARK)]
    assert {t["tag_id"] for t in d["tags"]} == {i["tag_a"]}
    assert {e["userid"] for e in d["timeline"]} <= {i["a1"]}
    assert [g["chat_id"] for g in d["groups"]] == []  # the group is store B's
    text = json.dumps(d)
    for m in (B_REMARK, B_DESC, B_MOBILE, B_EVENT, i["tag_b"], GROUP_B):
        assert m not in text
    page = console(user).get(f"/customers/{i['shared']}/")
    assert page.status_code == 200
    html = _body(page)
    assert A1_REMARK in html
    for m in (B_REMARK, B_DESC, B_MOBILE, B_EVENT, GROUP_B, f'data-relation="{i["b1"]}"'):
        assert m not in html
    # the relation's tags (the tag form below lists the whole corp library, the same for every role)
    assert re.findall(r'data-testid="relation-tags">(.*?)</dd>', html, re.DOTALL) == [
        f'<span class="tag-chip" title="{Tag.objects.get(tag_id=i["tag_a"]).group.name}">A店标签</span>'
    ]
    # out of scope altogether: 403 (404 for no such customer), nothing of the customer shown
    r = api_for(user).send("GET", f"/customers/{i['only_b']}")
    assert r.status_code == 403 and ONLYB_NAME not in r.content.decode()
    assert console(user).get(f"/customers/{i['only_b']}/").status_code == 403


@pytest.mark.parametrize("role", [Profile.STORE_MANAGER, Profile.GUIDE])
def test_tagging_a_shared_customer_touches_only_the_scopes_relation(world, role):
    i = world.ids

    def b_tags():
        return sorted(
            FollowTag.objects.filter(customer_id=i["shared"], relation__employee__userid=i["b1"]).values_list(
                "tag_id", flat=True
            )
        )

    before = b_tags()
    assert before == [i["tag_b_pk"]]
    r = console(world.users[role]).post("/customers/bulk-tag/", {"ids": [i["shared"]], "remove_tags": [i["tag_b_pk"]]})
    assert r.status_code == 302
    assert b_tags() == before
    r = api_for(world.users[role]).send(
        "POST", "/customers/bulk-tag", {"customer_ids": [i["shared"]], "remove_tag": [i["tag_b"]]}
    )
    assert r.status_code == 200 and B_REMARK not in r.content.decode()
    assert {f["userid"] for f in r.json()["failures"]} <= {i["a1"]}
    assert b_tags() == before


def test_admin_sees_every_relation_of_the_shared_customer(world):
    d = api_for(world.users[Profile.ADMIN]).send("GET", f"/customers/{world.ids['shared']}").json()
    assert {r["userid"] for r in d["relations"]} == {world.ids["a1"], world.ids["b1"]}
    assert {t["tag_id"] for t in d["tags"]} == {world.ids["tag_a"], world.ids["tag_b"]}
    assert B_EVENT in json.dumps(d["timeline"]) and [g["chat_id"] for g in d["groups"]] == [world.ids["chat_b"]]


def test_search_does_not_probe_another_stores_remarks(world):
    """search_text holds every relation's remark: a scoped search only matches its own."""
    i = world.ids
    manager = api_for(world.users[Profile.STORE_MANAGER])
    assert [c["id"] for c in manager.send("GET", "/customers", params={"q": A1_REMARK.lower()}).json()["items"]] == [
        i["shared"]
    ]
    for q in (B_REMARK.lower(), B_MOBILE):
        assert manager.send("GET", "/customers", params={"q": q}).json()["items"] == []
    admin = api_for(world.users[Profile.ADMIN])
    assert [c["id"] for c in admin.send("GET", "/customers", params={"q": B_MOBILE}).json()["items"]] == [i["shared"]]
    # nor probe store B's group or tags through the filters
    assert manager.send("GET", "/customers", params={"group": i["chat_b"]}).json()["items"] == []
    assert {c["id"] for c in admin.send("GET", "/customers", params={"group": i["chat_b"]}).json()["items"]} == {
        i["shared"],
        i["only_b"],
    }
    # the console list and its export read the same selector
    page = _body(console(world.users[Profile.STORE_MANAGER]).get("/customers/", {"q": B_REMARK.lower()}))
    assert f"/customers/{i['shared']}/" not in page
    assert f"/customers/{i['shared']}/" in _body(
        console(world.users[Profile.STORE_MANAGER]).get("/customers/", {"q": A1_REMARK})
    )


# --- tag filters count only the scope's tags ------------------------------------------------------
# The list's planner (customers.selectors) takes a different path by the sides' sizes; the thresholds
# are made tiny so that the small world takes each: the ids read whole and intersected ("sets"), the
# bounded index walk ("walk"), a failed walk then the wide read on SQLite or the database's set
# operation on PostgreSQL ("fallback"), and the matching set sorted, driven by the tags or the
# relations ("sort").
TAG_PLANS = {
    "sets": {},
    "walk": {"RELATION_PROBE": 1, "SET_READ": 0, "WALK_BUDGET": 60},
    "fallback": {"RELATION_PROBE": 1, "SET_READ": 0, "WALK_BUDGET": 1},
    "sort": {"RELATION_PROBE": 1, "SET_READ": 0, "WALK_BUDGET": 1, "DB_SET": 0, "WIDE_SET_READ": 0},
}


def _listed(role_user, shared: Customer, tags: list[str], mode: str) -> dict[str, bool]:
    """Whether ``shared`` is listed, filtered on these tags (WeCom ids) in this mode: on the REST
    list, the console list, its htmx fragment and the CSV export."""
    pks = [Tag.objects.get(tag_id=t).id for t in tags]
    rest = api_for(role_user).send("GET", "/customers", params={"tag": tags, "tag_mode": mode})
    assert rest.status_code == 200, rest.content
    c = console(role_user)
    form = {"tags": pks, "tag_mode": mode}
    page = c.get("/customers/", form)
    fragment = c.get("/customers/", form, headers={"HX-Request": "true", "HX-Target": "customer-results"})
    export = c.get("/customers/export.csv", form)
    assert page.status_code == fragment.status_code == export.status_code == 200
    rows = b"".join(export.streaming_content).decode("utf-8-sig")
    marker = f'data-customer="{shared.id}"'
    return {
        "rest": shared.id in [x["id"] for x in rest.json()["items"]],
        "console": marker in _body(page),
        "fragment": marker in _body(fragment),
        "export": shared.external_userid in rows,
    }


@pytest.mark.parametrize("plan", list(TAG_PLANS))
@pytest.mark.parametrize("role", [Profile.STORE_MANAGER, Profile.GUIDE, Profile.ADMIN])
def test_tag_filters_count_only_the_scopes_tags(world, monkeypatch, role, plan):
    """The shared customer carries tag A on store A's relation and tag B on store B's. A store A
    viewer filtering on tag B must not find it (the match would tell them store B tagged it), nor
    lose it by excluding tag B; the admin's filters count every relation's tags."""
    from siyu.customers import selectors

    for name, value in TAG_PLANS[plan].items():
        monkeypatch.setattr(selectors, name, value)
    i = world.ids
    shared = Customer.objects.get(id=i["shared"])
    user = world.users[role]
    scoped = role != Profile.ADMIN

    def everywhere(v):
        return {"rest": v, "console": v, "fragment": v, "export": v}

    a, b = i["tag_a"], i["tag_b"]
    assert _listed(user, shared, [a], "any") == everywhere(True)
    assert _listed(user, shared, [b], "any") == everywhere(not scoped)
    assert _listed(user, shared, [a, b], "any") == everywhere(True)
    assert _listed(user, shared, [a, b], "all") == everywhere(not scoped)
    assert _listed(user, shared, [b], "all") == everywhere(not scoped)
    assert _listed(user, shared, [b], "none") == everywhere(scoped)
    assert _listed(user, shared, [a], "none") == everywhere(False)
    # FollowTag.employee repeats the relation's employee, as every writer (the sync here) sets it
    assert not FollowTag.objects.exclude(employee_id=F("relation__employee_id")).exists()


# --- defect 3: on-job transfers only move the handover's customers within scope -------------------
def _transfer_calls() -> int:
    return ApiCall.objects.filter(path__contains="transfer_customer").count()


def test_onjob_api_refuses_customers_outside_the_handover_or_scope(world):
    i = world.ids
    manager = api_for(world.users[Profile.STORE_MANAGER])
    handovers, calls = Handover.objects.count(), _transfer_calls()
    for xs in ([i["only_b_x"]], [i["shared_x"], i["only_b_x"]], [i["only_a2_x"]], ["wo_no_such_customer"]):
        r = manager.send(
            "POST", "/transfers/onjob", {"handover_userid": i["a1"], "takeover_userid": i["a2"], "external_userids": xs}
        )
        assert r.status_code == 422, r.content
        detail = r.json()["detail"]
        assert "not active customers" in detail and ONLYB_NAME not in detail and ONLYA2_NAME not in detail
    # the same answer whether the customer exists elsewhere or not at all
    a = manager.send(
        "POST",
        "/transfers/onjob",
        {"handover_userid": i["a1"], "takeover_userid": i["a2"], "external_userids": [i["only_b_x"]]},
    )
    b = manager.send(
        "POST",
        "/transfers/onjob",
        {"handover_userid": i["a1"], "takeover_userid": i["a2"], "external_userids": ["wo_x"]},
    )
    assert a.json()["detail"].replace(i["only_b_x"], "X") == b.json()["detail"].replace("wo_x", "X")
    # another employee's group
    r = manager.send(
        "POST", "/transfers/onjob", {"handover_userid": i["a1"], "takeover_userid": i["a2"], "chat_ids": [i["chat_b"]]}
    )
    assert r.status_code == 422 and GROUP_B not in r.content.decode()
    # a handover employee outside the scope
    r = manager.send(
        "POST",
        "/transfers/onjob",
        {"handover_userid": i["b1"], "takeover_userid": i["a2"], "external_userids": [i["only_b_x"]]},
    )
    assert r.status_code == 403 and ONLYB_NAME not in r.content.decode()
    assert Handover.objects.count() == handovers and _transfer_calls() == calls


def test_onjob_preview_is_scoped(world):
    i = world.ids
    manager = api_for(world.users[Profile.STORE_MANAGER])
    r = manager.send("POST", "/transfers/onjob/preview", {"external_userids": [i["shared_x"]]})
    assert r.status_code == 200 and r.json() == [
        {"external_userid": i["shared_x"], "transfers_90d": 0, "allowed": True, "message": ""}
    ]
    for xs in ([i["only_b_x"]], [i["shared_x"], i["gone_b_x"]], ["wo_no_such_customer"]):
        r = manager.send("POST", "/transfers/onjob/preview", {"external_userids": xs})
        assert r.status_code == 422 and "transfers_90d" not in r.content.decode()
    guide = api_for(world.users[Profile.GUIDE])
    r = guide.send("POST", "/transfers/onjob/preview", {"external_userids": [i["shared_x"]]})
    assert r.status_code == 403  # guides do not start transfers (the console's on-job page is not theirs either)


def test_onjob_console_drops_customers_outside_the_handover_or_scope(world):
    i = world.ids
    c = console(world.users[Profile.STORE_MANAGER])
    page = _body(c.get("/transfers/onjob/", {"handover": i["a1_id"]}))
    assert f'data-x="{i["shared_x"]}"' in page and i["only_b_x"] not in page and i["only_a2_x"] not in page
    handovers, calls = Handover.objects.count(), _transfer_calls()
    r = c.post(
        "/transfers/onjob/", {"handover": i["a1_id"], "takeover": i["a2_id"], "x": [i["only_b_x"], i["only_a2_x"]]}
    )
    assert r.status_code == 200 and "请至少选择一位客户或一个群" in _body(r)
    assert ONLYB_NAME not in _body(r)
    assert Handover.objects.count() == handovers and _transfer_calls() == calls
    assert c.get("/transfers/onjob/", {"handover": i["b1_id"]}).status_code == 403
