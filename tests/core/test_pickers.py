"""Fast layer (no emulator): the picker field (siyu.core.pickers) and its use in the console's
forms: values are checked server-side against the viewer's scope, so a forged or foreign id is a
form error, never a 500; the search endpoints answer JSON within the viewer's scope."""

from __future__ import annotations

import pytest
from django import forms

from siyu.accounts.selectors import DataScope
from siyu.broadcasts.forms import ComposeForm
from siyu.channels.forms import ChannelCodeForm, DefaultWelcomeForm, GroupCodeForm
from siyu.channels.models import ChannelCode
from siyu.core import pickers
from siyu.customers.forms import CustomerFilterForm
from siyu.customers.models import Tag, TagGroup
from siyu.groups.models import GroupChat
from tests.helpers import client_for, make_user, org_tree

pytestmark = pytest.mark.django_db

EVERYTHING = DataScope(everything=True)
MANAGER = DataScope(department_id=2)  # East and its Store


def test_a_picker_field_needs_the_viewers_scope_and_checks_every_value():
    people = org_tree()

    class F(forms.Form):
        who = pickers.PickerField("employees", coerce=int, max_items=2)
        one = pickers.PickerField("employee_accounts", multiple=False, required=False)

    unbound = F({"who": [str(people["east"].id)]})
    with pytest.raises(RuntimeError):
        unbound.is_valid()  # a form that forgot pickers.bind never trusts a value
    f = F({"who": [str(people["east"].id), str(people["store"].id)], "one": "west"})
    pickers.bind(f, EVERYTHING)
    assert f.is_valid(), f.errors
    assert f.cleaned_data == {"who": [people["east"].id, people["store"].id], "one": "west"}
    # comma-separated text is accepted too (old links, the REST API's lists)
    f = F({"who": f"{people['east'].id}, {people['east'].id}"})
    pickers.bind(f, EVERYTHING)
    assert f.is_valid() and f.cleaned_data["who"] == [people["east"].id]
    cases = [
        ({"who": [str(people["west"].id)]}, MANAGER, "who"),  # outside the scope
        ({"who": ["99999999"]}, EVERYTHING, "who"),  # does not exist
        ({"who": ["1; DROP TABLE"]}, EVERYTHING, "who"),  # not a value at all
        ({"who": ["9" * 40]}, EVERYTHING, "who"),  # beyond a database id
        ({"who": [str(people[u].id) for u in ("boss", "east", "west")]}, EVERYTHING, "who"),  # too many
        ({"who": [str(people["east"].id)], "one": ["east", "west"]}, EVERYTHING, "one"),  # one only
        ({}, EVERYTHING, "who"),  # required
    ]
    for data, scope, field in cases:
        f = F(data)
        pickers.bind(f, scope)
        assert not f.is_valid() and field in f.errors, data


def test_a_picker_renders_the_chosen_as_names_with_the_id_as_secondary_text():
    people = org_tree()

    class F(forms.Form):
        who = pickers.PickerField("employees", tree="filter")

    f = F(initial={"who": [people["store"].id, 424242]})
    pickers.bind(f, EVERYTHING)
    html = str(f["who"])
    assert 'data-picker="employees"' in html and 'data-tree-url="/employees/pick/tree/"' in html
    assert ">Store<" in html and f'value="{people["store"].id}"' in html
    assert "未知或无权查看" in html  # an id with no name here is shown as such, never dropped silently


def test_channel_code_form_refuses_forged_employees_stores_and_tags():
    org_tree()
    group = TagGroup.objects.create(group_id="g1", name="会员")
    Tag.objects.create(tag_id="t1", group=group, name="金卡")
    base = {"name": "码", "kind": ChannelCode.CHANNEL, "skip_verify": "on"}
    ok = ChannelCodeForm({**base, "users": ["east", "store"], "tag_ids": ["t1"]}, scope=EVERYTHING)
    assert ok.is_valid(), ok.errors
    assert ok.cleaned_data["users"] == ["east", "store"] and ok.cleaned_data["tag_ids"] == ["t1"]
    store = ChannelCodeForm({**base, "kind": ChannelCode.STORE, "department_id": "3"}, scope=MANAGER)
    assert store.is_valid(), store.errors
    assert store.cleaned_data["department_id"] == 3
    for data, scope, field in [
        ({"users": ["nobody"]}, EVERYTHING, "users"),
        ({"users": ["west"]}, MANAGER, "users"),
        ({"users": ["east"], "backups": ["west"]}, MANAGER, "backups"),
        ({"users": ["east"], "slot_users": ["<script>"]}, EVERYTHING, "slot_users"),
        ({"kind": ChannelCode.STORE, "department_id": "4"}, MANAGER, "department_id"),
        ({"kind": ChannelCode.STORE, "department_id": "99"}, EVERYTHING, "department_id"),
        ({"kind": ChannelCode.STORE, "department_id": str(2**63)}, EVERYTHING, "department_id"),
        ({"users": ["east"], "tag_ids": ["t-deleted"]}, EVERYTHING, "tag_ids"),
    ]:
        f = ChannelCodeForm({**base, **data}, scope=scope)
        assert not f.is_valid() and field in f.errors, data


