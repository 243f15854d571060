"""The guide's library in the console (话术库, 素材库): scripts with variables, materials of each kind
checked as WeCom's sendChatMessage would, uploads checked by content, visibility by department."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from siyu.materials import selectors, services
from siyu.materials.models import Category, Material, Script
from tests.helpers import client_for, make_user, messages_of, org_tree
from tests.sim.helpers import png_bytes

pytestmark = pytest.mark.django_db


def test_a_script_with_variables_is_added_and_filled(admin_client):
    org_tree()
    bad = admin_client.post(
        "/library/scripts/", {"title": "问候", "content": "{nickname} 您好，我是 {guide}", "active": "on"}
    )
    assert bad.status_code == 400 and "{guide}" in bad.content.decode()
    assert not Script.objects.exists()
    r = admin_client.post(
        "/library/scripts/",
        {
            "title": "新品到店",
            "content": "{nickname} 您好，我是{store}的{employee}，秋冬新品到店了",
            "new_category": "上新",
            "departments": ["2"],
            "active": "on",
        },
        follow=True,
    )
    assert "话术已添加。" in messages_of(r)
    s = Script.objects.get()
    assert s.category.name == "上新" and s.departments == [2]
    page = admin_client.get("/library/scripts/").content.decode()
    assert "新品到店" in page and "East" in page  # the department's name, not its id
    assert services.fill(s.content, {"nickname": "林小姐", "employee": "小王", "store": "国贸店"}) == (
        "林小姐 您好，我是国贸店的小王，秋冬新品到店了"
    )


def test_visibility_follows_departments_and_their_subtree():
    people = org_tree()
    everyone = services.save_script(services.ScriptInput(title="通用", content="您好"))
    east = services.save_script(services.ScriptInput(title="华东", content="您好", departments=[2]))
    west = services.save_script(services.ScriptInput(title="华西", content="您好", departments=[4]))
    from siyu.org import selectors as org_selectors

    store_lineage = org_selectors.department_lineage(people["store"].userid)  # Store (3) is under East (2)
    assert {s.id for s in selectors.visible([everyone, east, west], store_lineage)} == {everyone.id, east.id}


def test_materials_of_each_kind_are_checked(admin_client):
    org_tree()
    post = lambda **d: admin_client.post("/library/", {"active": "on", **d})  # noqa: E731
    assert post(kind="link", title="新品", url="javascript:alert(1)").status_code == 400
    assert post(kind="miniprogram", title="商城", appid="wx123", page="pages/index").status_code == 400
    assert post(kind="image", title="海报").status_code == 400  # no file
    not_an_image = SimpleUploadedFile("a.png", b"GIF89a not a png at all", content_type="image/png")
    r = admin_client.post("/library/", {"kind": "image", "title": "海报", "upload": not_an_image, "active": "on"})
    assert r.status_code == 400 and "JPG 或 PNG" in r.content.decode()
    assert not Material.objects.exists()

    url = "https://shop.example.com/new?a=1"
    r = post(kind="link", title="秋冬新品", description="限时 8 折", url=url, tags="新品, 秋冬")
    assert r.status_code == 302
    link = Material.objects.get()
    assert link.tags == ["新品", "秋冬"] and link.url == "https://shop.example.com/new?a=1"
    image = SimpleUploadedFile("poster.png", png_bytes(), content_type="image/png")
    r = admin_client.post("/library/", {"kind": "image", "title": "海报", "upload": image, "active": "on"})
    assert r.status_code == 302
    poster = Material.objects.get(kind="image")
    assert poster.media is not None
    page = admin_client.get("/library/?q=新品").content.decode()
    rows = re.findall(r'<tr data-testid="material-row">.*?</tr>', page, re.S)
    assert len(rows) == 1 and "秋冬新品" in rows[0]


def test_editing_keeps_the_file_and_deleting_removes(admin_client):
    org_tree()
    image = SimpleUploadedFile("poster.png", png_bytes(), content_type="image/png")
    admin_client.post("/library/", {"kind": "image", "title": "海报", "upload": image, "active": "on"})
    m = Material.objects.get()
    r = admin_client.post(f"/library/{m.id}/", {"kind": "image", "title": "新海报", "active": "on"})
    assert r.status_code == 302
    m.refresh_from_db()
    assert m.title == "新海报" and m.media is not None
    admin_client.post(f"/library/{m.id}/", {"delete": "1"})
    assert not Material.objects.exists()


def test_only_operators_edit_the_library():
    people = org_tree()
    guide = client_for(make_user("g1", "guide", wecom_userid=people["store"].userid))
    assert guide.get("/library/scripts/").status_code == 403
    assert guide.post("/library/scripts/", {"title": "x", "content": "y"}).status_code == 403
    assert not Script.objects.exists() and not Category.objects.exists()


def test_a_use_is_counted_once_per_send():
    org_tree()
    s = services.save_script(services.ScriptInput(title="问候", content="您好"))
    services.record_use("script", s.id, employee_userid="store", chat_type="single", chat_key="wmX")
    services.record_use("script", s.id, employee_userid="store", chat_type="single", chat_key="wmY")
    s.refresh_from_db()
    assert s.uses == 2
    assert selectors.use_counts_by_employee("script", s.id) == [{"employee_userid": "store", "n": 2}]
    s.delete()
    with pytest.raises(services.LibraryError):
        services.record_use("script", s.id, employee_userid="store")
