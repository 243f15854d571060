"""Fast layer: date and time fields use the browser's pickers (a format hint, issue 16 item 8)."""

from __future__ import annotations

from datetime import datetime

from django import forms

from siyu.core import inputs


class _Form(forms.Form):
    day = inputs.DateField(required=False)
    at = inputs.DateTimeField(required=False)


def test_date_and_datetime_fields_render_pickers_and_take_their_values():
    html = str(_Form())
    assert 'type="date"' in html and 'type="datetime-local"' in html
    f = _Form({"day": "2026-03-02", "at": "2026-03-02T09:30"})
    assert f.is_valid(), f.errors
    assert f.cleaned_data["at"].replace(tzinfo=None) == datetime(2026, 3, 2, 9, 30)
    assert 'value="2026-03-02T09:30"' in str(_Form(initial={"at": datetime(2026, 3, 2, 9, 30)}))