def test_default_welcome_and_group_code_forms_pick_by_name():
    people = org_tree()
    f = DefaultWelcomeForm({"userid": "west", "text": "你好"}, scope=EVERYTHING)
    assert f.is_valid() and f.cleaned_data["userid"] == "west"
    assert not DefaultWelcomeForm({"userid": "west", "department_id": "2", "text": "x"}, scope=EVERYTHING).is_valid()
    assert "userid" in DefaultWelcomeForm({"userid": "nobody", "text": "x"}, scope=EVERYTHING).errors
    for i in range(6):
        GroupChat.objects.create(chat_id=f"wr{i}", name=f"群{i}", owner=people["store"])
    f = GroupCodeForm({"name": "群码", "chat_ids": ["wr0", "wr1"]}, scope=EVERYTHING)
    assert f.is_valid() and f.cleaned_data["chat_ids"] == ["wr0", "wr1"]
    assert "chat_ids" in GroupCodeForm({"name": "x", "chat_ids": [f"wr{i}" for i in range(6)]}, scope=EVERYTHING).errors
    assert "chat_ids" in GroupCodeForm({"name": "x", "chat_ids": ["wr-forged"]}, scope=EVERYTHING).errors
    assert "chat_ids" in GroupCodeForm({"name": "x"}, scope=EVERYTHING).errors


def test_composer_and_customer_filters_check_their_pickers_in_scope():
    people = org_tree()
    west_group = GroupChat.objects.create(chat_id="wrw", name="西区群", owner=people["west"])
    base = {"kind": "customer", "name": "n", "text": "hi", "tag_mode": "any"}
    f = ComposeForm({**base, "employees": [str(people["east"].id)], "departments": ["3"]}, scope=MANAGER)
    assert f.is_valid(), f.errors
    assert f.audience()["employee_ids"] == [str(people["east"].id)] and f.audience()["department_ids"] == ["3"]
    f = ComposeForm({**base, "employees": [str(people["west"].id)], "group_ids": [str(west_group.id)]}, scope=MANAGER)
    assert not f.is_valid() and {"employees", "group_ids"} <= set(f.errors)
    form = CustomerFilterForm({"employee": str(people["west"].id), "department": "3"}, {}, scope=MANAGER)
    filters = form.filters()  # the invalid part is ignored (and shown), never a 500
    assert filters.employee_id is None and filters.department_id == 3 and "employee" in form.errors
    form = CustomerFilterForm({"group": "any", "group_id": str(west_group.id)}, {}, scope=EVERYTHING)
    assert form.filters().group == str(west_group.id)


def test_search_endpoints_answer_json_within_the_viewers_scope():
    people = org_tree()
    GroupChat.objects.create(chat_id="wrw", name="西区群", owner=people["west"])
    GroupChat.objects.create(chat_id="wrs", name="门店群", owner=people["store"])
    manager = client_for(make_user("mgr", "store_manager", department_id=2))
    r = manager.get("/employees/pick/employees/", {"q": ""})
    assert r.status_code == 200 and [i["label"] for i in r.json()["items"]] == ["East", "Store"]
    r = manager.get("/employees/pick/employees/", {"q": "st", "by": "userid", "dept": "3"})
    assert [i["value"] for i in r.json()["items"]] == ["store"]
    assert manager.get("/employees/pick/employees/", {"dept": "x"}).status_code == 400  # never a 500
    assert [n["id"] for n in manager.get("/employees/pick/tree/").json()["nodes"]] == [2, 3]
    assert [i["label"] for i in manager.get("/groups/pick/", {"q": "群"}).json()["items"]] == ["门店群"]
    assert manager.get("/tags/pick/", {"q": "x" * 500}).json() == {"items": [], "more": False}
    assert manager.get("/channels/pick/").json()["items"] == []
    anonymous = client_for(make_user("nobody", None))
    assert anonymous.get("/groups/pick/").status_code == 403


def test_hostile_names_stay_text_in_chips_and_search_answers():
    people = org_tree()
    Employee = type(people["east"])
    Employee.objects.filter(id=people["east"].id).update(name='<img src=x onerror="alert(1)">')

    class F(forms.Form):
        who = pickers.PickerField("employees")

    f = F(initial={"who": [people["east"].id]})
    pickers.bind(f, EVERYTHING)
    html = str(f["who"])
    assert "<img" not in html and "&lt;img src=x" in html
    admin = client_for(make_user("admin", "admin"))
    r = admin.get("/employees/pick/employees/", {"q": "img"})
    assert r["Content-Type"] == "application/json" and r.json()["items"][0]["label"].startswith("<img")


def test_composer_group_member_is_picked_by_name_and_kept_in_the_audience():
    people = org_tree()
    mine = GroupChat.objects.create(chat_id="wrs", name="门店群", owner=people["store"])
    west = GroupChat.objects.create(chat_id="wrw", name="西区群", owner=people["west"])
    base = {"kind": "customer", "name": "n", "text": "hi", "tag_mode": "any"}
    f = ComposeForm({**base, "group": "any", "group_member": str(mine.id)}, scope=MANAGER)
    assert f.is_valid(), f.errors
    assert f.audience()["group"] == str(mine.id)
    assert "group_member" in ComposeForm({**base, "group_member": str(west.id)}, scope=MANAGER).errors
    f = ComposeForm({**base, "group": "none"}, scope=MANAGER)
    assert f.is_valid() and f.audience()["group"] == "none"
