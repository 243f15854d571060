"""Sign-in, sign-out, roles and data scopes in the console: Django's test client against the real
database."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from siyu.accounts import selectors as account_selectors
from siyu.accounts import services as accounts
from siyu.accounts.models import Profile
from siyu.wecom.models import WeComSettings
from tests.helpers import PASSWORD, SETTINGS_PAGES, client_for, make_user

# the WeCom settings cache is emptied around every test
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_config")]


# --- sign-in, sign-out, roles ---------------------------------------------------------------
def test_anonymous_users_are_sent_to_the_login_page():
    c = Client()
    for url in ["/", "/overview/health/", *SETTINGS_PAGES]:
        r = c.get(url)
        assert r.status_code == 302
        assert r["Location"].startswith("/accounts/login/?next=")
    r = c.post("/settings/wecom/test/")
    assert r.status_code == 302 and r["Location"].startswith("/accounts/login/")


def test_an_expired_session_sends_htmx_panels_to_the_login_page_as_a_whole():
    r = Client().get("/overview/health/", HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="http://testserver/?x=1")
    assert r.status_code == 200 and r.content == b""
    assert r["HX-Redirect"] == "/accounts/login/?next=%2F%3Fx%3D1"


def test_role_required_mixin_for_class_based_views(rf):
    from django.contrib.auth.models import AnonymousUser
    from django.core.exceptions import PermissionDenied
    from django.http import HttpResponse
    from django.views import View

    from siyu.accounts.permissions import RoleRequiredMixin

    class Page(RoleRequiredMixin, View):
        roles = (Profile.ADMIN, Profile.OPERATOR)

        def get(self, request):
            return HttpResponse("ok")

    request = rf.get("/x/")
    request.user = AnonymousUser()
    assert Page.as_view()(request)["Location"] == "/accounts/login/?next=/x/"
    request.user = make_user("op", Profile.OPERATOR)
    assert Page.as_view()(request).content == b"ok"
    request.user = make_user("guide", Profile.GUIDE, wecom_userid="u1")
    with pytest.raises(PermissionDenied):
        Page.as_view()(request)


def test_login_page_speaks_chinese_even_to_an_english_browser():
    r = Client().get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert r.status_code == 200
    body = r.content.decode()
    assert "登录控制台" in body and 'lang="zh-CN"' in body


def test_login_with_the_right_password_and_with_a_wrong_one(admin):
    c = Client()
    r = c.post("/accounts/login/", {"username": "admin", "password": "nope"})
    assert r.status_code == 200
    assert "用户名或密码不正确。" in r.content.decode()
    r = c.post(
        "/accounts/login/?next=/settings/wecom/",
        {"username": "admin", "password": PASSWORD, "next": "/settings/wecom/"},
    )
    assert r.status_code == 302 and r["Location"] == "/settings/wecom/"
    assert c.get("/").status_code == 200
    # an already signed-in user is sent on from the login page
    assert c.get("/accounts/login/").status_code == 302


def test_login_refuses_a_redirect_to_another_site(admin):
    c = Client()
    r = c.post("/accounts/login/", {"username": "admin", "password": PASSWORD, "next": "https://evil.example/"})
    assert r.status_code == 302 and r["Location"] == "/"


def test_logout_is_a_post_and_ends_the_session(admin_client):
    assert admin_client.get("/").status_code == 200
    r = admin_client.post("/accounts/logout/")
    assert r.status_code == 302 and r["Location"] == "/accounts/login/"
    assert admin_client.get("/").status_code == 302


def test_createadmin_is_idempotent_and_resets_the_password():
    out = StringIO()
    call_command("createadmin", "--username", "boss", "--password", "first-pass", stdout=out)
    call_command("createadmin", "--username", "boss", "--password", "second-pass", stdout=out)
    assert "created" in out.getvalue() and "updated" in out.getvalue()
    User = get_user_model()
    assert User.objects.filter(username="boss").count() == 1
    user = User.objects.get(username="boss")
    assert user.check_password("second-pass") and not user.check_password("first-pass")
    assert account_selectors.role_of(user) == Profile.ADMIN
    assert Profile.objects.filter(user=user).count() == 1


def test_createadmin_needs_a_password():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("createadmin", "--username", "boss", "--password", "")


def test_roles_and_data_scopes():
    manager = make_user("manager", Profile.STORE_MANAGER, department_id=12)
    guide = make_user("guide", Profile.GUIDE, wecom_userid="zhangsan")
    operator = make_user("op", Profile.OPERATOR)
    nobody = make_user("nobody", None)
    assert account_selectors.data_scope(manager) == account_selectors.DataScope(department_id=12)
    assert account_selectors.data_scope(guide) == account_selectors.DataScope(wecom_userid="zhangsan")
    assert account_selectors.data_scope(operator).everything
    assert account_selectors.data_scope(nobody).nothing
    superuser = get_user_model().objects.create_superuser("root", password=PASSWORD)
    assert account_selectors.role_of(superuser) == Profile.ADMIN


def test_a_store_manager_needs_a_department_and_a_guide_a_userid():
    from django.core.exceptions import ValidationError

    user = make_user("x", None)
    with pytest.raises(ValidationError):
        accounts.assign_role(user, Profile.STORE_MANAGER)
    with pytest.raises(ValidationError):
        accounts.assign_role(user, Profile.GUIDE)
    with pytest.raises(ValidationError):
        accounts.assign_role(user, "king")
    assert not Profile.objects.filter(user=user).exists()


@pytest.mark.parametrize(
    "role,binding",
    [(Profile.OPERATOR, {}), (Profile.STORE_MANAGER, {"department_id": 3}), (Profile.GUIDE, {"wecom_userid": "lisi"})],
)
def test_settings_pages_are_admin_only(role, binding):
    c = client_for(make_user("someone", role, **binding))
    assert c.get("/").status_code == 200
    for url in [*SETTINGS_PAGES, "/overview/health/", "/settings/wecom/callbacks/1/"]:
        r = c.get(url)
        assert r.status_code == 403, url
        assert "此页面仅限以下角色访问：管理员" in r.content.decode()
    assert c.post("/settings/wecom/", {"corp_id": "wwhacker"}).status_code == 403
    assert c.post("/settings/wecom/test/").status_code == 403
    assert c.post("/settings/wecom/callbacks/1/retry/").status_code == 403
    assert not WeComSettings.objects.exists()


def test_a_user_without_a_role_gets_403_everywhere():
    c = client_for(make_user("norole", None))
    r = c.get("/")
    assert r.status_code == 403
    assert "此账号尚未分配角色" in r.content.decode()
