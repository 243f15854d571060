"""Hostile and careless input on console pages and REST routes (issue 14, defects 4, 6 and 7).

Ids beyond the database's 64-bit range, dates out of any sane window and offsets past 2^63 are a
clear 400/422 or a form error, never a 500 (siyu.core.inputs is the one place that bounds them);
the broadcast result routes answer GET for every role; uploads meet WeCom's media limits by
content; links are http(s) only and no text holds control characters, on forms and on the API alike.
"""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from siyu.accounts import services as accounts
from siyu.accounts.models import Profile
from siyu.accounts.selectors import data_scope
from siyu.broadcasts import services as broadcast_services
from siyu.broadcasts.forms import ComposeForm
from siyu.broadcasts.models import Broadcast, Media
from siyu.channels.models import ChannelCode, DefaultWelcome
from siyu.core import inputs
from siyu.org.models import Department
from tests.broadcasts.helpers import png_bytes

BIG = str(2**63)
PASSWORD = "bad-input-pass-word"


def _user(role: str, name: str | None = None, **binding):
    return accounts.ensure_user(name or f"bad-{role}", PASSWORD, role=role, **binding)[0]


@pytest.fixture
def admin(wecom_sim):
    return _user(Profile.ADMIN)


@pytest.fixture
def console(admin):
    c = Client()
    c.force_login(admin)
    return c


class Api:
    def __init__(self, user):
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {accounts.create_api_token(user, 'bad-input')[1]}"}

    def get(self, path, **params):
        return self.client.get("/api/v1" + path, params, headers=self.headers)

    def post(self, path, body):
        return self.client.post(
            "/api/v1" + path, json.dumps(body), content_type="application/json", headers=self.headers
        )


@pytest.fixture
def api(admin):
    return Api(admin)


# --- defect 4: the seventeen 500s ------------------------------------------------------------------
CONSOLE_400 = [
    ("/groups/", {"owner": BIG}, "owner"),
    ("/groups/", {"tag": BIG}, "tag"),
    ("/channels/analytics/", {"code": BIG}, "code"),
    ("/transfers/churn/", {"employee": BIG}, "employee"),
    ("/channels/analytics/", {"end": "9999-12-31"}, "end"),
    ("/transfers/churn/", {"from": "0001-01-01"}, "from"),
]


@pytest.mark.parametrize("path,params,name", CONSOLE_400)
def test_console_query_out_of_range_is_400_naming_the_parameter(console, path, params, name):
    r = console.get(path, params)
    assert r.status_code == 400
    assert f"参数 {name} 无效" in r.content.decode()


@pytest.mark.parametrize("params", [{"added_from": "0001-01-01"}, {"added_to": "9999-12-31"}])
def test_customer_list_out_of_range_date_is_a_form_error(console, params):
    r = console.get("/customers/", params)
    assert r.status_code == 200
    assert "日期须在 1970-01-01 至 2100-12-31 之间" in r.content.decode()


API_422 = [
    ("/customers", {"added_from": "0001-01-01"}, "added_from"),
    ("/customers", {"added_to": "9999-12-31"}, "added_to"),
    ("/channel-analytics", {"end": "9999-12-31"}, "end"),
    ("/channel-analytics", {"code": BIG}, "code"),
    ("/transfers/handovers", {"offset": BIG}, "offset"),
    ("/transfers/churn", {"offset": BIG}, "offset"),
    ("/transfers/churn", {"date_from": "0001-01-01"}, "date_from"),
]


@pytest.mark.parametrize("path,params,name", API_422)
def test_api_query_out_of_range_is_422_naming_the_parameter(api, path, params, name):
    r = api.get(path, **params)
    assert r.status_code == 422, r.content
    assert name in json.dumps(r.json()["detail"])


def test_broadcast_attachment_media_id_beyond_bigint_is_422(api):
    r = api.post("/broadcasts/", {"name": "x", "text": "hi", "attachments": [{"type": "image", "media": 2**63}]})
    assert r.status_code == 422 and "media" in json.dumps(r.json()["detail"])
    assert not Broadcast.objects.exists()


@pytest.mark.parametrize(
    "body,field",
    [
        ({"name": "store", "kind": "store", "department_id": 2**63}, "department_id"),
        ({"name": "old", "users": ["zhangsan"], "valid_until": "0001-01-01T00:00:00"}, "valid_until"),
    ],
)
def test_channel_code_out_of_range_is_422(api, body, field):
    r = api.post("/channel-codes", body)
    assert r.status_code == 422 and field in json.dumps(r.json()["detail"])
    assert not ChannelCode.objects.exists()


def test_default_welcome_department_beyond_bigint_is_a_form_error(console):
    r = console.post("/channels/welcomes/", {"department_id": BIG, "text": "hi"})
    assert r.status_code == 200
    assert 'class="field-error"' in r.content.decode()
    assert not DefaultWelcome.objects.exists()


def test_ids_beyond_bigint_in_paths(console, api):
    assert console.get(f"/customers/{BIG}/").status_code == 404
    assert console.get(f"/broadcasts/{BIG}/").status_code == 404
    assert api.get(f"/customers/{BIG}").status_code == 422
    assert api.get(f"/broadcasts/{BIG}").status_code == 422
    assert api.get(f"/transfers/handovers/{BIG}").status_code == 422


# --- defect 6: GET /broadcasts/{id}/employees and /recipients ------------------------------------
ROLES = [
    (Profile.ADMIN, {}),
    (Profile.OPERATOR, {}),
    (Profile.STORE_MANAGER, {"department_id": 1}),
    (Profile.GUIDE, {"wecom_userid": "zhangsan"}),
]


