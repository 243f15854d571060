"""Console forms of the segments app: the builder (name, description and the definition as JSON in
a hidden field) and the one-click segment of an RFM class or a lifecycle stage. Hostile input is
checked here: the definition by the grammar, each picked value against the viewer's scope."""

from __future__ import annotations

import json
from typing import Any, cast

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from siyu.core import pickers
from siyu.insights import selectors as insight_selectors
from siyu.segments import describe, grammar

MAX_DEFINITION_CHARS = 50_000


class SegmentForm(forms.Form):
    name = forms.CharField(label=_("分群名称"), max_length=64)
    description = forms.CharField(label=_("说明"), max_length=255, required=False)
    definition = forms.CharField(widget=forms.HiddenInput, max_length=MAX_DEFINITION_CHARS, required=False)

    def __init__(self, *args: Any, scope: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.scope = scope

    def clean_name(self) -> str:
        name = (self.cleaned_data.get("name") or "").strip()
        if not name:
            raise forms.ValidationError(_("请填写分群名称"))
        return name

    def clean_definition(self) -> dict[str, Any]:
        return clean_definition(self.cleaned_data.get("definition") or "", self.scope)


def clean_definition(raw: Any, scope: Any) -> dict[str, Any]:
    """The definition posted as JSON text, checked by the grammar and in the viewer's scope (a
    forged or foreign id is an error, never counted); raises ``forms.ValidationError``."""
    if isinstance(raw, str):
        if len(raw) > MAX_DEFINITION_CHARS:
            raise forms.ValidationError(_("条件太多"))
        try:
            data = json.loads(raw) if raw.strip() else {"op": "and", "items": []}
        except ValueError:
            raise forms.ValidationError(_("条件格式无效")) from None
    else:
        data = raw
    if not isinstance(data, dict):
        raise forms.ValidationError(_("条件格式无效"))
    try:
        grammar.parse(data)
    except grammar.DefinitionError as e:
        raise forms.ValidationError([gettext("条件有误：%(error)s") % {"error": m} for m in e.messages]) from None
    definition = data
    if scope is not None:
        for src, values in describe.picker_values(definition).items():
            found = pickers.source(src).resolve(values, scope) if values else {}
            missing = [v for v in values if v not in found]
            if missing:
                raise forms.ValidationError(
                    gettext("所选的%(what)s不存在或不在您的数据范围内") % {"what": SOURCE_NAMES.get(src, src)}
                )
    return dict(definition)


SOURCE_NAMES = {
    "tags": _("标签"),
    "employees": _("员工"),
    "departments": _("部门"),
    "channels": _("渠道"),
    "groups": _("客户群"),
}


class QuickForm(forms.Form):
    """A saved segment of one RFM class or one lifecycle stage (the RFM page's one-click link)."""

    rfm_class = forms.ChoiceField(required=False, choices=())
    stage = forms.ChoiceField(required=False, choices=())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        blank = [("", "")]
        cast(forms.ChoiceField, self.fields["rfm_class"]).choices = blank + insight_selectors.rfm_class_choices()
        cast(forms.ChoiceField, self.fields["stage"]).choices = blank + insight_selectors.stage_choices()

    def clean(self) -> dict[str, Any]:
        d = super().clean() or {}
        if bool(d.get("rfm_class")) == bool(d.get("stage")):
            raise forms.ValidationError(_("请选择一个 RFM 分类或一个生命周期阶段"))
        return d

    def definition(self) -> dict[str, Any]:
        return prefill_definition(self.cleaned_data)

    def name(self) -> str:
        d = self.cleaned_data
        if d.get("rfm_class"):
            return str(dict(insight_selectors.rfm_class_choices())[d["rfm_class"]])
        return str(dict(insight_selectors.stage_choices())[d["stage"]])


def prefill_definition(params: Any) -> dict[str, Any]:
    """A starting definition from a query string (``?rfm_class=important_value``, ``?stage=loyal``,
    ``?value_band=high``): the RFM page's and the funnel's links. Unknown values are ignored."""
    items: list[dict[str, Any]] = []
    for key, choices in (
        ("rfm_class", insight_selectors.rfm_class_choices),
        ("stage", insight_selectors.stage_choices),
        ("value_band", insight_selectors.value_band_choices),
    ):
        raw = params.getlist(key) if hasattr(params, "getlist") else [params.get(key)]
        allowed = {k for k, _label in choices()}
        values = [str(v) for v in raw if v and str(v) in allowed]
        if values:
            items.append({"field": key, "op": "in", "value": list(dict.fromkeys(values))})
    return {"op": "and", "items": items}
