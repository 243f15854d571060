"""Fast layer (database only): the welcome attachments editor — every attachment kind WeCom's
send_welcome_msg takes, its limits, and uploads checked by content (a bad upload is a form error,
never a 500) — plus the console pages that use it and their phone-frame preview."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from siyu.accounts.selectors import DataScope
from siyu.channels import forms, services
from siyu.channels.models import DefaultWelcome
from siyu.wecom.models import StoredMedia
from tests.helpers import org_tree
from tests.sim.helpers import png_bytes

pytestmark = pytest.mark.django_db
EVERYTHING = DataScope(everything=True)


@pytest.fixture(autouse=True)
def _org(db):
    """The employees the forms' pickers check the chosen account against."""
    return org_tree()


MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64
APPID = "wx8bd80126147dfa01"


def _post(rows: list[dict], text: str = "你好 {nickname}", **extra) -> tuple[dict, dict]:
    data = {
        "userid": "east",
        "text": text,
        "att-TOTAL_FORMS": str(len(rows)),
        "att-INITIAL_FORMS": "0",
        "att-MIN_NUM_FORMS": "0",
        "att-MAX_NUM_FORMS": "9",
        **extra,
    }
    files = {}
    for i, row in enumerate(rows):
        for k, v in row.items():
            if k == "upload":
                files[f"att-{i}-upload"] = v
            else:
                data[f"att-{i}-{k}"] = v
        data.setdefault(f"att-{i}-ORDER", str(i + 1))
    return data, files


def _png(name="a.png", size=0):
    return SimpleUploadedFile(name, png_bytes(size), content_type="image/png")


def _form(rows, **kw):
    data, files = _post(rows, **kw)
    return forms.DefaultWelcomeForm(data, files, scope=EVERYTHING)


def test_every_kind_is_accepted_and_stored_in_order():
    form = _form(
        [
            {"msgtype": "image", "upload": _png()},
            {"msgtype": "link", "title": "春季上新", "url": "https://shop.example.com/a", "desc": "全场八折"},
            {
                "msgtype": "miniprogram",
                "title": "会员中心",
                "appid": APPID,
                "page": "pages/index/index",
                "upload": _png("cover.png"),
            },
            {"msgtype": "video", "upload": SimpleUploadedFile("v.mp4", MP4, content_type="video/mp4")},
            {
                "msgtype": "file",
                "upload": SimpleUploadedFile("价目表.pdf", b"%PDF-1.4 hello", content_type="application/pdf"),
            },
        ]
    )
    assert form.is_valid(), (form.errors, [f.errors for f in form.attachments_formset])
    atts = form.welcome_attachments("op")
    assert [a["msgtype"] for a in atts] == ["image", "link", "miniprogram", "video", "file"]
    assert atts[1]["link"] == {"title": "春季上新", "url": "https://shop.example.com/a", "desc": "全场八折"}
    mp = atts[2]["miniprogram"]
    assert mp["appid"] == APPID and StoredMedia.objects.get(id=mp["media"]).kind == "image"
    assert StoredMedia.objects.get(id=atts[4]["file"]["media"]).name == "价目表.pdf"
    row = services.save_default_welcome("hi", userid="east", attachments=atts)
    assert row.welcome["attachments"] == atts


def test_reorder_and_delete():
    form = _form(
        [
            {"msgtype": "link", "title": "一", "url": "https://a.example.com", "ORDER": "2"},
            {"msgtype": "link", "title": "二", "url": "https://b.example.com", "ORDER": "1"},
            {"msgtype": "link", "title": "三", "url": "https://c.example.com", "ORDER": "3", "DELETE": "on"},
        ]
    )
    assert form.is_valid(), form.errors
    assert [a["link"]["title"] for a in form.welcome_attachments()] == ["二", "一"]


