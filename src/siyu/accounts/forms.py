from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from siyu.accounts.models import Profile
from siyu.accounts.selectors import org_reads, profile_of, role_label, role_of


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


# --- 设置 › 用户与角色 -----------------------------------------------------------------------------
class _ScopeFields(forms.Form):
    """Role and its scope: a store (department, by name in tree order) for a store manager, an
    employee (by name or account) for a guide; any user may be bound to an employee."""

    role = forms.ChoiceField(label=_("角色"), choices=Profile.ROLES)
    department = forms.TypedChoiceField(
        label=_("门店（部门）"),
        coerce=int,
        required=False,
        empty_value=None,
        help_text=_("店长可查看该部门及其下级部门成员的客户。"),
    )
    employee = forms.CharField(
        label=_("绑定成员"),
        max_length=64,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": _("成员姓名或账号，例如：许娟")}),
        help_text=_("导购必填：只能查看该成员的客户。其他角色可选，用于标明账号属于哪位员工。"),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["department"]
        assert isinstance(field, forms.TypedChoiceField)
        field.choices = [("", _("— 请选择 —"))] + [
            (str(dept_id), "\u3000" * depth + name) for dept_id, name, depth in org_reads().departments()
        ]

    def clean_employee(self) -> str:
        text = (self.cleaned_data.get("employee") or "").strip()
        if not text:
            return ""
        found = org_reads().find_employees(text)
        if not found:
            raise forms.ValidationError(_("找不到姓名或账号为“%(text)s”的成员"), params={"text": text})
        if len(found) > 1:
            names = _("、").join(
                f"{name}（{dept}，{userid}）" if dept else f"{name}（{userid}）" for userid, name, dept in found
            )
            raise forms.ValidationError(
                _("有多位成员叫“%(text)s”：%(names)s。请改填账号。"), params={"text": text, "names": names}
            )
        return found[0][0]

    def clean(self):
        data = super().clean() or {}
        role = data.get("role")
        if role == Profile.STORE_MANAGER and data.get("department") is None and "department" not in self.errors:
            self.add_error("department", _("店长必须选择门店（部门）"))
        if role == Profile.GUIDE and not data.get("employee") and "employee" not in self.errors:
            self.add_error("employee", _("导购必须绑定成员"))
        return data

    def scope_kwargs(self) -> dict:
        data = self.cleaned_data
        return {
            "role": data["role"],
            "department_id": data.get("department") if data["role"] == Profile.STORE_MANAGER else None,
            "wecom_userid": data.get("employee") or "",
        }


class UserCreateForm(_ScopeFields):
    username = forms.CharField(label=_("用户名"), max_length=150, widget=forms.TextInput(attrs={"autocomplete": "off"}))
    password = forms.CharField(
        label=_("初始密码"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("至少 8 位，不能全是数字或过于常见。留空则自动生成一个强密码，并只显示一次。"),
    )

    field_order = ["username", "password", "role", "department", "employee"]


class UserRoleForm(_ScopeFields):
    @classmethod
    def for_user(cls, user) -> UserRoleForm:
        profile = profile_of(user)
        role = role_of(user) or (profile.role if profile else Profile.OPERATOR)
        initial: dict[str, object] = {"role": profile.role if profile else role}
        if profile is not None:
            initial["department"] = profile.department_id
            if profile.wecom_userid:
                # the name when it names one employee, else the account
                name = org_reads().employee_names([profile.wecom_userid]).get(profile.wecom_userid, "")
                unique = name and len(org_reads().find_employees(name)) == 1
                initial["employee"] = name if unique else profile.wecom_userid
        return cls(initial=initial)


class PasswordResetForm(forms.Form):
    password = forms.CharField(
        label=_("新密码"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("留空则自动生成一个强密码，并只显示一次。"),
    )
