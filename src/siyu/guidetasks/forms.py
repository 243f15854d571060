"""The console's rule form: the kind, its parameters (only the kind's own are shown), the content
to suggest, the time to do it in; a campaign's segment and deadline."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from siyu.core import inputs, pickers
from siyu.guidetasks import engine, services
from siyu.guidetasks.models import Rule
from siyu.materials import selectors as material_selectors

# which parameter fields each kind shows (the form's script hides the others)
FIELDS_BY_KIND = {
    "hours": ["browsed"],
    "fraction": ["repurchase"],
    "days_before": ["birthday", "points"],
    "dormant_days": ["dormant"],
    "newcomer_days": ["newcomer"],
    "segment": ["campaign"],
    "deadline": ["campaign"],
    "due_hours": ["browsed", "repurchase", "birthday", "points", "dormant", "newcomer"],
}


class RuleForm(inputs.TextCheckMixin, forms.Form):
    kind = forms.ChoiceField(label=_("类型"), choices=[c for c in Rule.Kind.choices if c[0] != Rule.Kind.FOLLOWUP])
    name = forms.CharField(label=_("名称"), max_length=64)
    hours = forms.IntegerField(
        label=_("浏览后多久未下单（小时）"), initial=24, min_value=1, max_value=168, required=False
    )
    fraction = forms.IntegerField(
        label=_("复购周期的百分之几时提醒"), initial=83, min_value=30, max_value=100, required=False,
        help_text=_("按客户自己的平均复购间隔计算：例如 3 个月一次的客户，83% 即第 2.5 个月提醒。"),
    )  # fmt: skip
    days_before = forms.IntegerField(label=_("提前几天"), initial=3, min_value=0, max_value=60, required=False)
    dormant_days = forms.IntegerField(label=_("多少天未购买"), initial=90, min_value=7, max_value=730, required=False)
    newcomer_days = forms.CharField(
        label=_("添加后第几天跟进"), initial="1, 3, 7", max_length=64, required=False, help_text=_("用逗号分隔")
    )
    segment = pickers.PickerField("segments", multiple=False, coerce=int, label=_("客户分群"), required=False)
    deadline = inputs.DateTimeField(label=_("截止时间"), required=False)
    script = forms.TypedChoiceField(label=_("建议话术"), required=False, coerce=int, empty_value=None)
    material = forms.TypedChoiceField(label=_("建议素材"), required=False, coerce=int, empty_value=None)
    due_hours = forms.IntegerField(label=_("完成时限（小时）"), initial=24, min_value=1, max_value=720, required=False)
    active = forms.BooleanField(label=_("启用"), required=False, initial=True)

    def __init__(self, *args: Any, scope: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, choices in (
            ("script", [(s.id, s.title) for s in material_selectors.scripts(active_only=True)[:500]]),
            ("material", [(m.id, m.title) for m in material_selectors.materials(active_only=True)[:500]]),
        ):
            field = self.fields[name]
            assert isinstance(field, forms.TypedChoiceField)
            field.choices = [("", _("不指定（发送任意内容都算完成）")), *choices]
        pickers.bind(self, scope)

    def toggle_map(self) -> str:
        return json.dumps(FIELDS_BY_KIND)

    @classmethod
    def initial_of(cls, r: Rule) -> dict[str, Any]:
        p = engine.params_of(r.kind, r.params)
        return {
            "kind": r.kind,
            "name": r.name,
            "hours": p.get("hours", 24),
            "fraction": round(float(p.get("fraction", 0.83)) * 100),
            "days_before": p.get("days_before", 3),
            "dormant_days": p.get("days", 90) if r.kind == "dormant" else 90,
            "newcomer_days": ", ".join(str(d) for d in p.get("days", [1, 3, 7])) if r.kind == "newcomer" else "1, 3, 7",
            "segment": [str(r.segment_id)] if r.segment_id else [],
            "deadline": r.deadline,
            "script": r.script_id,
            "material": r.material_id,
            "due_hours": r.due_hours,
            "active": r.active,
        }

    def to_input(self) -> services.RuleInput:
        d = self.cleaned_data
        kind = d["kind"]
        params: dict[str, Any] = {}
        if kind == "browsed":
            params["hours"] = d.get("hours") or 24
        elif kind == "repurchase":
            params["fraction"] = (d.get("fraction") or 83) / 100
        elif kind in ("birthday", "points"):
            params["days_before"] = d.get("days_before") if d.get("days_before") is not None else 3
        elif kind == "dormant":
            params["days"] = d.get("dormant_days") or 90
        elif kind == "newcomer":
            days = [
                int(x) for x in str(d.get("newcomer_days") or "").replace("，", ",").split(",") if x.strip().isdigit()
            ]
            params["days"] = days
        return services.RuleInput(
            kind=kind,
            name=d["name"],
            params=params,
            script_id=d.get("script"),
            material_id=d.get("material"),
            due_hours=d.get("due_hours") or 24,
            active=bool(d.get("active")),
            segment_id=d.get("segment"),
            deadline=d.get("deadline"),
        )
