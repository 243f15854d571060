"""The insights settings form (window, scoring, thresholds, stage rules, value bands, mirror)."""

from __future__ import annotations

import itertools
from typing import Any, cast

from django import forms
from django.utils.translation import gettext_lazy as _

from siyu.insights.models import Settings

BAND_KEYS = ("high", "medium", "low")


def _numbers(text: str, *, integer: bool) -> list[float]:
    parts = [p.strip() for p in text.replace("，", ",").split(",") if p.strip()]
    try:
        values = [float(p) for p in parts]
    except ValueError as e:
        raise forms.ValidationError(_("请填写用逗号分隔的数字。")) from e
    if len(values) != 4:
        raise forms.ValidationError(_("需要 4 个分界值（由小到大）。"))
    if any(v < 0 or v != v or v > 1e12 for v in values):
        raise forms.ValidationError(_("分界值不能为负数。"))
    if integer and any(v != int(v) for v in values):
        raise forms.ValidationError(_("分界值须为整数。"))
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise forms.ValidationError(_("分界值须由小到大严格递增。"))
    return [int(v) if integer else round(v, 2) for v in values]


class SettingsForm(forms.Form):
    window_days = forms.IntegerField(label=_("统计窗口（天）"), min_value=1, max_value=3650)
    scoring = forms.ChoiceField(
        label=_("评分方式"), choices=[("quantile", _("按五分位自动评分")), ("thresholds", _("按自定义分界值"))]
    )
    r_thresholds = forms.CharField(
        label=_("R 分界值（天）"), required=False, help_text=_("4 个数，由小到大；距上次购买天数 ≤ 第一个值得 5 分")
    )
    f_thresholds = forms.CharField(
        label=_("F 分界值（单）"), required=False, help_text=_("4 个数，由小到大；订单数 ≤ 第一个值得 1 分")
    )
    m_thresholds = forms.CharField(
        label=_("M 分界值（元）"), required=False, help_text=_("4 个数，由小到大；消费金额 ≤ 第一个值得 1 分")
    )
    loyal_orders = forms.IntegerField(label=_("忠诚客：订单数"), min_value=2, max_value=1000)
    loyal_days = forms.IntegerField(label=_("忠诚客：天数内"), min_value=1, max_value=3650)
    dormant_days = forms.IntegerField(label=_("沉睡：未购买天数"), min_value=1, max_value=3650)
    lost_days = forms.IntegerField(label=_("流失：未购买天数"), min_value=1, max_value=3650)
    high_label = forms.CharField(label=_("高价值名称"), max_length=16)
    high_min = forms.IntegerField(label=_("高价值最低分"), min_value=1, max_value=100)
    medium_label = forms.CharField(label=_("中价值名称"), max_length=16)
    medium_min = forms.IntegerField(label=_("中价值最低分"), min_value=1, max_value=100)
    low_label = forms.CharField(label=_("低价值名称"), max_length=16)
    low_min = forms.IntegerField(label=_("低价值最低分"), min_value=1, max_value=100)
    mirror_enabled = forms.BooleanField(label=_("同步为企业微信标签"), required=False)
    mirror_tag_group_id = forms.TypedChoiceField(
        label=_("标签组"), required=False, coerce=int, empty_value=None, choices=[]
    )

    def __init__(self, *args: Any, groups: list[tuple[int, str]] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        field = cast(forms.TypedChoiceField, self.fields["mirror_tag_group_id"])
        field.choices = [("", _("（不选择）")), *(groups or [])]

    @classmethod
    def initial_of(cls, s: Settings, bands: list[dict[str, Any]]) -> dict[str, Any]:
        t = s.thresholds or {}
        out: dict[str, Any] = {
            "window_days": s.window_days,
            "scoring": s.scoring,
            "r_thresholds": ", ".join(str(x) for x in t.get("r", [])),
            "f_thresholds": ", ".join(str(x) for x in t.get("f", [])),
            "m_thresholds": ", ".join(str(x) for x in t.get("m", [])),
            "loyal_orders": s.loyal_orders,
            "loyal_days": s.loyal_days,
            "dormant_days": s.dormant_days,
            "lost_days": s.lost_days,
            "mirror_enabled": s.mirror_enabled,
            "mirror_tag_group_id": s.mirror_tag_group_id,
        }
        by_key = {b["key"]: b for b in bands}
        defaults = {"high": ("高价值", 70), "medium": ("中价值", 40), "low": ("低价值", 1)}
        for key in BAND_KEYS:
            b = by_key.get(key, {})
            out[f"{key}_label"] = b.get("label", defaults[key][0])
            out[f"{key}_min"] = b.get("min", defaults[key][1])
        return out

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("scoring") == "thresholds":
            for name, integer in (("r_thresholds", True), ("f_thresholds", True), ("m_thresholds", False)):
                try:
                    data[name] = _numbers(data.get(name) or "", integer=integer)
                except forms.ValidationError as e:
                    self.add_error(name, e)
        else:
            for name, integer in (("r_thresholds", True), ("f_thresholds", True), ("m_thresholds", False)):
                text = (data.get(name) or "").strip()
                if text:
                    try:
                        data[name] = _numbers(text, integer=integer)
                    except forms.ValidationError as e:
                        self.add_error(name, e)
        dormant, lost = data.get("dormant_days"), data.get("lost_days")
        if dormant and lost and lost <= dormant:
            self.add_error("lost_days", _("流失天数须大于沉睡天数。"))
        mins = [m for m in (data.get(f"{k}_min") for k in BAND_KEYS) if isinstance(m, int)]
        if len(mins) == 3 and not (mins[0] > mins[1] > mins[2]):
            self.add_error("medium_min", _("各价值分层的最低分须由高到低严格递减。"))
        if data.get("mirror_enabled") and not data.get("mirror_tag_group_id"):
            self.add_error("mirror_tag_group_id", _("开启同步时请选择一个标签组。"))
        return data

    def values(self) -> dict[str, Any]:
        d = self.cleaned_data
        thresholds: dict[str, list[float]] = {}
        for k in "rfm":
            v = d.get(f"{k}_thresholds")
            if isinstance(v, list):
                thresholds[k] = v
        return {
            "window_days": d["window_days"],
            "scoring": d["scoring"],
            "thresholds": thresholds if len(thresholds) == 3 else {},
            "loyal_orders": d["loyal_orders"],
            "loyal_days": d["loyal_days"],
            "dormant_days": d["dormant_days"],
            "lost_days": d["lost_days"],
            "value_bands": [{"key": k, "label": d[f"{k}_label"], "min": d[f"{k}_min"]} for k in BAND_KEYS],
            "mirror_enabled": bool(d.get("mirror_enabled")),
            "mirror_tag_group_id": d.get("mirror_tag_group_id"),
        }
