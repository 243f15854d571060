"""Group welcome templates (入群欢迎语素材) against the emulator's group_welcome_template/*: the
console's list, create, edit, delete with one attachment, the REST endpoints, and a group code that
picks a template from the library (or, as before, creates one from its text)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from siyu.channels.groupcodes import services
from siyu.channels.models import GroupCode, GroupWelcomeTemplate
from siyu.sync.services import run_full_sync
from siyu.wecom import gateway
from tests.sim.helpers import employee, png_bytes

APPID = "wx8bd80126147dfa01"


def _remote(t):
    return gateway.contact().external_contact.get_group_welcome_template(t.template_id)


def _form(name, text, row=None):
    data = {"name": name, "text": text, "notify": "on", "att-INITIAL_FORMS": "0", "att-MIN_NUM_FORMS": "0"}
    data["att-MAX_NUM_FORMS"] = "9"
    data["att-TOTAL_FORMS"] = "1" if row else "0"
    for k, v in (row or {}).items():
        data[f"att-0-{k}"] = v
    return data


def test_console_crud_with_each_kind_of_attachment(wecom_sim, admin_client):
    r = admin_client.post(
        "/channels/groups/welcomes/",
        _form(
            "会员群欢迎",
            "欢迎 %NICKNAME% 入群",
            {"msgtype": "image", "ORDER": "1", "upload": SimpleUploadedFile("a.png", png_bytes(), "image/png")},
        ),
    )
    assert r.status_code == 302, r.content.decode()[:3000]
    t = GroupWelcomeTemplate.objects.get()
    assert t.template_id and t.attachment["msgtype"] == "image"
    remote = _remote(t)
    assert remote["text"]["content"] == "欢迎 %NICKNAME% 入群" and remote["image"]["pic_url"].startswith("http")
    page = admin_client.get("/channels/groups/welcomes/").content.decode()
    assert "会员群欢迎" in page and 'data-testid="phone-preview"' in page

    # edit: a mini-program instead of the image
    r = admin_client.post(
        f"/channels/groups/welcomes/{t.id}/",
        _form(
            "会员群欢迎（新）",
            "欢迎",
            {
                "msgtype": "miniprogram",
                "ORDER": "1",
                "title": "会员中心",
                "appid": APPID,
                "page": "pages/member/index",
                "upload": SimpleUploadedFile("c.png", png_bytes(), "image/png"),
            },
        ),
    )
    assert r.status_code == 302, r.content.decode()[:3000]
    t.refresh_from_db()
    remote = _remote(t)
    assert t.name == "会员群欢迎（新）" and remote["miniprogram"]["appid"] == APPID and "image" not in remote

    # edit: the attachment removed (WeCom's edit would keep it: the template is written anew)
    old_id = t.template_id
    r = admin_client.post(f"/channels/groups/welcomes/{t.id}/", _form("只有文字", "欢迎入群"))
    assert r.status_code == 302
    t.refresh_from_db()
    assert t.template_id != old_id and t.attachment == {}
    assert _remote(t)["text"] == {"content": "欢迎入群"} and "miniprogram" not in _remote(t)
    with pytest.raises(gateway.WeComAPIError):
        gateway.contact().external_contact.get_group_welcome_template(old_id)

    # two attachments: a form error (a template takes one)
    two = _form("两个附件", "x", {"msgtype": "link", "ORDER": "1", "title": "a", "url": "https://a.example.com"})
    two.update({"att-TOTAL_FORMS": "2", "att-1-msgtype": "link", "att-1-ORDER": "2", "att-1-title": "b"})
    two["att-1-url"] = "https://b.example.com"
    r = admin_client.post("/channels/groups/welcomes/", two)
    assert r.status_code == 200 and "附件最多 1 个" in r.content.decode()
    # more than 3000 bytes of text
    r = admin_client.post("/channels/groups/welcomes/", _form("长", "好" * 1001))
    assert r.status_code == 200 and GroupWelcomeTemplate.objects.count() == 1

    # delete: gone from WeCom and from the list
    tid = t.template_id
    r = admin_client.post(f"/channels/groups/welcomes/{t.id}/delete/")
    assert r.status_code == 302 and not GroupWelcomeTemplate.objects.exists()
    with pytest.raises(gateway.WeComAPIError):
        gateway.contact().external_contact.get_group_welcome_template(tid)


def test_rest_crud_with_stored_media(wecom_sim, admin_client):
    up = admin_client.post(
        "/api/v1/media", {"kind": "image", "media": SimpleUploadedFile("cover.png", png_bytes(), "image/png")}
    )
    assert up.status_code == 201, up.content
    cover = up.json()["id"]
    bad = admin_client.post("/api/v1/media", {"kind": "image", "media": SimpleUploadedFile("x.png", b"nope-not-png")})
    assert bad.status_code == 400
    body = {
        "name": "REST 欢迎",
        "text": "hi",
        "attachment": {
            "msgtype": "miniprogram",
            "miniprogram": {"title": "商城", "appid": APPID, "page": "pages/index", "media": cover},
        },
    }
    r = admin_client.post("/api/v1/group-welcome-templates", body, content_type="application/json")
    assert r.status_code == 201, r.content
    pk = r.json()["id"]
    assert _remote(GroupWelcomeTemplate.objects.get(id=pk))["miniprogram"]["title"] == "商城"
    assert [t["id"] for t in admin_client.get("/api/v1/group-welcome-templates").json()] == [pk]
    body["text"] = "hello"
    body["attachment"] = {"msgtype": "link", "link": {"title": "t", "url": "https://a.example.com"}}
    r = admin_client.put(f"/api/v1/group-welcome-templates/{pk}", body, content_type="application/json")
    assert r.status_code == 200 and r.json()["attachment"]["msgtype"] == "link"
    body["attachment"] = {"msgtype": "image", "image": {"media": 10**6}}
    r = admin_client.put(f"/api/v1/group-welcome-templates/{pk}", body, content_type="application/json")
    assert r.status_code == 422
    assert admin_client.delete(f"/api/v1/group-welcome-templates/{pk}").status_code == 204
    assert admin_client.get(f"/api/v1/group-welcome-templates/{pk}").status_code == 404


def test_group_code_picks_a_template_or_makes_one_from_text(wecom_sim):
    chat = wecom_sim.control("group/create", {"owner": employee(wecom_sim), "name": "新品群"})
    link = {"msgtype": "link", "link": {"title": "新品", "url": "https://a.example.com"}}
    t = services.create_template("新品群欢迎", "欢迎！", link)
    code = services.create_group_code("新品码", chat_ids=[chat["chat_id"]], welcome_template=t)
    assert code.welcome_template == t and code.template_id == t.template_id
    old = services.create_group_code("旧方式", chat_ids=[chat["chat_id"]], welcome_text="欢迎 %NICKNAME%")
    made = GroupWelcomeTemplate.objects.get(id=old.welcome_template_id)
    assert made.name == "旧方式" and old.template_id == made.template_id and _remote(made)["text"]["content"]
    services.delete_template(t)
    assert GroupCode.objects.get(id=code.id).template_id == ""


def test_group_code_page_offers_the_templates_by_name(wecom_sim, transactional_db, admin_client):
    chat = wecom_sim.control("group/create", {"owner": employee(wecom_sim), "name": "页面群"})["chat_id"]
    assert run_full_sync().status == "done"  # the group picker offers synced groups only
    t = services.create_template("门店群欢迎", "欢迎来到门店群")
    page = admin_client.get("/channels/groups/").content.decode()
    assert f'<option value="{t.id}">门店群欢迎</option>' in page
    r = admin_client.post(
        "/channels/groups/", {"name": "门店群码", "chat_ids": chat, "auto_create": "on", "welcome_template": str(t.id)}
    )
    assert r.status_code == 302, r.content.decode()[:2000]
    code = GroupCode.objects.get(name="门店群码")
    assert code.welcome_template_id == t.id and code.template_id == t.template_id
    assert "门店群欢迎" in admin_client.get("/channels/groups/").content.decode()
    bad = admin_client.post("/channels/groups/", {"name": "x", "chat_ids": chat, "welcome_template": "999999"})
    assert bad.status_code == 200 and not GroupCode.objects.filter(name="x").exists()
