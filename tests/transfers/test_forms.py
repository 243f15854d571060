"""Fast layer (database only, no emulator): the transfer console's posts are validated by forms,
and the churn rule is written by a service."""

from __future__ import annotations

import pytest

from siyu.org.models import Department, Employee
from siyu.transfers import forms, services
from siyu.transfers.models import ChurnRule, Handover

pytestmark = pytest.mark.django_db


def test_churn_rule_form_and_service():
    bad = forms.ChurnRuleForm({"mode": "loud", "digest_hour": "24"})
    assert not bad.is_valid() and set(bad.errors) == {"mode", "digest_hour"}
    assert services.churn_rule().mode == ChurnRule.Mode.IMMEDIATE  # nothing written
    good = forms.ChurnRuleForm({"mode": "digest", "digest_hour": "21"})
    assert good.is_valid()
    services.set_churn_rule(**good.cleaned_data)
    rule = ChurnRule.objects.get(id=1)
    assert (rule.mode, rule.digest_hour) == ("digest", 21)


def test_resigned_form_keeps_order_and_refuses_foreign_ids():
    a, b, c = (Employee.objects.create(userid=u, name=u) for u in ("a", "b", "c"))
    store = Department.objects.create(id=7, name="store", path="/7/")
    data = {
        "strategy": "count",
        "takeover": [str(c.id), str(a.id), str(c.id)],
        f"count_{a.id}": "3",
        f"count_{c.id}": "",
    }
    form = forms.ResignedAssignForm(data, takeovers=[a, c], stores=[store])
    assert form.is_valid(), form.errors
    chosen = form.chosen()
    assert [e.userid for e in chosen] == ["c", "a"]
    assert form.per_takeover("count", chosen) == {c.id: 0, a.id: 3}
    # an employee outside the offered takeovers, a negative count, an unknown strategy: errors
    for bad in ({"takeover": [str(b.id)]}, {"takeover": [str(a.id)], f"count_{a.id}": "-1"}, {"strategy": "all"}):
        form = forms.ResignedAssignForm(bad, takeovers=[a, c], stores=[store])
        assert not form.is_valid() and forms.error_text(form)
    # no strategy posted: one takeover for everything
    form = forms.ResignedAssignForm({"takeover": [str(a.id)]}, takeovers=[a, c], stores=[store])
    assert form.is_valid() and form.cleaned_data["strategy"] == Handover.Strategy.SINGLE


def test_onjob_form():
    a, b = Employee.objects.create(userid="a"), Employee.objects.create(userid="b")

    class G:
        chat_id = "wrchat1"

    form = forms.OnjobForm(
        {"takeover": str(b.id), "x": ["wmX1", "wmX2"], "chat": ["wrchat1"], "message": " hi "},
        takeovers=[b],
        groups=[G()],
    )
    assert form.is_valid(), form.errors
    assert form.takeover_employee() == b and form.cleaned_data["message"] == "hi"
    assert form.cleaned_data["x"] == ["wmX1", "wmX2"]
    form = forms.OnjobForm({"takeover": str(a.id), "chat": ["wrother"]}, takeovers=[b], groups=[G()])
    assert not form.is_valid() and set(form.errors) == {"takeover", "chat"}
    form = forms.OnjobForm({"message": "x" * 201}, takeovers=[b], groups=[G()])
    assert not form.is_valid() and "message" in form.errors
