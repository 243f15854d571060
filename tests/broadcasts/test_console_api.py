"""Console pages and REST API of broadcasts (Django test client): compose with attachments,
estimate partial, draft/edit/copy, detail with the funnel, exports, scope, hostile input."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from siyu.accounts import services as accounts
from siyu.accounts.services import create_api_token
from siyu.broadcasts.models import Broadcast, Media
from siyu.core.models import Timer
from tests.broadcasts.helpers import busiest_tag, png_bytes, sync_product
from tests.conftest import point_product_at


@pytest.fixture
def admin_client(sim, transactional_db, client):
    point_product_at(sim)
    sync_product()
    user, _ = accounts.ensure_user("bc-admin", "pass-12345678", role="admin")
    client.force_login(user)
    client.user = user
    return client


def test_compose_draft_edit_copy_send_and_detail(admin_client):
    c = admin_client
    tag = busiest_tag(min_customers=3)
    assert c.get(reverse("broadcasts:new")).status_code == 200
    data = {
        "kind": "customer",
        "name": "<script>x</script>",
        "text": "你好 {员工姓名}",
        "tags": [str(tag.id)],
        "tag_mode": "any",
        "link_title": "活动",
        "link_url": "https://example.com/a",
        "op": "draft",
    }
    r = c.post(reverse("broadcasts:estimate"), data)
    assert r.status_code == 200 and b'data-testid="estimate-recipients"' in r.content
    data["images"] = SimpleUploadedFile("a.png", png_bytes(), content_type="image/png")
    r = c.post(reverse("broadcasts:new"), data)
    assert r.status_code == 302
    b = Broadcast.objects.get()
    assert b.status == Broadcast.DRAFT and [a["type"] for a in b.attachments] == ["image", "link"]
    assert Media.objects.count() == 1
    page = c.get(reverse("broadcasts:detail", args=[b.id])).content.decode()
    assert "<script>x</script>" not in page and "&lt;script&gt;" in page
    assert 'data-chart="funnel-data"' in page
    # edit keeps the attachments; copy makes a new draft
    r = c.post(
        reverse("broadcasts:edit", args=[b.id]), {**{k: v for k, v in data.items() if k != "images"}, "name": "改名"}
    )
    assert r.status_code == 302
    b.refresh_from_db()
    assert b.name == "改名" and len(b.attachments) == 2
    r = c.post(reverse("broadcasts:action", args=[b.id, "copy"]))
    assert Broadcast.objects.count() == 2
    r = c.post(reverse("broadcasts:action", args=[b.id, "send"]))
    b.refresh_from_db()
    assert b.status == Broadcast.SCHEDULED and Timer.objects.filter(kind="broadcasts.start").count() == 1
    assert c.post(reverse("broadcasts:edit", args=[b.id]), data).status_code == 302  # not editable any more
    assert c.get(reverse("broadcasts:list")).status_code == 200
    for what in ("employees", "recipients"):
        assert c.get(reverse("broadcasts:export", args=[b.id, what])).status_code == 200


def test_too_many_attachments_and_oversized_text_are_refused(admin_client):
    c = admin_client
    data = {"kind": "customer", "name": "x", "text": "字" * 1500, "op": "draft"}  # 4,500 bytes
    r = c.post(reverse("broadcasts:new"), data)
    assert r.status_code == 200 and Broadcast.objects.count() == 0
    data = {
        "kind": "customer",
        "name": "x",
        "text": "hi",
        "op": "draft",
        "images": [SimpleUploadedFile(f"{i}.png", png_bytes(), content_type="image/png") for i in range(10)],
    }
    r = c.post(reverse("broadcasts:new"), data)
    assert r.status_code == 200 and Broadcast.objects.count() == 0


def test_rest_api_create_estimate_send_and_scope(admin_client):
    c = admin_client
    tag = busiest_tag(min_customers=3)
    _, token = create_api_token(c.user, "t")
    h = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    r = c.post(
        "/api/v1/broadcasts/", {"name": "api", "text": "hi", "tags": [tag.id]}, content_type="application/json", **h
    )
    assert r.status_code == 201, r.content
    bid = r.json()["id"]
    est = c.get(f"/api/v1/broadcasts/{bid}/estimate", **h).json()
    assert est["recipients"] > 0
    r = c.post(f"/api/v1/broadcasts/{bid}/send", **h)
    assert r.status_code == 200 and r.json()["status"] == "scheduled"
    assert c.post(f"/api/v1/broadcasts/{bid}/send", **h).status_code == 409
    assert (
        c.post("/api/v1/broadcasts/", {"name": "", "text": "x"}, content_type="application/json", **h).status_code
        == 422
    )
    # a guide sees only their own broadcasts
    guide, _ = accounts.ensure_user("bc-guide", "pass-12345678", role="guide", wecom_userid="nobody")
    _, gt = create_api_token(guide, "g")
    assert c.get(f"/api/v1/broadcasts/{bid}", HTTP_AUTHORIZATION=f"Bearer {gt}").status_code == 404
    assert c.get("/api/v1/broadcasts/", HTTP_AUTHORIZATION=f"Bearer {gt}").json() == []
