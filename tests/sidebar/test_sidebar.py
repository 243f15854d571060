"""The sidebar's server side against the emulator: WeCom OAuth sign-in (state, single-use code,
roles from WeCom), JS-SDK signatures the emulator accepts, the data scope of the panels, and the
tag and remark edits written to WeCom."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from siyu.accounts.models import Profile
from siyu.customers.models import CustomerEvent, FollowRelation, Tag
from siyu.org.models import Employee, EmployeeDepartment
from siyu.profiles import services as profile_services
from siyu.sync.services import run_full_sync
from tests.browser.test_sidebar_browser import follow_of
from tests.conftest import point_product_at

HOST = "testserver"


@pytest.fixture
def synced(sim, transactional_db):
    point_product_at(sim)
    assert run_full_sync().status == "done"
    profile_services.link_backfill()
    sim.control("client/config", {"trusted_domains": ["127.0.0.1", "localhost", HOST]})
    return sim


def sign_in(client, sim, userid: str):
    first = client.get("/sidebar/")
    assert first.status_code == 302
    authorize = urlsplit(first["Location"])
    assert authorize.path == "/connect/oauth2/authorize"
    q = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    assert q["redirect_uri"] == f"http://{HOST}/sidebar/oauth/" and q["scope"] == "snsapi_base"
    code = sim.control("client/code", {"userid": userid, "redirect_uri": q["redirect_uri"]})["code"]
    return client.get(f"/sidebar/oauth/?code={code}&state={q['state']}"), code, q["state"]


def guide_relation() -> FollowRelation:
    leaders = EmployeeDepartment.objects.filter(is_leader=True).values("employee_id")
    return (
        FollowRelation.objects.filter(status=FollowRelation.ACTIVE, employee__contact_enabled=True)
        .exclude(employee_id__in=leaders)
        .select_related("customer", "employee")
        .order_by("id")
        .first()
    )


def test_oauth_sign_in_maps_the_member_and_the_code_is_single_use(synced, client):
    rel = guide_relation()
    r, code, state = sign_in(client, synced, rel.employee.userid)
    assert r.status_code == 302 and r["Location"] == "/sidebar/"
    profile = Profile.objects.get(wecom_userid=rel.employee.userid)
    assert profile.role == "guide" and not profile.user.has_usable_password()
    assert client.get("/sidebar/").status_code == 200
    # the same code again (a replayed redirect): refused, with what to do
    again = client.get(f"/sidebar/oauth/?code={code}&state={state}")
    assert again.status_code == 400 and "重新打开" in again.content.decode()


def test_a_department_leader_becomes_its_store_manager(synced, client):
    leader = EmployeeDepartment.objects.filter(is_leader=True, employee__status=1).select_related("employee").first()
    assert leader is not None
    r, _, _ = sign_in(client, synced, leader.employee.userid)
    assert r.status_code == 302
    profile = Profile.objects.get(wecom_userid=leader.employee.userid)
    assert profile.role == "store_manager" and profile.department_id is not None


def test_an_admin_bound_account_keeps_its_role(synced, client):
    from siyu.accounts import services as account_services

    rel = guide_relation()
    user, _ = account_services.ensure_user(
        "op-lin", "op-pass-123456", role="operator", wecom_userid=rel.employee.userid
    )
    sign_in(client, synced, rel.employee.userid)
    assert Profile.objects.filter(wecom_userid=rel.employee.userid).count() == 1
    assert Profile.objects.get(user=user).role == "operator"


def test_a_member_without_customer_contact_is_refused(synced, client):
    userid = synced.control("employee/create", {"name": "行政小王", "department": [1]})["user"]["userid"]
    synced.control("employee/set", {"userid": userid, "contact_enabled": False})
    assert run_full_sync().status == "done"
    assert not Employee.objects.get(userid=userid).contact_enabled
    r, _, _ = sign_in(client, synced, userid)
    assert r.status_code == 403 and "客户联系" in r.content.decode()
    assert not Profile.objects.filter(wecom_userid=userid).exists()


def test_a_forged_state_is_refused(synced, client):
    rel = guide_relation()
    client.get("/sidebar/")
    code = synced.control(
        "client/code", {"userid": rel.employee.userid, "redirect_uri": f"http://{HOST}/sidebar/oauth/"}
    )["code"]
    r = client.get(f"/sidebar/oauth/?code={code}&state=forged")
    assert r.status_code == 400 and not Profile.objects.filter(wecom_userid=rel.employee.userid).exists()


def test_signatures_verify_in_the_emulator(synced, client):
    rel = guide_relation()
    sign_in(client, synced, rel.employee.userid)
    url = f"http://{HOST}/sidebar/?a=1"
    signed = client.get("/sidebar/signature", {"url": url + "#frag"}).json()
    assert signed["config"]["appId"] == synced.corp_id and signed["agentConfig"]["agentid"] == "1000002"
    assert "getCurExternalContact" in signed["agentConfig"]["jsApiList"]
    # what the emulated client checks, as a page at that URL in that member's chat
    import requests

    browser = requests.Session()
    browser.post(synced.base_url + "/client/", data={"userid": rel.employee.userid})
    where = {"chat_type": "single", "chat_key": rel.customer.external_userid}
    for kind in ("config", "agentConfig"):
        answer = browser.post(
            synced.base_url + "/client/api/register", json={"kind": kind, "params": signed[kind], "url": url, **where}
        ).json()
        assert answer["errMsg"] == f"{kind}:ok", answer
    assert client.get("/sidebar/signature", {"url": "http://evil.example.com/x"}).status_code == 400
    assert "ticket" not in json.dumps(signed)  # tickets never leave the server


def test_the_panel_shows_only_the_members_own_customers(synced, client):
    rel = guide_relation()
    stranger = (
        FollowRelation.objects.exclude(employee=rel.employee)
        .exclude(customer__relations__employee=rel.employee)
        .select_related("customer")
        .first()
    )
    sign_in(client, synced, rel.employee.userid)
    own = client.get(f"/sidebar/customer/{rel.customer.external_userid}/")
    assert own.status_code == 200 and 'data-testid="sidebar-customer"' in own.content.decode()
    refused = client.get(f"/sidebar/customer/{stranger.customer.external_userid}/")
    assert refused.status_code == 404 and "不在你的客户范围内" in refused.content.decode()
    assert client.get("/sidebar/customer/wmNoSuchCustomer/").status_code == 404


def test_tags_and_remark_are_written_to_wecom(synced, client):
    rel = guide_relation()
    ext, userid = rel.customer.external_userid, rel.employee.userid
    sign_in(client, synced, userid)
    tags = list(Tag.objects.filter(deleted=False, group__deleted=False).order_by("id")[:2])
    shown = [str(t.id) for t in tags]
    r = client.post(f"/sidebar/customer/{ext}/tags", {"tag": shown[:1], "shown": shown}, HTTP_HX_REQUEST="true")
    assert r.status_code == 200 and "标签已保存" in r.content.decode()
    follow = follow_of(synced, ext, userid)
    assert tags[0].tag_id in {t.get("tag_id") for t in follow.get("tags", [])}
    assert tags[1].tag_id not in {t.get("tag_id") for t in follow.get("tags", [])}

    too_long = client.post(f"/sidebar/customer/{ext}/remark", {"remark": "长" * 21, "description": ""})
    assert too_long.status_code == 400 and "最多 20 个字" in too_long.content.decode()
    ok = client.post(f"/sidebar/customer/{ext}/remark", {"remark": "<b>VIP</b>", "description": "喜欢铂金"})
    assert ok.status_code == 200 and "&lt;b&gt;VIP&lt;/b&gt;" in ok.content.decode()
    follow = follow_of(synced, ext, userid)
    assert follow["remark"] == "<b>VIP</b>" and follow["description"] == "喜欢铂金"
    assert CustomerEvent.objects.filter(customer=rel.customer, kind="remark_changed").exists()


def test_without_sign_in_nothing_is_shown(synced, client):
    rel = guide_relation()
    assert client.get(f"/sidebar/customer/{rel.customer.external_userid}/").status_code == 401
    assert client.post(f"/sidebar/customer/{rel.customer.external_userid}/tags", {}).status_code in (401, 403)
    assert client.get("/sidebar/signature", {"url": f"http://{HOST}/sidebar/"}).status_code == 401


def test_tasks_in_the_panel_and_the_workbench(synced, client):
    import datetime as dt

    from django.utils import timezone

    from siyu.guidetasks import services as task_services
    from siyu.guidetasks.models import Task

    rel = guide_relation()
    rule = task_services.save_rule(
        task_services.RuleInput(
            kind="campaign",
            name="回访",
            params={},
            customer_ids=[rel.customer_id],
            deadline=timezone.now() + dt.timedelta(days=1),
        )
    )
    task_services.generate(rule_ids=[rule.id])
    task = Task.objects.get(rule=rule)
    assert task.employee_userid == rel.employee.userid
    first = client.get("/sidebar/tasks/")
    assert first.status_code == 302 and "/connect/oauth2/authorize" in first["Location"]
    sign_in(client, synced, rel.employee.userid)
    bench = client.get("/sidebar/tasks/").content.decode()
    assert "回访" in bench and 'data-testid="sidebar-task"' in bench
    panel = client.get(f"/sidebar/customer/{rel.customer.external_userid}/").content.decode()
    assert "待办任务" in panel
    bad = client.post(f"/sidebar/tasks/{task.id}/done", {"outcome": "sent"})
    assert bad.status_code == 400 and "请选择跟进结果" in bad.content.decode()
    ok = client.post(
        f"/sidebar/tasks/{task.id}/done", {"outcome": "no_answer", "external_userid": rel.customer.external_userid}
    )
    assert ok.status_code == 200 and "任务已完成" in ok.content.decode()
    task.refresh_from_db()
    assert task.status == "done" and task.outcome == "no_answer"


def test_a_poster_carries_the_guides_own_code(synced, client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from siyu.channels.models import ChannelCode
    from siyu.materials import services as material_services
    from siyu.wecom.media import services as media_services
    from tests.sim.helpers import png_bytes

    bg = media_services.store("image", "bg.png", SimpleUploadedFile("bg.png", png_bytes()).read(), "image/png")
    poster = material_services.save_material(
        material_services.MaterialInput(kind="poster", title="Autumn", media=bg.id)
    )
    rel = guide_relation()
    sign_in(client, synced, rel.employee.userid)
    where = {"item": "material", "id": poster.id, "chat_type": "single", "chat_key": rel.customer.external_userid}
    first = client.post("/sidebar/prepare", where).json()
    assert first["payload"]["msgtype"] == "image" and first["payload"]["image"]["mediaid"]
    code = ChannelCode.objects.get(folder="导购个人码")
    assert code.users == [rel.employee.userid] and code.config_id  # made in WeCom on first use
    second = client.post("/sidebar/prepare", where).json()
    assert second["payload"]["image"]["mediaid"] == first["payload"]["image"]["mediaid"]  # reused
    assert ChannelCode.objects.filter(folder="导购个人码").count() == 1
