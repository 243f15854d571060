"""The customer list's filter form (GET parameters → ``CustomerFilters``) and the bulk tag form."""

from __future__ import annotations

from typing import Any

from django import forms
from django.forms.utils import flatatt
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from siyu.core import inputs, pickers
from siyu.customers.models import Customer
from siyu.customers.selectors import ADD_WAYS, SORTS, CustomerFilters, FilterChoices


class FastSelect(forms.Select):
    """A ``<select>`` rendered in Python. Django renders every option through a template (~0.1 ms
    an option), and the employee filter lists every employee in scope: hundreds of options on
    each list page. Same markup (id, name, attrs, selected), options escaped by format_html."""

    def render(self, name, value, attrs=None, renderer=None):
        final = self.build_attrs(self.attrs, attrs)
        final["name"] = name
        chosen = set(self.format_value(value))
        parts = [format_html("<select{}>", flatatt(final))]

        def option(v, label):
            v = "" if v is None else str(v)
            return format_html(
                '<option value="{}"{}>{}</option>', v, mark_safe(" selected") if v in chosen else "", label
            )

        for v, label in self.choices:
            if isinstance(label, (list, tuple)):  # an optgroup
                parts.append(format_html('<optgroup label="{}">', v))
                parts.extend(option(sv, sl) for sv, sl in label)
                parts.append(mark_safe("</optgroup>"))
            else:
                parts.append(option(v, label))
        parts.append(mark_safe("</select>"))
        return mark_safe("".join(parts))


class CustomerFilterForm(forms.Form):
    q = forms.CharField(label=_("搜索"), required=False, max_length=64)
    tags = pickers.PickerField("tags", label=_("标签"), required=False, coerce=int, max_items=200)
    tag_mode = forms.ChoiceField(
        label=_("标签匹配"),
        required=False,
        choices=[("any", _("含任一标签")), ("all", _("含全部标签")), ("none", _("不含这些标签"))],
        widget=FastSelect,
    )
    employee = pickers.PickerField(
        "employees", multiple=False, tree="filter", coerce=int, label=_("跟进员工"), required=False
    )
    department = pickers.PickerField(
        "departments", multiple=False, tree="pick", coerce=int, label=_("部门"), required=False
    )
    added_from = inputs.DateField(label=_("添加时间从"), required=False)
    added_to = inputs.DateField(label=_("添加时间至"), required=False)
    add_way = forms.TypedChoiceField(
        label=_("添加方式"),
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", _("全部")), *ADD_WAYS],
        widget=FastSelect,
    )
    state = pickers.PickerField("channels", multiple=False, label=_("渠道"), required=False)
    status = forms.ChoiceField(
        label=_("状态"),
        required=False,
        choices=[("", _("全部")), (Customer.ACTIVE, _("跟进中")), (Customer.LOST, _("已流失"))],
        widget=FastSelect,
    )
    group = forms.ChoiceField(
        label=_("客户群"),
        required=False,
        choices=[("", _("不限")), ("any", _("在任意群中")), ("none", _("不在任何群"))],
        widget=FastSelect,
    )
    group_id = pickers.PickerField("groups", multiple=False, coerce=int, label=_("指定客户群"), required=False)
    sort = forms.ChoiceField(required=False, choices=[(k, k) for k in SORTS])

    def __init__(self, data, choices: FilterChoices, *, scope: Any, **kwargs):
        super().__init__(data, **kwargs)
        # tags, employee, department, channel and group: picked by name, checked in the viewer's scope
        pickers.bind(self, scope)

    def _choice_field(self, name: str) -> forms.ChoiceField:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)  # for the type checker: ``fields`` holds Field
        return field

    def filters(self) -> CustomerFilters:
        """The valid part of the input (an invalid field is ignored, and shown as an error)."""
        self.is_valid()
        d = getattr(self, "cleaned_data", {})
        return CustomerFilters(
            tags=list(d.get("tags") or []),
            tag_mode=d.get("tag_mode") or "any",
            employee_id=d.get("employee"),
            department_id=d.get("department"),
            added_from=d.get("added_from"),
            added_to=d.get("added_to"),
            add_way=d.get("add_way"),
            state=(d.get("state") or "").strip(),
            status=d.get("status") or "",
            group=str(d["group_id"]) if d.get("group_id") else (d.get("group") or ""),
            q=(d.get("q") or "").strip(),
        )

    def mode_choices(self):
        """The tag match modes as (value, label, checked), drawn as chips beside the tag picker."""
        current = (self.data.get("tag_mode") if self.data else "") or "any"
        modes = [("any", _("含任一标签")), ("all", _("含全部标签")), ("none", _("不含这些标签"))]
        return [(v, label, v == current) for v, label in modes]

    def sort_key(self) -> str:
        return (getattr(self, "cleaned_data", {}) or {}).get("sort") or "-added"


class TagPickForm(forms.Form):
    """The tag chips of the bulk bar and the customer page (posted to the bulk-tag view, which
    checks the ids again)."""

    add_tags = pickers.PickerField("tags", label=_("添加标签"), required=False, max_items=200)
    remove_tags = pickers.PickerField("tags", label=_("移除标签"), required=False, max_items=200)

    def __init__(self, *args, scope: Any, prefix_id: str = "", **kwargs):
        kwargs["auto_id"] = f"id_{prefix_id}%s" if prefix_id else "id_%s"
        super().__init__(*args, **kwargs)
        pickers.bind(self, scope)
