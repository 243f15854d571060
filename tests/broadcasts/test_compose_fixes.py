"""Fast layer (issue 16, broadcasts): the composer's channel is picked by name (the REST API keeps
the state value); a text variable mass messages do not fill is refused with the allowed ones named;
the detail page's heading status and actions follow the live fragment, with the next sync's time;
the server-rendered phone preview counts attachments and the text's bytes."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.template.loader import render_to_string
from django.utils import timezone

from siyu.accounts.services import create_api_token
from siyu.broadcasts import selectors, services
from siyu.broadcasts.forms import ComposeForm, unsupported_variables
from siyu.broadcasts.models import Batch, Broadcast, Recipient
from siyu.channels.models import ChannelCode
from siyu.core import preview

pytestmark = pytest.mark.django_db


def _post(admin_client, **fields):
    data = {"kind": "customer", "name": "会员日", "text": "你好", "tag_mode": "any", "op": "draft", **fields}
    return admin_client.post("/broadcasts/new/", data)


# --- 1. the channel, picked by name ---------------------------------------------------------------
def test_composer_channel_is_a_picker_over_channel_codes(admin_client):
    code = ChannelCode.objects.create(name="门店海报·静安店", config_id="cfg-1")
    page = admin_client.get("/broadcasts/new/").content.decode()
    assert 'data-picker="channels"' in page and 'data-testid="picker-state"' in page
    r = _post(admin_client, state=code.state)
    assert r.status_code == 302
    assert Broadcast.objects.get().audience["state"] == code.state
    # the draft's editor names the channel (a chip), not its state
    page = admin_client.get(f"/broadcasts/{Broadcast.objects.get().id}/edit/").content.decode()
    assert "门店海报·静安店" in page
    # a typed name is not a channel: a form error, never a silent audience of nobody
    r = _post(admin_client, name="按名称", state="门店海报")
    assert r.status_code == 200 and Broadcast.objects.count() == 1
    assert "state" in r.context["form"].errors


def test_rest_api_still_takes_the_state_value(admin, client):
    code = ChannelCode.objects.create(name="直播·双11专场", config_id="cfg-2")
    _, token = create_api_token(admin, "t")
    h = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    for state in (code.state, "partner_campaign_01"):  # ours, or a state an integration set itself
        r = client.post(
            "/api/v1/broadcasts/",
            json.dumps({"name": "渠道", "text": "你好", "state": state}),
            content_type="application/json",
            **h,
        )
        assert r.status_code == 201, r.content
        assert r.json()["audience"]["state"] == state


# --- 2. variables ---------------------------------------------------------------------------------
def test_only_the_documented_variables_are_accepted():
    assert unsupported_variables("你好 {员工姓名}，{employee}", Broadcast.CUSTOMER) == []
    assert unsupported_variables("你好 {nickname}{nickname} {客户昵称} %NICKNAME%", Broadcast.GROUP) == [
        "{nickname}",
        "{客户昵称}",
        "%NICKNAME%",
    ]
    assert unsupported_variables("我是{员工姓名}", Broadcast.MOMENT) == ["{员工姓名}"]  # one task for every sender
    assert unsupported_variables("满 100 减 20%，{ } 和 {} 不是变量", Broadcast.CUSTOMER) == []


def test_an_unsupported_variable_is_a_form_error_naming_the_allowed_ones(admin, admin_client):
    r = _post(admin_client, text="{nickname}，会员日快乐")
    assert r.status_code == 200 and not Broadcast.objects.exists()
    errors = r.context["form"].errors["text"]
    assert "{nickname}" in errors[0] and "{员工姓名}" in errors[0]
    assert "{nickname}" in r.content.decode()
    form = ComposeForm({"kind": "moment", "name": "朋友圈", "text": "我是{员工姓名}"}, scope=None)
    assert not form.is_valid() and "朋友圈不支持变量" in form.errors["text"][0]
    assert _post(admin_client, text="{员工姓名}：会员日快乐").status_code == 302


def test_rest_api_refuses_an_unsupported_variable_with_422(admin, client):
    _, token = create_api_token(admin, "t")
    r = client.post(
        "/api/v1/broadcasts/",
        json.dumps({"name": "变量", "text": "亲爱的{nickname}"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert r.status_code == 422
    message = json.loads(r.json()["detail"])["text"][0]["message"]  # the form's errors, as the API gives them
    assert "{nickname}" in message and "{员工姓名}" in message
    assert not Broadcast.objects.exists()


# --- 3. the heading and the actions follow the live fragment ---------------------------------------
def _sent(admin) -> Broadcast:
    b = Broadcast.objects.create(
        kind="customer",
        name="双十二",
        status=Broadcast.SENT,
        sent_at=timezone.now() - timedelta(seconds=60),
        created_by=admin,
    )
    Batch.objects.create(broadcast=b, userid="u1", status=Batch.SENT, msgid="msg-u1")
    Recipient.objects.create(broadcast=b, target="wm-x", state=Recipient.RECEIVED)
    return b


def test_live_fragment_redraws_the_heading_status_and_actions(admin, admin_client):
    b = _sent(admin)
    at = services.schedule_next_sync(b)
    assert at is not None and selectors.next_sync(b) is not None
    page = admin_client.get(f"/broadcasts/{b.id}/").content.decode()
    assert page.count(' id="broadcast-status"') == 1 and "hx-swap-oob" not in page
    hhmm = timezone.localtime(selectors.next_sync(b)).strftime("%H:%M")
    assert f"下次同步：{hhmm}" in page
    part = admin_client.get(f"/broadcasts/{b.id}/", {"part": "live"}).content.decode()
    assert 'id="broadcast-status"' in part and 'id="broadcast-actions"' in part and 'hx-swap-oob="true"' in part
    assert "等待员工发送" in part and "立即同步" in part and "提醒未发送的员工" in part
    assert f"下次同步：{hhmm}" in part

    Batch.objects.filter(broadcast=b).update(task_status=2, results_synced=True)
    services.schedule_next_sync(b)  # every task read: final
    b.refresh_from_db()
    assert selectors.next_sync(b) is None
    r = admin_client.get(f"/broadcasts/{b.id}/", {"part": "live"})
    part = r.content.decode()
    assert r.status_code == 286 and 'hx-swap-oob="true"' in part
    status = part[part.index(' id="broadcast-status"') :]
    assert "已完成" in status[: status.index("</span>")]
    assert "立即同步" not in part and "提醒未发送的员工" not in part and "下次同步" not in part
    assert "复制" in part


# --- 4. the server-rendered preview's counts -------------------------------------------------------
def test_server_rendered_preview_counts_attachments_and_text_bytes():
    ctx = preview.render_context(
        "welcome", "你好 {nickname}", [{"msgtype": "link", "link": {"title": "会员礼", "url": "https://a.example"}}]
    )
    assert ctx["attachment_count"] == 1 and ctx["text_used"] == len("你好 {nickname}".encode())
    html = render_to_string("includes/phone_preview.html", {"preview": ctx})
    assert "<b data-limit-count>1</b>" in html
    assert f"<b data-limit-text>{len('你好 {nickname}'.encode())}</b>" in html
    moment = preview.render_context("moment", "春天来了", [{"type": "image", "name": "a.png"}])
    assert moment["text_used"] == 4 and moment["attachment_count"] == 1  # Moments count characters


def test_broadcast_and_channel_detail_previews_show_the_counts(admin, admin_client):
    b = Broadcast.objects.create(
        kind="customer",
        name="春季",
        text="会员日",
        attachments=[{"type": "link", "title": "春季上新", "url": "https://a.example.com"}],
        created_by=admin,
    )
    page = admin_client.get(f"/broadcasts/{b.id}/").content.decode()
    assert "<b data-limit-count>1</b>" in page and "<b data-limit-text>9</b>" in page
    code = ChannelCode.objects.create(
        name="包装卡",
        config_id="cfg-3",
        welcome={"text": "欢迎", "attachments": [{"msgtype": "link", "link": {"title": "礼", "url": "https://a.b"}}]},
    )
    page = admin_client.get(f"/channels/{code.id}/").content.decode()
    assert "<b data-limit-count>1</b>" in page and "<b data-limit-text>6</b>" in page
