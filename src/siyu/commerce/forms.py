"""Console forms of the commerce app."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from siyu.commerce.models import ImportJob


class ImportForm(forms.Form):
    kind = forms.ChoiceField(label=_("数据类型"), choices=ImportJob.Kind.choices)
    file = forms.FileField(label=_("文件（CSV 或 XLSX）"))
    dry_run = forms.BooleanField(label=_("仅预检（不写入数据）"), required=False)
