from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from siyu.accounts.selectors import role_label, role_of


class LoginForm(AuthenticationForm):
    username = forms.CharField(
        label=_("用户名"), max_length=150, widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username"})
    )
    password = forms.CharField(
        label=_("密码"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )
    error_messages = {
        "invalid_login": _("用户名或密码不正确。"),
        "inactive": _("此账号已停用。"),
    }


class _UserChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return f"{obj.get_username()} ({role_label(role_of(obj))})"


class ApiTokenForm(forms.Form):
    """A new API token: what it is for, and the console user it acts as (their role and scope)."""

    name = forms.CharField(
        label=_("名称"), max_length=64, widget=forms.TextInput(attrs={"placeholder": _("例如：CRM 同步")})
    )
    user = _UserChoice(label=_("所属用户"), queryset=None, empty_label=None)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # users with a role: a profile, or a superuser (an admin without a profile)
        field = self.fields["user"]
        assert isinstance(field, _UserChoice)
        field.queryset = (
            get_user_model()
            .objects.filter(is_active=True)
            .filter(Q(siyu_profile__isnull=False) | Q(is_superuser=True))
            .order_by("username")
        )
