"""Console sign-in with WeCom (扫码登录) against the emulator's web-login page: the member who
"scans" is signed in with the role their departments give (leader → store manager of that
department, customer contact → guide), an admin's binding wins, cancel and forged states are
refused with what to do, and password sign-in stays."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests

from siyu.accounts.models import Profile
from siyu.org.models import EmployeeDepartment
from siyu.sync.services import run_full_sync
from tests.conftest import point_product_at
from tests.helpers import messages_of


@pytest.fixture
def synced(sim, transactional_db):
    point_product_at(sim)
    assert run_full_sync().status == "done"
    sim.control("client/config", {"trusted_domains": ["127.0.0.1", "localhost", "testserver"]})
    return sim


def scan(client, userid: str | None, next_url: str = ""):
    """The login page's button, the member's scan on WeCom's page, and the way back."""
    start = client.get("/accounts/wecom/" + (f"?next={next_url}" if next_url else ""))
    assert start.status_code == 302
    login_page = start["Location"]
    assert urlsplit(login_page).path == "/wwlogin/sso/login"
    browser = requests.Session()
    assert "扫码登录" in browser.get(login_page).text
    data = {"userid": userid} if userid else {"cancel": "1"}
    back = browser.post(login_page, data=data, allow_redirects=False)
    assert back.status_code == 302
    loc = urlsplit(back.headers["Location"])
    assert loc.path == "/accounts/wecom/callback/"
    return client.get(f"{loc.path}?{loc.query}")


def test_a_guide_scans_and_is_signed_in_with_their_scope(synced, client):
    leaders = EmployeeDepartment.objects.filter(is_leader=True).values("employee_id")
    guide = (
        EmployeeDepartment.objects.exclude(employee_id__in=leaders)
        .filter(employee__contact_enabled=True, employee__status=1)
        .select_related("employee")
        .first()
        .employee
    )
    r = scan(client, guide.userid, next_url="/customers/")
    assert r.status_code == 302 and r["Location"] == "/customers/"
    profile = Profile.objects.get(wecom_userid=guide.userid)
    assert profile.role == "guide"
    page = client.get("/customers/")
    assert page.status_code == 200


def test_a_department_leader_is_its_store_manager(synced, client):
    leader = EmployeeDepartment.objects.filter(is_leader=True, employee__status=1).select_related("employee").first()
    r = scan(client, leader.employee.userid)
    assert r.status_code == 302 and r["Location"] == "/"
    p = Profile.objects.get(wecom_userid=leader.employee.userid)
    assert p.role == "store_manager" and p.department_id == leader.department_id


def test_cancel_and_forged_state_are_refused(synced, client):
    r = scan(client, None)
    assert r.status_code == 302 and r["Location"] == "/accounts/login/"
    assert "已取消扫码登录。" in messages_of(client.get("/accounts/login/"))
    forged = client.get("/accounts/wecom/callback/?code=abc&state=nope")
    assert forged.status_code == 302 and "重新扫码" in " ".join(messages_of(client.get("/accounts/login/")))


def test_unconfigured_wecom_sends_back_to_the_password_form(client, db, settings):
    from siyu.wecom import config
    from siyu.wecom.models import WeComSettings

    WeComSettings.objects.all().delete()
    settings.WECOM = {**settings.WECOM, "CORP_ID": "", "AGENT_ID": ""}
    config.invalidate()
    try:
        r = client.get("/accounts/wecom/")
        assert r.status_code == 302 and r["Location"] == "/accounts/login/"
        page = client.get("/accounts/login/").content.decode()
        assert "请用账号密码登录" in page and 'data-testid="login-submit"' in page
    finally:
        config.invalidate()
