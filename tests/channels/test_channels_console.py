"""Acquisition console and REST: pages render with escaped user data, REST creates a code with a
contact way in the emulator, analytics export, guides see only their own adds, store codes route
to the store's guides, posters and PNG sizes, lost customers counted."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.test import Client

from siyu.accounts import services as accounts
from siyu.accounts.models import Profile
from siyu.channels import images, selectors, services
from siyu.channels.models import ChannelAdd, ChannelCode
from siyu.org import selectors as org_selectors
from siyu.org.models import Employee
from siyu.sync.services import run_full_sync
from tests.conftest import point_product_at
from tests.customers.test_customers_console import client_for
from tests.sim.helpers import employee

PASSWORD = "pw-Channels-123"


@pytest.fixture
def world(sim, transactional_db):
    point_product_at(sim)
    run_full_sync(workers=2)
    return sim


def _add(code, userid, ext, days_ago=0, lost=False):
    at = services.local() - timedelta(days=days_ago)
    return ChannelAdd.objects.create(
        code=code,
        userid=userid,
        external_userid=ext,
        added_at=at,
        day=at.date(),
        lost_at=at + timedelta(hours=2) if lost else None,
    )


def test_rest_create_console_pages_export_and_scope(world):
    a, b = employee(world), employee(world)
    run_full_sync(workers=2)
    admin_user, _ = accounts.ensure_user("ch-admin", PASSWORD, role=Profile.ADMIN)
    token = accounts.create_api_token(admin_user, "t")[1]
    c = Client()
    h = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    r = c.post(
        "/api/v1/channel-codes",
        data={
            "name": "<script>x</script>",
            "users": [a, b],
            "daily_cap": 3,
            "schedule": [{"days": [0, 1, 2, 3, 4, 5, 6], "start": "00:00", "end": "23:59", "users": [a]}],
            "welcome_text": "hi {nickname}",
        },
        content_type="application/json",
        **h,
    )
    assert r.status_code == 201, r.content
    code = ChannelCode.objects.get(id=r.json()["id"])
    way = world.call("externalcontact/get_contact_way", {"config_id": code.config_id})["contact_way"]
    assert way["state"] == f"ch:{code.id}" and way["user"] == [a]
    assert (
        c.post(
            "/api/v1/channel-codes", data={"name": "x", "users": ["bad id!"]}, content_type="application/json", **h
        ).status_code
        == 422
    )

    _add(code, a, "wmX1", days_ago=8)
    _add(code, a, "wmX2", days_ago=8, lost=True)
    _add(code, b, "wmX3", days_ago=0)
    admin = client_for("ch-admin", Profile.ADMIN)
    for url in (
        "/channels/",
        f"/channels/{code.id}/",
        "/channels/new/",
        f"/channels/{code.id}/edit/",
        "/channels/groups/",
        "/channels/welcomes/",
        "/channels/analytics/?dim=employee",
    ):
        resp = admin.get(url)
        assert resp.status_code == 200, url
        assert b"<script>x</script>" not in resp.content
    rows = selectors.analytics(
        selectors_scope(), services.local().date() - timedelta(days=10), services.local().date(), dimension="day"
    )["rows"]
    old = next(r for r in rows if r["new"] == 2)
    assert old["lost"] == 1 and old["net"] == 1 and old["retention_1d"] == 50.0 and old["retention_7d"] == 50.0
    exp = admin.get(
        "/channels/analytics/export.csv?dim=code&start=" + (services.local().date() - timedelta(days=10)).isoformat()
    )
    table = list(csv.reader(io.StringIO(exp.content.decode("utf-8-sig"))))
    assert table[1][0] == "'<script>x</script>"[1:] or table[1][0].endswith("</script>")
    assert table[1][1:4] == ["3", "1", "2"]

    # a guide sees only their own adds
    guide = client_for("ch-guide", Profile.GUIDE, wecom_userid=b)
    api = guide.get(
        "/api/v1/channel-analytics?dimension=employee&start="
        + (services.local().date() - timedelta(days=10)).isoformat()
    )
    assert [r["key"] for r in api.json()["rows"]] == [b]
    assert guide.get("/channels/new/").status_code == 403


def selectors_scope():
    from siyu.accounts.selectors import DataScope

    return DataScope(everything=True)


def test_store_code_routes_to_store_guides_and_downloads(world):
    dept = Employee.objects.filter(main_department__isnull=False).values_list("main_department_id", flat=True).first()
    members = org_selectors.contact_member_userids(dept)
    assert members
    code = services.create_code({"name": "门店码", "kind": ChannelCode.STORE, "department_id": dept, "daily_cap": 0})
    way = world.call("externalcontact/get_contact_way", {"config_id": code.config_id})["contact_way"]
    assert sorted(way["user"]) == sorted(members[: services.MAX_USERS])
    from PIL import Image

    for size, px in images.SIZES.items():
        assert Image.open(io.BytesIO(images.qr_png(code, size))).size == (px, px)
    png, drawn = images.poster_png(code)
    assert Image.open(io.BytesIO(png)).size == (images.POSTER_W, images.POSTER_H)
    assert drawn == bool(images.cjk_font_path())  # Chinese text needs a CJK font; omitted otherwise
