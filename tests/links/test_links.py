"""Trackable links: signed short codes, the redirect that stores every click (the Django view and
the ASGI fast path), and clicks published once as ``link_clicked`` events on the customer's profile."""

from __future__ import annotations

import asyncio

import pytest
from django.utils import timezone

from siyu.commerce.models import Event
from siyu.customers.models import Customer, FollowRelation
from siyu.links import services
from siyu.links.models import Click, Link
from siyu.profiles import services as profile_services
from siyu.profiles.models import ProfileKey
from tests.helpers import org_tree


def a_link(**kw) -> tuple[Link, str]:
    path = services.make_link(
        kw.pop("target", "https://shop.example.com/新品?a=1&b=2"), employee_userid="store", title="秋冬新品", **kw
    )
    code = path.removeprefix(services.PATH)
    return Link.objects.get(id=services.link_id_of(code)), code


@pytest.mark.django_db
def test_codes_are_signed():
    link, code = a_link()
    assert services.link_id_of(code) == link.id
    forged = code[:-1] + ("A" if code[-1] != "A" else "B")
    assert services.link_id_of(forged) is None
    assert services.link_id_of(services.code_of(link.id + 1)[:-6] + code[-6:]) is None
    for junk in ("", "x", "!!!!!!!!", "0" * 40):
        assert services.link_id_of(junk) is None


@pytest.mark.django_db
def test_the_redirect_stores_the_click(client):
    link, code = a_link()
    r = client.get(f"/l/{code}", HTTP_USER_AGENT="MicroMessenger/8.0")
    assert r.status_code == 302
    assert r["Location"] == "https://shop.example.com/%E6%96%B0%E5%93%81?a=1&b=2"
    assert r["Cache-Control"].startswith("max-age=0") or "no-cache" in r["Cache-Control"]
    click = Click.objects.get()
    assert click.link_id == link.id and click.user_agent == "MicroMessenger/8.0" and not click.published
    bad = client.get(f"/l/{code[:-2]}zz")
    assert bad.status_code == 404 and "链接无效" in bad.content.decode()
    assert Click.objects.count() == 1


@pytest.mark.django_db
def test_clicks_become_profile_events_once():
    people = org_tree()
    customer = Customer.objects.create(external_userid="wmClicker", name="林小姐")
    FollowRelation.objects.create(customer=customer, employee=people["store"], added_at=timezone.now())
    profile_services.link_backfill()
    person = ProfileKey.objects.get(customer=customer).profile_id
    link, _code = a_link(external_userid="wmClicker", material_id=7)
    group_link, _ = a_link(chat_id="wrGroup")
    services.record_click(link.id, "ua")
    services.record_click(link.id, "ua")
    services.record_click(group_link.id, "ua")
    assert services.publish_clicks() == 3
    events = Event.objects.filter(profile_id=person, type__code="link_clicked")
    assert events.count() == 2
    assert events.first().props["title"] == "秋冬新品" and events.first().props["material_id"] == 7
    assert services.publish_clicks() == 0
    Click.objects.update(published=False)  # a crash before the mark: published again, not doubled
    services.publish_clicks()
    assert Event.objects.filter(type__code="link_clicked").count() == 2


@pytest.mark.django_db(transaction=True)
def test_the_asgi_fast_path_redirects_after_the_click_commits():
    from asgiref.testing import ApplicationCommunicator

    from siyu.asgi import application

    link, code = a_link()

    async def get(path: str) -> tuple[int, dict[bytes, bytes], bytes]:
        scope = {
            "type": "http",
            "method": "GET",
            "path": path,
            "query_string": b"",
            "headers": [(b"user-agent", b"MicroMessenger")],
        }
        comm = ApplicationCommunicator(application, scope)
        await comm.send_input({"type": "http.request", "body": b""})
        start = await comm.receive_output(5)
        body = await comm.receive_output(5)
        return start["status"], dict(start["headers"]), body["body"]

    status, headers, _ = asyncio.run(get(f"/l/{code}"))
    assert status == 302 and headers[b"location"].startswith(b"https://shop.example.com/%E6%96%B0")
    assert Click.objects.filter(link_id=link.id).count() == 1  # committed before the answer
    status, _, body = asyncio.run(get("/l/notacode000"))
    assert status == 404 and "链接无效" in body.decode()