@pytest.mark.parametrize("role,binding", ROLES, ids=[r for r, _ in ROLES])
def test_broadcast_result_routes_answer_get_for_every_role(wecom_sim, role, binding):
    Department.objects.get_or_create(id=1, defaults={"name": "总部"})
    user = _user(role, **binding)
    other = _user(Profile.OPERATOR, name="bad-other-operator")
    mine = broadcast_services.save_draft(
        kind=Broadcast.CUSTOMER, name="mine", text="hi", attachments=[], audience={}, scope=data_scope(user), user=user
    )
    theirs = broadcast_services.save_draft(
        kind=Broadcast.CUSTOMER,
        name="theirs",
        text="hi",
        attachments=[],
        audience={},
        scope=data_scope(other),
        user=other,
    )
    api = Api(user)
    for route in ("employees", "recipients"):
        r = api.get(f"/broadcasts/{mine.id}/{route}")
        assert r.status_code == 200, (route, r.content)
        assert r.json() == []
        # admins and operators see every broadcast; others only their own
        expected = 200 if role in (Profile.ADMIN, Profile.OPERATOR) else 404
        assert api.get(f"/broadcasts/{theirs.id}/{route}").status_code == expected
    assert api.get(f"/broadcasts/{mine.id}/recipients", state="nonsense").status_code == 422


# --- defect 7: uploads by content, http(s) links, no control characters --------------------------
AMR = b"#!AMR\n" + b"\x00" * 64
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64
EXE = b"MZ\x90\x00" + b"\x00" * 1020


@pytest.mark.parametrize(
    "kind,data,name,ok",
    [
        ("image", png_bytes(), "a.png", True),
        ("image", EXE, "a.png", False),  # a 1 KB .exe named like an image
        ("image", EXE, "a.exe", False),
        ("image", b"\xff\xd8\xff" + b"\x00" * (19 * 1024 * 1024), "big.jpg", False),  # 19 MB "image"
        ("image", b"GIF89a" + b"\x00" * 64, "a.gif", False),
        ("video", MP4, "a.mp4", True),
        ("video", EXE, "a.mp4", False),
        ("file", EXE, "setup.exe", True),  # any file ≤ 20 MB
        ("file", b"abcd", "tiny.txt", False),  # WeCom refuses files of 5 bytes or less
        ("file", b"x" * (20 * 1024 * 1024 + 1), "big.bin", False),
    ],
)
def test_media_upload_checks_content(console, kind, data, name, ok):
    r = console.post("/broadcasts/media/", {"kind": kind, "media": SimpleUploadedFile(name, data)})
    if ok:
        assert r.status_code == 200, r.content
        m = Media.objects.get(id=r.json()["id"])
        assert m.kind == kind and m.size == len(data)
    else:
        assert r.status_code == 400 and r.json()["detail"]
        assert not Media.objects.exists()


def test_check_media_limits():
    assert inputs.check_media("voice", AMR) == "audio/amr"
    with pytest.raises(inputs.MediaError):
        inputs.check_media("voice", MP4)
    with pytest.raises(inputs.MediaError):
        inputs.check_media("voice", b"#!AMR" + b"\x00" * (2 * 1024 * 1024))


def _compose(data, files=None):
    from django.utils.datastructures import MultiValueDict

    return ComposeForm({"kind": "customer", "name": "n", "tag_mode": "any", **data}, MultiValueDict(files or {}))


def test_composer_image_field_refuses_a_non_image(wecom_sim):
    form = _compose({"text": "hi"}, {"images": [SimpleUploadedFile("x.png", EXE)]})
    assert not form.is_valid() and "images" in form.errors
    form = _compose({"text": "hi"}, {"images": [SimpleUploadedFile("x.png", png_bytes())]})
    assert form.is_valid(), form.errors


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,x", "ftp://example.com/a"])
def test_link_urls_are_http_only_on_form_and_api(api, url):
    form = _compose({"text": "hi", "link_title": "t", "link_url": url})
    assert not form.is_valid() and "link_url" in form.errors
    r = api.post("/broadcasts/", {"name": "x", "attachments": [{"type": "link", "title": "t", "url": url}]})
    assert r.status_code == 422
    r = api.post(
        "/channel-codes",
        {
            "name": "x",
            "users": ["zhangsan"],
            "welcome_attachments": [{"msgtype": "link", "link": {"title": "t", "url": url}}],
        },
    )
    assert r.status_code == 422
    assert not Broadcast.objects.exists() and not ChannelCode.objects.exists()


@pytest.mark.parametrize("field", ["name", "text"])
def test_control_characters_are_refused_on_form_and_api(api, field):
    body = {"name": "ok", "text": "ok", field: "bad\x00name"}
    assert api.post("/broadcasts/", body).status_code == 422
    body = {"name": "ok", "text": "ok", field: "bad\x07bell"}
    assert api.post("/broadcasts/", body).status_code == 422
    form = _compose({"text": "ok", field: "bad\x07bell"} if field == "text" else {"text": "ok", "name": "bad\x07bell"})
    assert not form.is_valid() and field in form.errors
    assert not Broadcast.objects.exists()
    r = api.post("/channel-codes", {"name": "a\x00b", "users": ["zhangsan"]})
    assert r.status_code == 422
    assert api.post("/tags/groups", {"name": "组\x00", "tags": ["a"]}).status_code == 422
