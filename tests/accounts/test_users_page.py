"""Fast layer (no emulator): the users and roles page (设置 › 用户与角色) and its services: create,
role and scope by name, disable/enable, password reset, and the last-admin rules."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from siyu.accounts import selectors, services
from siyu.accounts.models import Profile
from siyu.org.models import Department, Employee
from tests.helpers import PASSWORD, client_for, make_user

pytestmark = pytest.mark.django_db
STRONG = "Qz7-harbour-lantern"


@pytest.fixture
def org():
    root = Department.objects.create(id=1, name="总部", path="/1/", depth=0)
    store = Department.objects.create(id=12, name="上海静安店", parentid=1, parent=root, path="/1/12/", depth=1)
    Employee.objects.create(userid="xujuan", name="许娟", main_department=store)
    Employee.objects.create(userid="li1", name="李明", main_department=store)
    Employee.objects.create(userid="li2", name="李明", main_department=root)
    return store


def test_create_user_validates_name_password_and_scope(org):
    user = services.create_user("manager1", STRONG, role=Profile.STORE_MANAGER, department_id=12)
    assert selectors.data_scope(user) == selectors.DataScope(department_id=12)
    assert not user.is_superuser
    with pytest.raises(ValidationError):
        services.create_user("MANAGER1", STRONG, role=Profile.OPERATOR)  # taken, case-insensitively
    with pytest.raises(ValidationError):
        services.create_user("weak", "12345678", role=Profile.OPERATOR)
    with pytest.raises(ValidationError):
        services.create_user("bad name<", STRONG, role=Profile.OPERATOR)
    with pytest.raises(ValidationError):
        services.create_user("nostore", STRONG, role=Profile.STORE_MANAGER)
    assert not get_user_model().objects.filter(username__in=["weak", "nostore"]).exists()


def test_any_role_may_be_bound_to_an_employee(org):
    op = services.create_user("op", STRONG, role=Profile.OPERATOR, wecom_userid="xujuan")
    assert op.siyu_profile.wecom_userid == "xujuan"
    assert selectors.data_scope(op) == selectors.DataScope(everything=True)
    row = next(r for r in selectors.user_rows() if r["user"].id == op.id)
    assert row["bound_employee"] == "许娟"


def test_the_last_admin_cannot_be_disabled_or_demoted_and_nobody_disables_themselves(org):
    admin = make_user("boss", Profile.ADMIN)
    with pytest.raises(ValidationError):
        services.set_active(admin, False, actor=admin)
    with pytest.raises(ValidationError):
        services.set_active(admin, False)
    with pytest.raises(ValidationError):
        services.change_role(admin, Profile.OPERATOR, actor=admin)
    second = services.create_user("boss2", STRONG, role=Profile.ADMIN)
    assert second.is_superuser
    services.change_role(admin, Profile.OPERATOR, actor=second)
    admin.refresh_from_db()
    assert selectors.role_of(admin) == Profile.OPERATOR and not admin.is_superuser
    with pytest.raises(ValidationError):
        services.set_active(second, False, actor=admin)  # the last admin again
    services.set_active(admin, False, actor=second)
    admin.refresh_from_db()
    assert not admin.is_active and selectors.role_of(admin) is None


def test_reset_password_generates_a_strong_one_or_validates_the_given_one(org):
    user = make_user("g", Profile.GUIDE, wecom_userid="xujuan")
    new = services.set_password(user)
    assert len(new) >= 12
    user.refresh_from_db()
    assert user.check_password(new)
    with pytest.raises(ValidationError):
        services.set_password(user, "password")


def test_user_rows_show_names_not_ids(org):
    make_user("m", Profile.STORE_MANAGER, department_id=12)
    make_user("g", Profile.GUIDE, wecom_userid="xujuan")
    rows = {r["user"].username: r for r in selectors.user_rows()}
    assert rows["m"]["scope_label"] == "上海静安店"
    assert rows["g"]["scope_label"] == "许娟"


# --- console ------------------------------------------------------------------------------------
def test_the_page_is_admin_only(org):
    c = client_for(make_user("op", Profile.OPERATOR))
    assert c.get("/settings/users/").status_code == 403
    assert c.post("/settings/users/", {"username": "x", "role": "admin"}).status_code == 403


def test_admin_creates_a_store_manager_by_store_name_and_a_guide_by_employee_name(org):
    c = client_for(make_user("admin", Profile.ADMIN))
    page = c.get("/settings/users/").content.decode()
    assert "上海静安店" in page and "用户与角色" in page
    r = c.post("/settings/users/", {"username": "jingan", "password": "", "role": "store_manager", "department": "12"})
    assert r.status_code == 200
    assert r["Cache-Control"] == "no-store"
    body = r.content.decode()
    assert 'data-testid="new-password-value"' in body
    user = get_user_model().objects.get(username="jingan")
    assert selectors.data_scope(user) == selectors.DataScope(department_id=12)

    r = c.post("/settings/users/", {"username": "guide1", "password": STRONG, "role": "guide", "employee": "许娟"})
    assert r.status_code == 200
    assert selectors.data_scope(get_user_model().objects.get(username="guide1")).wecom_userid == "xujuan"
    # ambiguous and unknown names are form errors, not 500s
    r = c.post("/settings/users/", {"username": "guide2", "password": STRONG, "role": "guide", "employee": "李明"})
    assert "有多位成员叫" in r.content.decode()
    r = c.post("/settings/users/", {"username": "guide2", "password": STRONG, "role": "guide", "employee": "nobody"})
    assert "找不到" in r.content.decode()
    r = c.post("/settings/users/", {"username": "m2", "password": STRONG, "role": "store_manager", "department": "x"})
    assert r.status_code == 200 and "店长必须选择" not in r.content.decode()
    r = c.post("/settings/users/", {"username": "m2", "password": "123", "role": "king"})
    assert r.status_code == 200
    assert not get_user_model().objects.filter(username__in=["guide2", "m2"]).exists()


def test_admin_changes_role_resets_password_and_disables(org):
    admin = make_user("admin", Profile.ADMIN)
    c = client_for(admin)
    target = make_user("op", Profile.OPERATOR)
    url = f"/settings/users/{target.id}/"
    assert c.get(url).status_code == 200
    r = c.post(url, {"action": "role", "role": "guide", "employee": "许娟"})
    assert r.status_code == 302
    assert selectors.data_scope(get_user_model().objects.get(id=target.id)).wecom_userid == "xujuan"
    page = c.get(url).content.decode()
    assert 'value="许娟"' in page  # the name, not the account
    r = c.post(url, {"action": "password", "password": ""})
    assert r.status_code == 200 and r["Cache-Control"] == "no-store"
    target.refresh_from_db()
    assert not target.check_password(PASSWORD)
    assert c.post(url, {"action": "disable"}).status_code == 302
    target.refresh_from_db()
    assert not target.is_active
    # the admin cannot disable themselves
    r = c.post(f"/settings/users/{admin.id}/", {"action": "disable"}, follow=True)
    assert "不能停用自己的账号" in r.content.decode()
    admin.refresh_from_db()
    assert admin.is_active
    assert c.post(url, {"action": "explode"}).status_code == 400
    assert c.get("/settings/users/999999/").status_code == 404


def test_api_docs_redirects_and_is_in_the_admin_menu(org):
    c = client_for(make_user("admin", Profile.ADMIN))
    r = c.get("/api/docs")
    assert r.status_code == 302 and r["Location"] == "/api/v1/docs"
    assert c.get("/api/docs/")["Location"] == "/api/v1/docs"
    assert 'href="/api/docs"' in c.get("/").content.decode()
    op = client_for(make_user("op", Profile.OPERATOR))
    assert 'href="/api/docs"' not in op.get("/").content.decode()
