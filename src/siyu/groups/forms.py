"""Console forms of the group pages: the list's owner and department filters as pickers (by name,
with the department tree). The view still reads ``owner`` / ``department`` as ids and the scoped
selectors narrow them."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from siyu.core import pickers


class GroupFilterPickForm(forms.Form):
    owner = pickers.PickerField("employees", multiple=False, tree="filter", label=_("群主"), required=False)
    department = pickers.PickerField("departments", multiple=False, tree="pick", label=_("部门"), required=False)

    def __init__(self, *args: Any, scope: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_filter_%s")
        super().__init__(*args, **kwargs)
        pickers.bind(self, scope)
