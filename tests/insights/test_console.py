"""The insights console (RFM page, lifecycle funnel, settings) and REST: scope, forms, roles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.template.loader import render_to_string

from siyu.accounts.models import Profile as Account
from siyu.commerce.models import Order
from siyu.customers.models import Customer, FollowRelation
from siyu.insights import services
from siyu.insights.models import Run, Settings
from siyu.profiles.models import Profile, ProfileKey
from tests.helpers import client_for, make_user, org_tree

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def buyer(name: str, employee, amounts: list[str], days: list[int]) -> Profile:
    p = Profile.objects.create(name=name)
    for i, (a, d) in enumerate(zip(amounts, days, strict=True)):
        Order.objects.create(
            source="pos", order_no=f"{name}-{i}", profile=p, paid_at=NOW - timedelta(days=d), amount=Decimal(a)
        )
    if employee is not None:
        c = Customer.objects.create(external_userid=f"wm-{name}", name=name)
        FollowRelation.objects.create(customer=c, employee=employee, added_at=NOW - timedelta(days=400))
        ProfileKey.objects.create(profile=p, kind="external_userid", value=c.external_userid, customer=c)
    return p


@pytest.fixture
def shop():
    people = org_tree()
    # the store's manager sees the customers of Store (3) and below; West's are not theirs
    ps = {
        "s1": buyer("s1", people["store"], ["100"] * 5, [1, 3, 5, 7, 9]),
        "s2": buyer("s2", people["store"], ["50"], [300]),
        "w1": buyer("w1", people["west"], ["900", "900"], [2, 20]),
        "w2": buyer("w2", people["west"], ["20"], [100]),
        "x": buyer("x", None, [], []),
    }
    services.recompute_now(NOW)
    return people, ps


def test_rfm_page_counts_only_the_persons_in_scope(shop, admin_client):
    html = admin_client.get("/insights/rfm/").content.decode()
    total = sum(int(html.split(f'data-testid="rfm-count-{k}">')[1].split("<")[0]) for k in _classes())
    assert total == 4
    manager = make_user("mgr", Account.STORE_MANAGER, department_id=3)
    page = client_for(manager).get("/insights/rfm/")
    assert page.status_code == 200
    html = page.content.decode()
    counts = {k: int(html.split(f'data-testid="rfm-count-{k}">')[1].split("<")[0]) for k in _classes()}
    assert sum(counts.values()) == 2
    # the REST answer agrees, per class
    mine = client_for(manager).get("/api/v1/cdp/rfm").json()
    assert mine["scored"] == 2
    assert {c["key"]: c["count"] for c in mine["classes"]} == counts


def test_rfm_classes_link_to_the_segment_pages_once_they_exist(shop, admin_client, monkeypatch):
    from siyu.insights import views

    routed = {"/segments/new/": False, "/segments/quick/": False}
    monkeypatch.setattr(views, "_routed", lambda path: routed[path])
    html = admin_client.get("/insights/rfm/").content.decode()
    # no dead links before the segments console is installed (its menu entry may be there)
    assert "/segments/new/" not in html and "/segments/quick/" not in html
    routed.update({"/segments/new/": True, "/segments/quick/": True})
    html = admin_client.get("/insights/rfm/").content.decode()
    # each class links to its customers and offers a saved segment
    assert 'href="/segments/new/?rfm_class=important_value"' in html
    assert 'action="/segments/quick/"' in html and 'name="rfm_class" value="normal_retain"' in html
    html = admin_client.get("/insights/lifecycle/").content.decode()
    assert 'href="/segments/new/?stage=loyal"' in html


def _classes() -> list[str]:
    return [
        "important_value",
        "important_develop",
        "important_keep",
        "important_retain",
        "normal_value",
        "normal_develop",
        "normal_keep",
        "normal_retain",
    ]


def test_lifecycle_page_scoped_and_with_moves(shop, admin_client):
    html = admin_client.get("/insights/lifecycle/").content.decode()
    assert 'data-testid="stage-count-loyal">1<' in html
    assert 'data-testid="stage-count-prospect">1<' in html
    assert 'data-testid="lifecycle-weeks"' in html
    guide = make_user("guide", Account.GUIDE, wecom_userid="west")
    html = client_for(guide).get("/insights/lifecycle/").content.decode()
    assert 'data-testid="stage-count-repeat">1<' in html
    assert 'data-testid="stage-count-new">1<' in html
    assert 'data-testid="stage-count-loyal">0<' in html
    assert 'data-testid="lifecycle-weeks"' not in html  # corp-wide snapshots: not for a scoped viewer


def _form(**changes) -> dict:
    data = {
        "window_days": "365",
        "scoring": "quantile",
        "r_thresholds": "",
        "f_thresholds": "",
        "m_thresholds": "",
        "loyal_orders": "4",
        "loyal_days": "30",
        "dormant_days": "180",
        "lost_days": "365",
        "high_label": "高价值",
        "high_min": "70",
        "medium_label": "中价值",
        "medium_min": "40",
        "low_label": "低价值",
        "low_min": "1",
    }
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (
            {
                "scoring": "thresholds",
                "r_thresholds": "30, 20, 60, 90",
                "f_thresholds": "1,2,3,4",
                "m_thresholds": "1,2,3,4",
            },
            "r_thresholds",
        ),
        (
            {
                "scoring": "thresholds",
                "r_thresholds": "7,30,90,180",
                "f_thresholds": "1,2,3",
                "m_thresholds": "1,2,3,4",
            },
            "f_thresholds",
        ),
        (
            {
                "scoring": "thresholds",
                "r_thresholds": "7,30,90,180",
                "f_thresholds": "1,2,3,4",
                "m_thresholds": "a,b,c,d",
            },
            "m_thresholds",
        ),
        (
            {
                "scoring": "thresholds",
                "r_thresholds": "7,30,90,180",
                "f_thresholds": "1,2,3,4",
                "m_thresholds": "-5,2,3,4",
            },
            "m_thresholds",
        ),
        ({"scoring": "thresholds"}, "r_thresholds"),
        ({"lost_days": "100"}, "lost_days"),
        ({"medium_min": "80"}, "medium_min"),
        ({"window_days": "0"}, "window_days"),
        ({"loyal_orders": "abc"}, "loyal_orders"),
    ],
)
def test_settings_form_rejects_bad_thresholds(admin_client, changes, field):
    before = services.get_settings().updated_at
    r = admin_client.post("/insights/settings/", _form(**changes))
    assert r.status_code == 200
    assert field in r.context["form"].errors
    assert services.get_settings().updated_at == before
    assert not Run.objects.exists()


def test_settings_saved_with_thresholds_queue_a_recompute(admin_client):
    r = admin_client.post(
        "/insights/settings/",
        _form(
            scoring="thresholds", r_thresholds="7,30,90,180", f_thresholds="1,2,3,5", m_thresholds="100,300,800,2000"
        ),
    )
    assert r.status_code == 302
    s = Settings.objects.get(pk=1)
    assert s.scoring == "thresholds"
    assert s.thresholds == {"r": [7, 30, 90, 180], "f": [1, 2, 3, 5], "m": [100.0, 300.0, 800.0, 2000.0]}
    assert Run.objects.filter(trigger="settings").exists()


def test_thresholds_scoring(shop):
    _people, ps = shop
    services.update_settings(
        {"scoring": "thresholds", "thresholds": {"r": [2, 5, 30, 100], "f": [1, 2, 3, 4], "m": [50, 100, 500, 1000]}},
        recompute=False,
    )
    services.recompute_now(NOW)
    m = services.Metrics.objects.get(profile_id=ps["w1"].id)
    # 2 days -> R 5; 2 orders -> F 2; 1800 yuan -> M 5
    assert (m.r, m.f, m.m) == (5, 2, 5)


def test_settings_page_roles_and_recompute_button(shop, admin_client):
    manager = make_user("mgr", Account.STORE_MANAGER, department_id=3)
    assert client_for(manager).get("/insights/settings/").status_code == 403
    operator = make_user("op", Account.OPERATOR)
    page = client_for(operator).get("/insights/settings/")
    assert page.status_code == 200
    assert 'data-testid="value-formula"' in page.content.decode()
    r = client_for(operator).post("/insights/settings/recompute/")
    assert r.status_code == 302
    assert Run.objects.filter(trigger="manual").exists()
    assert client_for(operator).get("/insights/settings/runs/").status_code == 200


def test_profile_metrics_api_and_scope(shop, admin_client):
    _people, ps = shop
    r = admin_client.get(f"/api/v1/cdp/profiles/{ps['s1'].id}/metrics")
    assert r.status_code == 200
    body = r.json()
    assert body["stage"] == "loyal" and body["orders"] == 5 and body["amount"] == "500.00"
    manager = make_user("mgr", Account.STORE_MANAGER, department_id=3)
    assert client_for(manager).get(f"/api/v1/cdp/profiles/{ps['s1'].id}/metrics").status_code == 200
    assert client_for(manager).get(f"/api/v1/cdp/profiles/{ps['w1'].id}/metrics").status_code == 403
    assert admin_client.get("/api/v1/cdp/profiles/999999/metrics").status_code == 404


def test_settings_api(admin_client):
    r = admin_client.get("/api/v1/cdp/insights/settings")
    assert r.status_code == 200
    body = r.json()
    assert body["window_days"] == 365 and [b["key"] for b in body["value_bands"]] == ["high", "medium", "low"]
    body["lost_days"] = 90  # not above dormant_days
    bad = admin_client.put("/api/v1/cdp/insights/settings", body, content_type="application/json")
    assert bad.status_code == 400
    body["lost_days"] = 400
    ok = admin_client.put("/api/v1/cdp/insights/settings", body, content_type="application/json")
    assert ok.status_code == 200 and ok.json()["lost_days"] == 400
    guide = make_user("guide", Account.GUIDE, wecom_userid="west")
    assert client_for(guide).get("/api/v1/cdp/insights/settings").status_code == 403


def test_profile_page_section_registered_with_the_persons_metrics(shop):
    from siyu.profiles import sections

    _people, ps = shop
    section = {s.key: s for s in sections.all_sections()}["rfm"]
    ctx = section.fn(ps["s1"].id, [ps["s1"].id], None)
    assert ctx is not None and ctx["metrics"]["stage"] == "loyal" and ctx["metrics"]["stage_label"] == "忠诚客"
    assert ctx["metrics"]["rfm_class_label"] and ctx["window_days"] == 365
    html = render_to_string(section.template, ctx)
    assert 'data-testid="profile-stage"' in html and "忠诚客" in html
    assert section.fn(ps["x"].id, [ps["x"].id], None)["metrics"]["stage"] == "prospect"
