"""Forms of the acquisition console: every field is checked here (hostile input)."""

from __future__ import annotations

import json
from typing import cast

from django import forms
from django.utils.translation import gettext_lazy as _

from siyu.channels import services
from siyu.channels.attachments import WelcomeEditorMixin
from siyu.channels.models import ChannelCode
from siyu.core import inputs, pickers

WEEKDAYS = [
    (0, _("周一")),
    (1, _("周二")),
    (2, _("周三")),
    (3, _("周四")),
    (4, _("周五")),
    (5, _("周六")),
    (6, _("周日")),
]


class ChannelCodeForm(WelcomeEditorMixin):
    name = forms.CharField(label=_("名称"), max_length=64)
    folder = forms.CharField(label=_("分组"), max_length=64, required=False)
    kind = forms.ChoiceField(label=_("类型"), choices=ChannelCode.KINDS, initial=ChannelCode.CHANNEL)
    department_id = pickers.PickerField(
        "departments", multiple=False, coerce=int, tree="pick", label=_("门店"), required=False
    )
    users = pickers.PickerField(
        "employee_accounts", tree="filter", max_items=services.MAX_USERS, label=_("员工"), required=False
    )
    backups = pickers.PickerField(
        "employee_accounts", tree="filter", max_items=services.MAX_USERS, label=_("备用员工"), required=False
    )
    schedule = forms.CharField(label=_("排班"), required=False, widget=forms.HiddenInput, max_length=20000)
    slot_days = forms.MultipleChoiceField(
        label=_("排班：星期"), choices=WEEKDAYS, required=False, widget=forms.CheckboxSelectMultiple
    )
    slot_start = forms.CharField(label=_("开始时间"), required=False, max_length=5, widget=inputs.TIME_INPUT)
    slot_end = forms.CharField(label=_("结束时间"), required=False, max_length=5, widget=inputs.TIME_INPUT)
    slot_users = pickers.PickerField(
        "employee_accounts", tree="filter", max_items=services.MAX_USERS, label=_("该时段员工"), required=False
    )
    daily_cap = forms.IntegerField(label=_("每人每日添加上限"), required=False, min_value=0, max_value=100000)
    skip_verify = forms.BooleanField(label=_("自动通过好友"), required=False, initial=True)
    skip_verify_start = forms.CharField(label=_("自动通过开始"), required=False, max_length=5, widget=inputs.TIME_INPUT)
    skip_verify_end = forms.CharField(label=_("自动通过结束"), required=False, max_length=5, widget=inputs.TIME_INPUT)
    tag_ids = pickers.PickerField("wecom_tags", label=_("自动标签"), required=False)
    remark_template = forms.CharField(
        label=_("备注模板"), required=False, max_length=64, help_text=_("可用变量：{channel} {nickname} {employee}")
    )
    description_template = forms.CharField(label=_("描述模板"), required=False, max_length=255)
    welcome_text = forms.CharField(
        label=_("欢迎语"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=4000,
        help_text=_("可用变量：{nickname} {employee}"),
    )
    valid_until = inputs.DateTimeField(label=_("有效期至"), required=False)
    poster_text = forms.CharField(label=_("海报文字"), required=False, max_length=64)
    poster_background = forms.ImageField(label=_("海报背景"), required=False)

    def __init__(self, *args, scope, **kwargs):
        super().__init__(*args, **kwargs)
        pickers.bind(self, scope)  # employees, store and tags: picked by name, checked in the viewer's scope

    def _hm(self, name):
        v = (self.cleaned_data.get(name) or "").strip()
        if v and services._hm(v) is None:
            raise forms.ValidationError(_("时间格式应为 HH:MM"))
        return v

    def clean_slot_start(self):
        return self._hm("slot_start")

    def clean_slot_end(self):
        return self._hm("slot_end")

    def clean_skip_verify_start(self):
        return self._hm("skip_verify_start")

    def clean_skip_verify_end(self):
        return self._hm("skip_verify_end")

    def clean_poster_background(self):
        f = self.cleaned_data.get("poster_background")
        if f and f.size > inputs.MEDIA_MAX["image"]:
            raise forms.ValidationError(_("图片不能超过 2MB"))
        return f

    @staticmethod
    def _schedule_slots(data: dict) -> list[dict]:
        """The schedule's slots: the JSON ``schedule`` field's, then the one-slot fields' if filled."""
        slots = []
        raw = data.get("schedule") or ""
        if raw:
            try:
                slots = services.clean_schedule(json.loads(raw))
            except (ValueError, TypeError, AttributeError, services.ChannelError):
                raise forms.ValidationError(_("排班格式无效")) from None
        if data.get("slot_days") and data.get("slot_start") and data.get("slot_end"):
            slots.append(
                {
                    "days": sorted(int(d) for d in data["slot_days"]),
                    "start": data["slot_start"],
                    "end": data["slot_end"],
                    "users": data.get("slot_users") or [],
                }
            )
        return slots

    def _check_slot_users(self, data, slots: list[dict]) -> None:
        """One form error per slot naming an employee outside the code's employee list."""
        for s in slots:
            for u in s["users"]:
                if data.get("users") and u not in data["users"]:
                    self.add_error(None, _("排班中的员工必须在员工列表中"))
                    break

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        slots = self._schedule_slots(data)
        data["schedule_slots"] = slots
        if data.get("kind") == ChannelCode.STORE:
            if not data.get("department_id"):
                self.add_error("department_id", _("门店活码需要选择门店"))
        elif not data.get("users"):
            self.add_error("users", _("至少选择一名员工"))
        self._check_slot_users(data, slots)
        if (data.get("skip_verify_start") or "") and not data.get("skip_verify_end"):
            self.add_error("skip_verify_end", _("请填写结束时间"))
        return data


class DefaultWelcomeForm(WelcomeEditorMixin):
    text_field = "text"
    require_content = True
    userid = pickers.PickerField("employee_accounts", multiple=False, tree="filter", label=_("员工"), required=False)
    department_id = pickers.PickerField(
        "departments", multiple=False, coerce=int, tree="pick", label=_("部门"), required=False
    )
    text = forms.CharField(
        label=_("欢迎语"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("可用变量：{nickname} {employee}"),
    )

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        if bool(data.get("userid")) == bool(data.get("department_id")):
            raise forms.ValidationError(_("请选择一名员工或一个部门（二选一）"))
        return data

    def __init__(self, *args, scope, **kwargs):
        super().__init__(*args, **kwargs)
        pickers.bind(self, scope)


class GroupWelcomeTemplateForm(WelcomeEditorMixin):
    """A group welcome template: text (≤ 3000 bytes) and at most one attachment (doc 92366)."""

    text_field = "text"
    text_max_bytes = 3000  # group_welcome_template doc 92366
    max_attachments = 1
    require_content = True
    name = forms.CharField(label=_("名称"), max_length=64)
    text = forms.CharField(
        label=_("欢迎语"),
        required=False,
        max_length=3000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("可用变量：%NICKNAME%（入群客户的昵称）"),
    )
    notify = forms.BooleanField(label=_("通知群主在群中使用"), required=False, initial=True)

    def attachment(self, created_by: str = "") -> dict:
        atts = self.welcome_attachments(created_by)
        return atts[0] if atts else {}


class GroupCodeForm(inputs.TextCheckMixin, forms.Form):
    name = forms.CharField(label=_("名称"), max_length=64)
    chat_ids = pickers.PickerField("group_chats", max_items=5, label=_("客户群（最多 5 个）"))
    auto_create = forms.BooleanField(label=_("群满自动建群"), required=False, initial=True)
    room_base_name = forms.CharField(label=_("新群名称前缀"), required=False, max_length=40)
    welcome_template = forms.ChoiceField(label=_("入群欢迎语"), required=False)
    welcome_text = forms.CharField(
        label=_("或新建文字欢迎语"), required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args, scope, template_choices=(), **kwargs):
        super().__init__(*args, **kwargs)
        pickers.bind(self, scope)
        cast(forms.ChoiceField, self.fields["welcome_template"]).choices = [("", _("不使用")), *template_choices]
