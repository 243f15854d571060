"""Console forms of continuity (客户继承): the churn-alert rule and the resigned / on-job transfer
forms. The choices (takeovers, stores, groups) come from the view's scoped selectors, so a forged
id outside the viewer's scope is a form error, never a silent write."""

from __future__ import annotations

from typing import cast

from django import forms
from django.utils.translation import gettext_lazy as _

from siyu.core import inputs, pickers
from siyu.transfers.models import ChurnRule, Handover

COUNT_MAX = 1_000_000  # the API's bound on a per-takeover count or cap


class ChurnRuleForm(forms.Form):
    mode = forms.ChoiceField(label=_("通知方式"), choices=ChurnRule.Mode.choices)
    digest_hour = forms.IntegerField(label=_("汇总时间（点）"), min_value=0, max_value=23)


class _Values(forms.MultipleChoiceField):
    """A list of WeCom ids (external_userids) checked against the scope by a selector afterwards."""

    def valid_value(self, value) -> bool:
        return 0 < len(value) <= 64


def _ids(rows) -> list[tuple[int, str]]:
    return [(r.id, str(r)) for r in rows]


class ResignedAssignForm(inputs.TextCheckMixin, forms.Form):
    """Posted by the resigned-assign page: a strategy, takeovers (in the order ticked), stores, and
    per takeover a count (``count_<id>``) and a cap (``cap_<id>``)."""

    strategy = forms.ChoiceField(choices=Handover.Strategy.choices, required=False)
    takeover = forms.TypedMultipleChoiceField(coerce=int, required=False)
    store = forms.TypedMultipleChoiceField(coerce=int, required=False)

    def __init__(self, data=None, *, takeovers, stores):
        super().__init__(data)
        self.takeovers = list(takeovers)
        cast(forms.ChoiceField, self.fields["takeover"]).choices = _ids(self.takeovers)
        cast(forms.ChoiceField, self.fields["store"]).choices = _ids(stores)
        for e in self.takeovers:
            self.fields[f"count_{e.id}"] = forms.IntegerField(min_value=0, max_value=COUNT_MAX, required=False)
            self.fields[f"cap_{e.id}"] = forms.IntegerField(min_value=0, max_value=COUNT_MAX, required=False)

    def clean_strategy(self) -> str:
        return self.cleaned_data.get("strategy") or Handover.Strategy.SINGLE

    def chosen(self) -> list:
        """The ticked takeovers, in the order posted, each once."""
        by_id = {e.id: e for e in self.takeovers}
        return [by_id[i] for i in dict.fromkeys(self.cleaned_data["takeover"])]

    def per_takeover(self, prefix: str, employees) -> dict[int, int]:
        return {e.id: self.cleaned_data.get(f"{prefix}_{e.id}") or 0 for e in employees}


class OnjobForm(inputs.TextCheckMixin, forms.Form):
    """Posted by the on-job page: one takeover, the customers (``x``), the groups and the message
    WeCom shows the customers."""

    takeover = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    x = _Values(required=False)
    chat = forms.MultipleChoiceField(required=False)
    message = forms.CharField(max_length=200, required=False)

    def __init__(self, data=None, *, takeovers, groups):
        super().__init__(data)
        self.takeovers = {e.id: e for e in takeovers}
        cast(forms.ChoiceField, self.fields["takeover"]).choices = [("", ""), *_ids(self.takeovers.values())]
        cast(forms.ChoiceField, self.fields["chat"]).choices = [(g.chat_id, g.chat_id) for g in groups]

    def takeover_employee(self):
        return self.takeovers.get(self.cleaned_data.get("takeover"))


class OnjobPickForm(forms.Form):
    """The on-job page's employee pickers (by name, with the department tree): the handing-over
    employee of the filter and the takeover. Only drawn here: the view and ``OnjobForm`` check the
    posted ids against the scoped takeover choices."""

    handover = pickers.PickerField("employees", multiple=False, tree="filter", required=False)
    takeover = pickers.PickerField("employees", multiple=False, tree="filter", required=False)

    def __init__(self, *args, scope, **kwargs):
        kwargs.setdefault("auto_id", "id_pick_%s")
        super().__init__(*args, **kwargs)
        pickers.bind(self, scope)


class StorePickForm(forms.Form):
    """The resigned-assign page's stores, picked by name from the department tree (the posted ids
    are checked by ``ResignedAssignForm`` against the scoped stores)."""

    store = pickers.PickerField("departments", tree="pick", required=False)

    def __init__(self, *args, scope, **kwargs):
        kwargs.setdefault("auto_id", "id_pick_%s")
        super().__init__(*args, **kwargs)
        pickers.bind(self, scope)


class ChurnPickForm(forms.Form):
    """The churn alerts' employee filter as a picker (the view reads ``employee`` as an id and the
    scoped selector narrows it)."""

    employee = pickers.PickerField("employees", multiple=False, tree="filter", required=False)

    def __init__(self, *args, scope, **kwargs):
        kwargs.setdefault("auto_id", "id_churn_%s")
        super().__init__(*args, **kwargs)
        pickers.bind(self, scope)


def error_text(form: forms.Form) -> str:
    """The form's errors as one line for a message banner."""
    return " ".join(str(e) for errors in form.errors.values() for e in errors)
