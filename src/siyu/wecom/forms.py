"""The WeCom settings form (设置 › 企业微信)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from django import forms
from django.core.validators import RegexValidator, URLValidator
from django.utils.translation import gettext_lazy as _

from siyu.wecom.selectors import SECRET_FIELDS, FieldState

if TYPE_CHECKING:
    from django_stubs_ext import StrPromise

# 回调配置 (part3-callbacks-errors.md §1.1): Token is letters/digits, at most 32 characters;
# EncodingAESKey is exactly 43 characters from [a-zA-Z0-9].
TOKEN_RE = re.compile(r"^[A-Za-z0-9]{1,32}$")
AES_KEY_RE = re.compile(r"^[A-Za-z0-9]{43}$")

_secret_widget = {"autocomplete": "new-password", "spellcheck": "false"}


def _secret(
    label: StrPromise,
    max_length: int,
    help_text: StrPromise,
    validators: Iterable[RegexValidator] = (),
    attrs: dict[str, str] | None = None,
) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        max_length=max_length,
        help_text=help_text,
        validators=list(validators),
        widget=forms.PasswordInput(render_value=False, attrs={**_secret_widget, **(attrs or {})}),
    )


class WeComSettingsForm(forms.Form):
    corp_id = forms.CharField(
        label=_("企业ID (CorpID)"),
        required=False,
        max_length=64,
        help_text=_("管理后台「我的企业 › 企业信息」页底部的企业ID。"),
        validators=[RegexValidator(r"^[A-Za-z0-9]+$", _("企业ID只能包含字母和数字。"))],
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}),
    )
    api_base = forms.CharField(
        label=_("API 地址"),
        required=False,
        max_length=255,
        help_text=_("企业微信接口的根地址，默认 https://qyapi.weixin.qq.com；指向模拟器时填写模拟器地址。"),
        widget=forms.TextInput(
            attrs={"spellcheck": "false", "autocomplete": "off", "placeholder": "https://qyapi.weixin.qq.com"}
        ),
    )
    contact_secret = _secret(
        _("客户联系 Secret"),
        128,
        _("「客户与上下游 › 客户联系 › API」中的 Secret，用于客户、标签、客户群等接口。"),
    )
    app_secret = _secret(
        _("自建应用 Secret"),
        128,
        _("自建应用的 Secret，用于发送应用消息；留空时沿用客户联系 Secret。"),
    )
    agent_id = forms.CharField(
        label=_("自建应用 AgentID"),
        required=False,
        max_length=32,
        help_text=_("自建应用详情页中的 AgentId。"),
        validators=[RegexValidator(r"^[0-9]+$", _("AgentID 只能是数字。"))],
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    callback_token = _secret(
        _("回调 Token"),
        32,
        _("英文字母或数字，不超过 32 位，与企业微信后台「接收事件服务器」中的 Token 一致。"),
        validators=[RegexValidator(TOKEN_RE, _("Token 只能由英文字母或数字组成，且不超过 32 位。"))],
        attrs={"data-random-length": "32"},
    )
    callback_aes_key = _secret(
        _("回调 EncodingAESKey"),
        43,
        _("43 位英文字母或数字，与企业微信后台「接收事件服务器」中的 EncodingAESKey 一致。"),
        validators=[RegexValidator(AES_KEY_RE, _("EncodingAESKey 必须是 43 位英文字母或数字。"))],
        attrs={"data-random-length": "43"},
    )

    clear_contact_secret = forms.BooleanField(required=False, label=_("清除控制台中的值"))
    clear_app_secret = forms.BooleanField(required=False, label=_("清除控制台中的值"))
    clear_callback_token = forms.BooleanField(required=False, label=_("清除控制台中的值"))
    clear_callback_aes_key = forms.BooleanField(required=False, label=_("清除控制台中的值"))

    SECTIONS = (
        (_("企业与接口"), ("corp_id", "api_base")),
        (_("客户联系"), ("contact_secret",)),
        (_("自建应用"), ("app_secret", "agent_id")),
        (_("接收事件服务器（回调）"), ("callback_token", "callback_aes_key")),
    )

    def clean_api_base(self) -> str:
        value: str = self.cleaned_data["api_base"].strip()
        if not value:
            return ""
        value = value.rstrip("/")
        value = value.removesuffix("/cgi-bin")
        URLValidator(schemes=["http", "https"], message=_("请输入以 http:// 或 https:// 开头的地址。"))(value)
        return value

    def clean_contact_secret(self) -> str:
        return self._clean_secret("contact_secret")

    def clean_app_secret(self) -> str:
        return self._clean_secret("app_secret")

    def _clean_secret(self, name: str) -> str:
        value: str = self.cleaned_data[name]
        if value and re.search(r"\s", value):
            raise forms.ValidationError(_("Secret 中不能包含空白字符。"))
        return value

    def describe_secrets(self, states: dict[str, FieldState]) -> None:
        """Placeholders telling whether a console value is stored (masked), never the value itself."""
        for name in SECRET_FIELDS:
            state = states[name]
            if state.has_console_value:
                text: str | StrPromise = _("已保存 %(masked)s，留空则保持不变") % {"masked": state.console_value}
            else:
                text = _("未在控制台设置")
            self.fields[name].widget.attrs["placeholder"] = text

    def values(self) -> dict[str, str]:
        return {name: self.cleaned_data.get(name, "") for name in ("corp_id", "api_base", "agent_id", *SECRET_FIELDS)}

    def cleared(self) -> set[str]:
        return {name for name in SECRET_FIELDS if self.cleaned_data.get(f"clear_{name}")}
