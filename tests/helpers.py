"""Helpers shared by the console tests of several apps (plain functions; fixtures live in
tests/conftest.py)."""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model
from django.db.models import Count
from django.test import Client

from siyu.accounts import services as accounts
from siyu.groups.models import GroupChat
from siyu.org.models import Department, Employee, EmployeeDepartment

PASSWORD = "s3cret-pass-word"
SETTINGS_PAGES = ["/settings/wecom/", "/settings/wecom/calls/", "/settings/wecom/callbacks/"]
CJK = re.compile(r"[\u3400-\u9fff\u3000-\u303f\uff00-\uffef]")


def make_user(username: str, role: str | None, **binding) -> object:
    """A console user with ``role`` (None: signed up but no role) and its scope binding."""
    if role is None:
        return get_user_model().objects.create_user(username, password=PASSWORD)
    user, _ = accounts.ensure_user(username, PASSWORD, role=role, **binding)
    return user


def client_for(user, language: str | None = None) -> Client:
    c = Client()
    c.force_login(user)
    if language:
        c.cookies["django_language"] = language
    return c


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def text_without_switcher(html: str) -> str:
    """Visible text of a page, minus the language switcher (it names 简体中文 in every language)."""
    html = re.sub(r'<form class="lang-switch".*?</form>', "", html, flags=re.DOTALL)
    html = re.sub(r"<script.*?</script>", "", html, flags=re.DOTALL)
    return re.sub(r"<[^>]+>", " ", html)


def a_guide_with_groups() -> Employee:
    """The employee who owns the most active customer groups (after a full sync)."""
    owner_id = (
        GroupChat.objects.filter(status=GroupChat.ACTIVE, owner__isnull=False)
        .values("owner_id")
        .annotate(n=Count("id"))
        .order_by("-n")
        .values_list("owner_id", flat=True)
        .first()
    )
    return Employee.objects.get(id=owner_id)


def org_tree() -> dict[str, Employee]:
    """A small org written straight into the database (no emulator): HQ (1) above East (2, order
    10) and West (4, order 20); Store (3) below East. Employees by userid: ``boss`` (HQ's leader),
    ``east``, ``store``, ``west``, ``gone`` (Store, left the company) and ``ph`` (a placeholder
    seen before the org sync, in no department)."""
    hq = Department.objects.create(id=1, name="HQ", path="/1/", depth=0)
    east = Department.objects.create(id=2, name="East", parent=hq, parentid=1, order=10, path="/1/2/", depth=1)
    Department.objects.create(id=3, name="Store", parent=east, parentid=2, path="/1/2/3/", depth=2)
    Department.objects.create(id=4, name="West", parent=hq, parentid=1, order=20, path="/1/4/", depth=1)
    homes = {"boss": 1, "east": 2, "store": 3, "west": 4, "gone": 3}
    people = {}
    for userid, dept in homes.items():
        status = Employee.STATUS_LEFT if userid == "gone" else Employee.STATUS_ACTIVE
        e = Employee.objects.create(userid=userid, name=userid.title(), status=status, contact_enabled=True)
        EmployeeDepartment.objects.create(employee=e, department_id=dept, is_leader=userid == "boss")
        people[userid] = e
    people["ph"] = Employee.objects.create(userid="ph", placeholder=True)
    return people
