"""Reads of the insights app (scoped by the viewer's DataScope)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from siyu.insights.models import Metrics, RfmClass, Settings, Stage


def metrics() -> QuerySet[Metrics]:
    """Every profile's metrics row (RFM, stage, value; ``profile_id`` is the primary key)."""
    return Metrics.objects.all()


# --- labels for the segment builder (added by part E, segments console) ---------------------------
# the value bands when the operator has set none (min score, highest first)
DEFAULT_VALUE_BANDS: list[dict[str, object]] = [
    {"key": "high", "label": _("高价值"), "min": 80},
    {"key": "medium", "label": _("中价值"), "min": 50},
    {"key": "low", "label": _("低价值"), "min": 20},
    {"key": "minimal", "label": _("潜力"), "min": 0},
]


def rfm_class_choices() -> list[tuple[str, str]]:
    """The eight RFM classes: (key, label)."""
    return [(str(k), str(v)) for k, v in RfmClass.choices]


def stage_choices() -> list[tuple[str, str]]:
    """The lifecycle stages in order: (key, label)."""
    return [(str(k), str(v)) for k, v in Stage.choices]


def value_band_choices() -> list[tuple[str, str]]:
    """The value bands of the operator's settings (or the defaults): (key, label), highest first."""
    row = Settings.objects.filter(pk=1).only("value_bands").first()
    bands = (row.value_bands if row is not None else None) or DEFAULT_VALUE_BANDS
    out = [(str(b["key"]), str(b.get("label") or b["key"])) for b in bands if isinstance(b, dict) and b.get("key")]
    return out or [(str(b["key"]), str(b["label"])) for b in DEFAULT_VALUE_BANDS]
