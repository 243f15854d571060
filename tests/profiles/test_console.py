"""The profiles console and REST API: scope (a guide sees only the persons of the customers the
customer list shows them; another store's person is a 404), the 360° page with its registered
sections and hostile names escaped, custom fields (definitions, values, bad values as form errors
and 422), merge / unmerge / conflicts by hand, the persons list and its keyset pages."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.utils import timezone

from siyu.accounts import services as accounts
from siyu.accounts.models import Profile as Account
from siyu.accounts.selectors import DataScope
from siyu.customers.models import Customer, FollowRelation
from siyu.profiles import sections, selectors, services
from siyu.profiles.models import CustomField, IdentityConflict, Profile, ProfileHistory, ProfileKey
from tests.helpers import client_for, make_user, org_tree

pytestmark = pytest.mark.django_db
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
API = "/api/v1"


@pytest.fixture
def world():
    """Two stores' customers, linked: ``store`` (East/Store) follows 阿花 (whose member phone is
    known), ``west`` follows a customer with a hostile nickname."""
    people = org_tree()
    now = timezone.now()
    ours = Customer.objects.create(external_userid="wmOurs", name="阿花", avatar="https://wework.qpic.cn/a.png")
    theirs = Customer.objects.create(external_userid="wmTheirs", name=HOSTILE)
    FollowRelation.objects.create(customer=ours, employee=people["store"], added_at=now, remark="花姐")
    FollowRelation.objects.create(customer=theirs, employee=people["west"], added_at=now)
    services.link_backfill()
    services.resolve_keys([{"external_userid": "wmOurs", "phone": "13800138000", "member_no": "M1"}], source="import")
    services.upsert_members(
        [{"keys": {"member_no": "M1"}, "fields": {"member_level": "金卡", "points": 120}}], source="import"
    )
    Profile.objects.filter(id=_person("wmOurs")).update(phone="13800138000", member_no="M1")
    return {
        "people": people,
        "ours": ours,
        "theirs": theirs,
        "p_ours": _person("wmOurs"),
        "p_theirs": _person("wmTheirs"),
    }


def _person(ext: str) -> int:
    return selectors.live_id(ProfileKey.objects.get(kind="external_userid", value=ext).profile_id)


def guide_client(world, userid="store"):
    return client_for(make_user(f"g-{userid}", Account.GUIDE, wecom_userid=userid))


def operator_client():
    return client_for(make_user("op", Account.OPERATOR))


# --- scope ---------------------------------------------------------------------------------------------
def test_scope_selectors(world):
    everything = DataScope(everything=True)
    guide = DataScope(wecom_userid="store")
    assert selectors.scoped_person_ids(everything) is None
    assert selectors.scoped_person_ids(guide) == {world["p_ours"]}
    assert set(selectors.person_queryset(everything).values_list("id", flat=True)) >= {
        world["p_ours"],
        world["p_theirs"],
    }
    assert not selectors.person_queryset(DataScope()).exists()
    # a store manager of East sees its sub-department's customers
    manager = DataScope(department_id=2)
    assert selectors.scoped_person_ids(manager) == {world["p_ours"]}


def test_guide_cannot_open_another_stores_person(world):
    c = guide_client(world)
    assert c.get(f"/profiles/{world['p_ours']}/").status_code == 200
    assert c.get(f"/profiles/{world['p_theirs']}/").status_code == 404
    assert c.get(f"/profiles/{10**12}/").status_code == 404
    assert c.post(f"/profiles/{world['p_theirs']}/edit/", {"name": "x"}).status_code == 404
    listing = c.get("/profiles/").content.decode()
    assert "阿花" in listing and "onerror" not in listing
    # the API answers the same
    token = accounts.create_api_token(make_user("g-api", Account.GUIDE, wecom_userid="store"), "t")[1]
    h = {"Authorization": f"Bearer {token}"}
    assert Client().get(f"{API}/cdp/profiles/{world['p_theirs']}", headers=h).status_code == 404
    ids = [p["id"] for p in Client().get(f"{API}/cdp/profiles", headers=h).json()["items"]]
    assert ids == [world["p_ours"]]
    # guides may not merge, and the menu pages for operators are closed to them
    r = Client().post(
        f"{API}/cdp/profiles/{world['p_ours']}/merge",
        json.dumps({"other": world["p_ours"]}),
        content_type="application/json",
        headers=h,
    )
    assert r.status_code == 403
    assert c.get("/profiles/conflicts/").status_code == 403
    assert c.get("/profiles/fields/").status_code == 403


def test_phone_masked_for_scoped_viewers_unless_their_relation_shows_it(world):
    page = guide_client(world).get(f"/profiles/{world['p_ours']}/").content.decode()
    assert "138****8000" in page and "13800138000" not in page
    FollowRelation.objects.filter(customer=world["ours"]).update(remark_mobiles=["13800138000"])
    page = guide_client(world).get(f"/profiles/{world['p_ours']}/").content.decode()
    assert "13800138000" in page
    assert "13800138000" in operator_client().get(f"/profiles/{world['p_ours']}/").content.decode()


# --- the 360° page ---------------------------------------------------------------------------------------
def test_360_page_renders_sections_in_order_and_escapes_hostile_names(world):
    calls = []

    def orders(person_id, cluster, viewer):
        calls.append((person_id, cluster))
        return {"rows": [("最近订单", HOSTILE)]}

    sections.register("t_orders", "订单", order=30, template="profiles/_section_rows.html", fn=orders)
    sections.register("t_rfm", "RFM", order=20, template="profiles/_section_rows.html", fn=lambda *a: {"rows": []})
    sections.register("t_hidden", "隐藏", order=10, template="profiles/_section_rows.html", fn=lambda *a: None)
    try:
        c = operator_client()
        page = c.get(f"/profiles/{world['p_theirs']}/").content.decode()
        assert calls == [(world["p_theirs"], [world["p_theirs"]])]
        assert page.index('data-section="t_rfm"') < page.index('data-section="t_orders"')
        assert 'data-section="t_hidden"' not in page
        assert HOSTILE not in page and "&lt;script&gt;" in page and "<img src=x" not in page
        ours = c.get(f"/profiles/{world['p_ours']}/").content.decode()
        for text in ("阿花", "金卡", "120", "花姐", "wework.qpic.cn/a.png", "会员号"):
            assert text in ours
    finally:
        for k in ("t_orders", "t_rfm", "t_hidden"):
            sections._SECTIONS.pop(k, None)


def test_customer_page_links_to_its_person(world):
    c = operator_client()
    detail = c.get(f"/customers/{world['ours'].id}/").content.decode()
    assert f"/profiles/customer/{world['ours'].id}/" in detail
    r = c.get(f"/profiles/customer/{world['ours'].id}/")
    assert r.status_code == 302 and r["Location"] == f"/profiles/{world['p_ours']}/"
    assert guide_client(world).get(f"/profiles/customer/{world['theirs'].id}/").status_code in (403, 404)


def test_merged_profile_address_shows_its_person(world):
    services.merge(world["p_ours"], world["p_theirs"], operator="op")
    r = operator_client().get(f"/profiles/{world['p_theirs']}/")
    assert r.status_code == 302 and r["Location"] == f"/profiles/{world['p_ours']}/"


# --- custom fields ---------------------------------------------------------------------------------------
def test_clean_custom_value_by_type():
    text = CustomField(key="note", label="备注", type="text")
    num = CustomField(key="size", label="尺码", type="number")
    day = CustomField(key="anniv", label="纪念日", type="date")
    choice = CustomField(key="style", label="风格", type="choice", options=["简约", "复古"])
    multi = CustomField(key="likes", label="偏好", type="multi", options=["戒指", "项链", "手链"])
    ok = services.clean_custom_value
    assert ok(text, "  hi ") == "hi" and ok(text, "") is None and ok(text, None) is None
    assert ok(num, "12") == 12 and ok(num, 3.5) == 3.5 and ok(num, "1,200") == 1200
    assert ok(day, "2024-05-20") == "2024-05-20"
    assert ok(choice, "复古") == "复古"
    assert ok(multi, "手链, 戒指") == ["戒指", "手链"] and ok(multi, ["项链", "项链"]) == ["项链"]
    assert ok(multi, "戒指|项链") == ["戒指", "项链"]
    for field, bad in [
        (text, "a" * 501),
        (text, "bad\x00"),
        (text, {"x": 1}),
        (num, "abc"),
        (num, True),
        (num, "nan"),
        (num, "1e30"),
        (day, "2024-13-01"),
        (day, "1800-01-01"),
        (choice, "别的"),
        (multi, ["戒指", "耳环"]),
        (multi, [1, 2]),
    ]:
        with pytest.raises(ValueError):  # CustomValueError: what imports catch
            ok(field, bad)


def test_field_settings_page_and_profile_form(world):
    c = operator_client()
    assert c.get("/profiles/fields/").status_code == 200
    r = c.post("/profiles/fields/", {"key": "Bad Key", "label": "x", "type": "text", "order": 0})
    assert r.status_code == 400 and "field-error" in r.content.decode()
    r = c.post("/profiles/fields/", {"key": "likes", "label": "偏好", "type": "multi", "order": 1, "active": "on"})
    assert r.status_code == 400  # a multi field needs options
    r = c.post(
        "/profiles/fields/",
        {"key": "likes", "label": "偏好", "type": "multi", "options": "戒指\n项链", "order": 1, "active": "on"},
    )
    assert r.status_code == 302
    c.post("/profiles/fields/", {"key": "size", "label": "尺码", "type": "number", "order": 2, "active": "on"})
    assert list(CustomField.objects.values_list("key", flat=True)) == ["likes", "size"]
    f = CustomField.objects.get(key="likes")
    # the key and type never change
    r = c.post(
        f"/profiles/fields/{f.id}/",
        {"key": "other", "label": "喜好", "type": "text", "options": "戒指\n项链\n手链", "order": 1, "active": "on"},
    )
    assert r.status_code == 302
    f.refresh_from_db()
    assert (f.key, f.type, f.label, f.options) == ("likes", "multi", "喜好", ["戒指", "项链", "手链"])

    pid = world["p_ours"]
    base = {"name": "阿花", "member_level": "金卡", "points": "120", "gender": "0", "birthday": ""}
    r = c.post(f"/profiles/{pid}/edit/", {**base, "custom_size": "big", "custom_likes": ["戒指"]})
    assert r.status_code == 400 and "请输入数字" in r.content.decode()
    assert Profile.objects.get(id=pid).custom == {}
    r = c.post(f"/profiles/{pid}/edit/", {**base, "custom_size": "17", "custom_likes": ["戒指", "手链"]})
    assert r.status_code == 302
    assert Profile.objects.get(id=pid).custom == {"size": 17, "likes": ["戒指", "手链"]}
    h = ProfileHistory.objects.filter(profile_id=pid, kind="field_changed").latest("id")
    assert h.operator == "op" and h.detail["changes"]["custom.size"] == [None, 17]
    page = c.get(f"/profiles/{pid}/").content.decode()
    assert "戒指、手链" in page and "尺码" in page


def test_fields_and_profile_patch_over_rest(world):
    token = accounts.create_api_token(make_user("api-op", Account.OPERATOR), "t")[1]
    h = {"Authorization": f"Bearer {token}"}
    api = Client()

    def send(method, path, body=None):
        return getattr(api, method)(
            API + path, json.dumps(body) if body is not None else None, content_type="application/json", headers=h
        )

    r = send("post", "/cdp/fields", {"key": "birthday_gift", "label": "生日礼", "type": "choice", "options": ["花"]})
    assert r.status_code == 201, r.content
    fid = r.json()["id"]
    assert send("post", "/cdp/fields", {"key": "birthday_gift", "label": "x", "type": "text"}).status_code == 422
    assert send("post", "/cdp/fields", {"key": "k", "label": "x", "type": "nope"}).status_code == 422
    assert send("patch", f"/cdp/fields/{fid}", {"options": ["花", "券"]}).json()["options"] == ["花", "券"]
    assert [f["key"] for f in send("get", "/cdp/fields").json()] == ["birthday_gift"]

    pid = world["p_ours"]
    r = send("patch", f"/cdp/profiles/{pid}", {"custom": {"birthday_gift": "钻石"}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "custom", "birthday_gift"]
    r = send("patch", f"/cdp/profiles/{pid}", {"custom": {"nope": 1}})
    assert r.status_code == 422
    r = send("patch", f"/cdp/profiles/{pid}", {"name": "阿花\x00"})
    assert r.status_code == 422
    r = send(
        "patch", f"/cdp/profiles/{pid}", {"custom": {"birthday_gift": "券"}, "member_level": "钻石卡", "points": 5}
    )
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["custom"] == {"birthday_gift": "券"} and body["member_level"] == "钻石卡" and body["points"] == 5
    assert {k["kind"] for k in body["keys"]} >= {"external_userid", "phone", "member_no"}
    assert body["customer_ids"] == [world["ours"].id]
    assert ProfileHistory.objects.filter(profile_id=pid, kind="field_changed", operator="api-op").exists()
    assert send("delete", f"/cdp/fields/{fid}").status_code == 204
    assert send("get", f"/cdp/fields/{fid}").status_code == 404


# --- merge / unmerge / conflicts by hand -------------------------------------------------------------------
def test_merge_and_unmerge_from_the_console(world):
    c = operator_client()
    a, b = world["p_ours"], world["p_theirs"]
    page = c.get(f"/profiles/{a}/merge/", {"q": HOSTILE[:20]}).content.decode()
    assert "merge-keep-other" in page and "<script>alert" not in page
    r = c.post(f"/profiles/{a}/merge/do/", {"other": b, "survivor": "other"})
    assert r.status_code == 302 and r["Location"] == f"/profiles/{b}/"
    assert selectors.live_id(a) == b
    page = c.get(f"/profiles/{b}/").content.decode()
    assert 'data-testid="unmerge"' in page
    r = c.post(f"/profiles/{a}/unmerge/")
    assert r.status_code == 302 and selectors.live_id(a) == a
    assert ProfileHistory.objects.filter(profile_id=a, kind="unmerged", operator="op").exists()
    history = c.get(f"/profiles/{b}/").content.decode()
    assert "拆分出「阿花」" in history


def test_merge_refused_for_two_unionids_is_explained(world):
    Profile.objects.filter(id=world["p_ours"]).update(unionid="U-1")
    Profile.objects.filter(id=world["p_theirs"]).update(unionid="U-2")
    c = operator_client()
    page = c.get(f"/profiles/{world['p_ours']}/merge/", {"q": "script"}).content.decode()
    assert 'data-testid="merge-refusal"' in page and "不能合并" in page
    r = c.post(f"/profiles/{world['p_ours']}/merge/do/", {"other": world["p_theirs"]}, follow=True)
    assert "不能合并" in r.content.decode() and selectors.live_id(world["p_theirs"]) == world["p_theirs"]

    conflict = IdentityConflict.objects.create(
        profile_id=world["p_ours"], other_id=world["p_theirs"], reason="unionid_mismatch"
    )
    page = c.get("/profiles/conflicts/").content.decode()
    assert 'data-testid="merge-not-allowed"' in page and 'data-testid="conflict-merge"' not in page
    assert "&lt;script&gt;" in page and "<script>alert" not in page
    r = c.post(f"/profiles/conflicts/{conflict.id}/resolve/", {"action": "merge"}, follow=True)
    conflict.refresh_from_db()
    assert conflict.status == "open" and "不能合并" in r.content.decode()
    c.post(f"/profiles/conflicts/{conflict.id}/resolve/", {"action": "keep_apart"})
    conflict.refresh_from_db()
    assert conflict.status == "kept_apart" and conflict.resolved_by == "op"


def test_merge_unmerge_over_rest(world):
    token = accounts.create_api_token(make_user("api-op", Account.OPERATOR), "t")[1]
    h = {"Authorization": f"Bearer {token}"}
    a, b = world["p_ours"], world["p_theirs"]
    r = Client().post(
        f"{API}/cdp/profiles/{a}/merge", json.dumps({"other": b}), content_type="application/json", headers=h
    )
    assert r.status_code == 200 and r.json()["merged_profiles"] == [b]
    r = Client().post(
        f"{API}/cdp/profiles/{a}/merge", json.dumps({"other": b}), content_type="application/json", headers=h
    )
    assert r.status_code == 409
    r = Client().post(f"{API}/cdp/profiles/{b}/unmerge", headers=h)
    assert r.status_code == 200 and r.json()["id"] == b
    assert Client().post(f"{API}/cdp/profiles/{b}/unmerge", headers=h).status_code == 409
    conflicts = Client().get(f"{API}/cdp/conflicts", headers=h)
    assert conflicts.status_code == 200 and conflicts.json() == []


# --- list -----------------------------------------------------------------------------------------------------
def test_person_list_search_and_keyset_pages(world):
    for i in range(7):  # as the member import writes them: the member number a key, repeated in the column
        p = Profile.objects.create(name=f"会员{i}", member_no=f"MX{i}")
        ProfileKey.objects.create(profile=p, kind="member_no", value=f"MX{i}", source="import")
    everything = DataScope(everything=True)
    first = selectors.person_page(everything, limit=3)
    assert len(first.rows) == 3 and first.next_cursor and not first.prev_cursor
    second = selectors.person_page(everything, after=first.next_cursor, limit=3)
    assert second.rows[0].id < first.rows[-1].id and second.prev_cursor
    back = selectors.person_page(everything, before=second.prev_cursor, limit=3)
    assert [p.id for p in back.rows] == [p.id for p in first.rows]
    assert [p.name for p in selectors.person_page(everything, "MX3").rows] == ["会员3"]
    assert [p.id for p in selectors.person_page(everything, "+86 138 0013 8000").rows] == [world["p_ours"]]
    assert [p.id for p in selectors.person_page(everything, "wmOurs").rows] == [world["p_ours"]]
    assert selectors.person_page(everything, after="junk").rows  # a junk cursor is the first page
    c = operator_client()
    page = c.get("/profiles/", {"q": "会员"}).content.decode()
    assert "会员6" in page
    api_page = Client()
    token = accounts.create_api_token(make_user("api-op2", Account.OPERATOR), "t")[1]
    r = api_page.get(f"{API}/cdp/profiles", {"limit": 2}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and len(r.json()["items"]) == 2 and r.json()["next_cursor"]
    r = api_page.get(f"{API}/cdp/profiles", {"cursor": "junk"}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 400


def test_guides_edit_custom_values_only(world):
    CustomField.objects.create(key="note", label="备注", type="text")
    c = guide_client(world)
    pid = world["p_ours"]
    page = c.get(f"/profiles/{pid}/").content.decode()
    assert 'name="custom_note"' in page and 'name="member_level"' not in page
    r = c.post(f"/profiles/{pid}/edit/", {"custom_note": "喜欢简约", "member_level": "黑卡"})
    assert r.status_code == 302
    p = Profile.objects.get(id=pid)
    assert p.custom == {"note": "喜欢简约"} and p.member_level == "金卡"
    token = accounts.create_api_token(make_user("g-api2", Account.GUIDE, wecom_userid="store"), "t")[1]
    h = {"Authorization": f"Bearer {token}"}
    send = Client().patch
    r = send(f"{API}/cdp/profiles/{pid}", json.dumps({"points": 1}), content_type="application/json", headers=h)
    assert r.status_code == 403
    r = send(
        f"{API}/cdp/profiles/{pid}", json.dumps({"custom": {"note": "x"}}), content_type="application/json", headers=h
    )
    assert r.status_code == 200 and r.json()["custom"] == {"note": "x"}


def test_date_inputs_carry_iso_dates_in_every_language():
    """A date input's value must be YYYY-MM-DD (the browser's date picker empties any other), and
    zh-hans formats dates as 1987/12/29: saving the page unchanged used to erase the birthday."""
    from datetime import date

    from django.utils import translation

    from siyu.broadcasts.forms import ComposeForm
    from siyu.profiles.forms import ProfileEditForm

    for lang in ("zh-hans", "en"):
        with translation.override(lang):
            html = ProfileEditForm.base_fields["birthday"].widget.render("birthday", date(1987, 12, 29))
            assert 'value="1987-12-29"' in html and 'type="date"' in html, html
            html = ComposeForm.base_fields["added_from"].widget.render("added_from", date(2026, 1, 2))
            assert 'value="2026-01-02"' in html, html


def test_wecom_avatars_are_shown_over_https_and_allowed_by_the_csp(world):
    from siyu.profiles.selectors import https_url as _https

    assert _https("http://wx.qlogo.cn/mmhead/abc/0") == "https://wx.qlogo.cn/mmhead/abc/0"
    assert _https("javascript:alert(1)") == "" and _https("") == ""
    policy = operator_client().get(f"/profiles/{world['p_ours']}/").headers["Content-Security-Policy"]
    img = next(d for d in policy.split(";") if d.strip().startswith("img-src"))
    assert "https://*.qlogo.cn" in img and "https://*.qpic.cn" in img and "http:" not in img
