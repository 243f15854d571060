"""Console forms of the profiles app: a person's attributes and custom values, custom field
definitions. The checks are the services' (``clean_custom_value``, ``clean_field_definition``), so
the console, the REST API and the imports accept exactly the same values."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from siyu.core import inputs
from siyu.profiles import services
from siyu.profiles.models import CustomField, Profile

GENDERS = [(str(v), label) for v, label in Profile.Gender.choices]


def custom_form_field(f: CustomField, initial: object) -> forms.Field:
    """A form field for a custom field (its value is checked by ``services.clean_custom_value``)."""
    label = f.label
    if f.type == CustomField.Type.NUMBER:
        return forms.CharField(
            label=label, required=False, initial=initial, widget=forms.TextInput(attrs={"inputmode": "decimal"})
        )
    if f.type == CustomField.Type.DATE:  # the stored value is already "YYYY-MM-DD" text
        return forms.CharField(
            label=label, required=False, initial=initial, widget=forms.DateInput(attrs={"type": "date"})
        )
    if f.type == CustomField.Type.CHOICE:
        choices = [("", "—"), *[(o, o) for o in f.options]]
        return forms.CharField(label=label, required=False, initial=initial, widget=forms.Select(choices=choices))
    if f.type == CustomField.Type.MULTI:
        return forms.MultipleChoiceField(
            label=label,
            required=False,
            initial=initial or [],
            choices=[(o, o) for o in f.options],
            widget=forms.CheckboxSelectMultiple,
        )
    return forms.CharField(label=label, required=False, initial=initial, max_length=services.MAX_TEXT)


class ProfileEditForm(inputs.TextCheckMixin, forms.Form):
    name = forms.CharField(label=_("姓名"), max_length=128, required=False)
    member_level = forms.CharField(label=_("会员等级"), max_length=32, required=False)
    points = forms.IntegerField(label=_("积分"), required=False, min_value=-(10**12), max_value=10**12)
    birthday = inputs.DateField(label=_("生日"), required=False)
    gender = forms.ChoiceField(label=_("性别"), choices=GENDERS, required=False)

    ATTRIBUTES = ("name", "member_level", "points", "birthday", "gender")

    def __init__(
        self, *args: Any, person: Profile, custom_fields: list[CustomField], attributes: bool = True, **kwargs: Any
    ) -> None:
        initial = {
            "name": person.name,
            "member_level": person.member_level,
            "points": person.points,
            "birthday": person.birthday,
            "gender": str(person.gender),
        }
        kwargs["initial"] = initial
        super().__init__(*args, **kwargs)
        self.person = person
        self.custom_fields = custom_fields
        self.edits_attributes = attributes
        if not attributes:  # guides and store managers edit custom values only (member data is the brand's)
            for name in self.ATTRIBUTES:
                del self.fields[name]
        for f in custom_fields:
            self.fields[f"custom_{f.key}"] = custom_form_field(f, person.custom.get(f.key))

    def custom_bound_fields(self) -> list[forms.BoundField]:
        return [self[f"custom_{f.key}"] for f in self.custom_fields]

    def save(self, operator: str) -> Profile | None:
        """Write the changes (None, with the errors on the form, when a value does not fit)."""
        d = self.cleaned_data
        attributes = (
            {
                "name": d.get("name") or "",
                "member_level": d.get("member_level") or "",
                "points": d.get("points") or 0,
                "birthday": d.get("birthday"),
                "gender": d.get("gender") or "0",
            }
            if self.edits_attributes
            else {}
        )
        custom = {f.key: d.get(f"custom_{f.key}") for f in self.custom_fields}
        try:
            return services.update_profile(self.person.id, attributes=attributes, custom=custom, operator=operator)
        except ValidationError as exc:
            for key, msgs in exc.message_dict.items():
                name = f"custom_{key[7:]}" if key.startswith("custom.") else key
                for m in msgs:
                    self.add_error(name if name in self.fields else None, m)
            return None


class FieldForm(inputs.TextCheckMixin, forms.Form):
    key = forms.CharField(
        label=_("键"), max_length=32, help_text=_("导入文件的列名 custom.<键>，接口中的字段名；创建后不能修改。")
    )
    label = forms.CharField(label=_("字段名"), max_length=32)
    type = forms.ChoiceField(label=_("类型"), choices=CustomField.Type.choices)
    options = forms.CharField(
        label=_("选项"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("单选和多选：每行一个选项。"),
    )
    order = forms.IntegerField(label=_("排序"), initial=0, min_value=-1_000_000, max_value=1_000_000)
    active = forms.BooleanField(label=_("启用"), required=False, initial=True)

    def __init__(self, *args: Any, instance: CustomField | None = None, **kwargs: Any) -> None:
        if instance is not None:
            kwargs.setdefault(
                "initial",
                {
                    "key": instance.key,
                    "label": instance.label,
                    "type": instance.type,
                    "options": "\n".join(instance.options),
                    "order": instance.order,
                    "active": instance.active,
                },
            )
        super().__init__(*args, **kwargs)
        self.instance = instance
        if instance is not None:
            self.fields["key"].disabled = True
            self.fields["type"].disabled = True

    def save(self) -> CustomField | None:
        try:
            return services.save_field(self.cleaned_data, instance=self.instance)
        except ValidationError as exc:
            for key, msgs in exc.message_dict.items():
                for m in msgs:
                    self.add_error(key if key in self.fields else None, m)
            return None