@pytest.mark.parametrize(
    ("row", "field"),
    [
        (
            {"msgtype": "image", "upload": SimpleUploadedFile("x.png", b"GIF89a not a png at all", "image/png")},
            "upload",
        ),
        ({"msgtype": "image", "upload": SimpleUploadedFile("x.png", b"\x89PNG", "image/png")}, "upload"),  # ≤ 5 bytes
        ({"msgtype": "image", "upload": _png("big.png", 2 * 1024 * 1024 + 10)}, "upload"),  # > 2 MB
        ({"msgtype": "image"}, "upload"),  # no file
        ({"msgtype": "video", "upload": SimpleUploadedFile("v.mp4", b"not an mp4 video file", "video/mp4")}, "upload"),
        ({"msgtype": "file", "upload": SimpleUploadedFile("f.bin", b"x" * (20 * 1024 * 1024 + 1))}, "upload"),
        ({"msgtype": "link", "title": "t", "url": "javascript:alert(1)"}, "url"),
        ({"msgtype": "link", "url": "https://a.example.com"}, "title"),
        ({"msgtype": "link", "title": "长" * 43, "url": "https://a.example.com"}, "title"),  # 129 bytes > 128
        ({"msgtype": "miniprogram", "title": "t", "appid": "notanappid", "page": "p", "upload": _png()}, "appid"),
        ({"msgtype": "miniprogram", "title": "t", "appid": APPID, "page": "p"}, "upload"),  # no cover
        ({"msgtype": "miniprogram", "title": "长" * 22, "appid": APPID, "page": "p", "upload": _png()}, "title"),
        ({"msgtype": "miniprogram", "title": "t", "appid": APPID, "page": "a b", "upload": _png()}, "page"),
        ({"msgtype": "sticker"}, "msgtype"),
        ({"msgtype": "image", "stored": "999999"}, "upload"),  # someone else's / unknown stored file
    ],
)
def test_bad_attachments_are_form_errors(row, field):
    form = _form([row])
    assert not form.is_valid()
    assert field in form.attachments_formset.forms[0].errors


def test_at_most_nine_and_text_or_attachment():
    rows = [{"msgtype": "link", "title": f"t{i}", "url": "https://a.example.com"} for i in range(10)]
    form = _form(rows)
    assert not form.is_valid()
    assert not _form([], text="").is_valid()  # neither text nor attachment
    assert _form([{"msgtype": "link", "title": "t", "url": "https://a.example.com"}], text="").is_valid()
    assert not _form([], text="好" * 1334).is_valid()  # 4002 bytes > 4000


def test_edit_keeps_stored_media_without_a_new_upload():
    form = _form([{"msgtype": "image", "upload": _png()}])
    assert form.is_valid()
    atts = form.welcome_attachments()
    pk = atts[0]["image"]["media"]
    again = _form([{"msgtype": "image", "stored": str(pk), "stored_name": "a.png"}])
    assert again.is_valid(), again.attachments_formset.errors
    assert again.welcome_attachments()[0]["image"]["media"] == pk


def test_default_welcome_page_saves_attachments_and_previews(admin_client):
    data, files = _post(
        [{"msgtype": "miniprogram", "title": "会员中心", "appid": APPID, "page": "pages/index", "upload": _png()}]
    )
    r = admin_client.post("/channels/welcomes/", {**data, **files})
    assert r.status_code == 302, r.content.decode()[:2000]
    row = DefaultWelcome.objects.get()
    assert row.welcome["attachments"][0]["msgtype"] == "miniprogram"
    page = admin_client.get(f"/channels/welcomes/?edit={row.id}").content.decode()
    assert 'data-testid="phone-preview"' in page and "会员中心" in page
    assert "data-att-editor" in page and "wecom/media/" in page  # the stored cover is shown, by the console


def test_bad_upload_on_the_page_is_a_form_error_not_a_500(admin_client):
    data, files = _post(
        [{"msgtype": "image", "upload": SimpleUploadedFile("x.png", b"<script>x</script>", "image/png")}]
    )
    r = admin_client.post("/channels/welcomes/", {**data, **files})
    assert r.status_code == 200 and "JPG 或 PNG" in r.content.decode()
    assert not DefaultWelcome.objects.exists()


def test_media_image_view_serves_only_images_to_console_users(admin_client, client):
    from siyu.wecom.media import services as media

    img = media.store("image", "a.png", png_bytes())
    f = media.store("file", "a.txt", b"hello world")
    r = admin_client.get(f"/settings/wecom/media/{img.id}/")
    assert r.status_code == 200 and r["Content-Type"] == "image/png"
    assert admin_client.get(f"/settings/wecom/media/{f.id}/").status_code == 404
    assert client.get(f"/settings/wecom/media/{img.id}/").status_code in (302, 403)


def test_a_post_without_the_editor_keeps_the_attachments():
    link = {"msgtype": "link", "link": {"title": "t", "url": "https://a.example.com"}}
    form = forms.DefaultWelcomeForm({"userid": "east", "text": "hi"}, attachments=[link], scope=EVERYTHING)
    assert form.is_valid(), form.errors
    assert form.welcome_attachments() == [link]
    assert forms.DefaultWelcomeForm({"userid": "east", "text": ""}, scope=EVERYTHING).is_valid() is False


def test_a_tampered_management_form_is_a_form_error():
    data, files = _post([{"msgtype": "link", "title": "t", "url": "https://a.example.com"}])
    data["att-TOTAL_FORMS"] = "5000"
    form = forms.DefaultWelcomeForm(data, files, scope=EVERYTHING)
    assert not form.is_valid() and form.non_field_errors()
