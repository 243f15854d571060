"""Fast layer (no emulator): each role's data scope and label, from the database alone."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from siyu.accounts import selectors
from siyu.accounts.models import Profile
from tests.helpers import make_user

pytestmark = pytest.mark.django_db


def test_a_scope_is_nothing_only_without_any_binding():
    assert selectors.DataScope().nothing
    assert not selectors.DataScope(everything=True).nothing
    assert not selectors.DataScope(department_id=0).nothing  # department 0 is still a department
    assert not selectors.DataScope(wecom_userid="u1").nothing


@pytest.mark.parametrize(
    "role,binding,scope",
    [
        (Profile.ADMIN, {}, selectors.DataScope(everything=True)),
        (Profile.OPERATOR, {}, selectors.DataScope(everything=True)),
        (Profile.STORE_MANAGER, {"department_id": 7}, selectors.DataScope(department_id=7)),
        (Profile.GUIDE, {"wecom_userid": "lisi"}, selectors.DataScope(wecom_userid="lisi")),
    ],
)
def test_each_role_gets_its_scope_and_label(role, binding, scope):
    user = make_user(f"u-{role}", role, **binding)
    assert selectors.role_of(user) == role
    assert selectors.data_scope(user) == scope
    assert selectors.role_label(role)


def test_users_without_a_role_see_nothing():
    assert selectors.role_of(AnonymousUser()) is None
    assert selectors.data_scope(AnonymousUser()).nothing
    assert selectors.data_scope(make_user("norole", None)).nothing
    assert selectors.role_label(None) == "" and selectors.role_label("king") == ""
