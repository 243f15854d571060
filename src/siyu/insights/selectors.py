"""Reads of the insights app (scoped by the viewer's DataScope): the RFM page's classes and score
distributions, the lifecycle funnel, one person's metrics, the settings and the runs."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Any, TypedDict

from django.db.models import Count, QuerySet, Sum
from django.utils.translation import gettext

from siyu.accounts.selectors import DataScope
from siyu.customers.tags import selectors as tag_selectors
from siyu.insights import compute
from siyu.insights.models import Metrics, RfmClass, Run, Settings, Stage, StageCount
from siyu.profiles import selectors as profile_selectors


def metrics_queryset(scope: DataScope) -> QuerySet[Metrics]:
    """The metrics rows of the persons the viewer may see."""
    if scope.everything:
        return Metrics.objects.all()
    return Metrics.objects.filter(profile_id__in=profile_selectors.person_queryset(scope).values("id"))


class ClassRow(TypedDict):
    key: str
    label: str
    count: int
    share: float  # percent of the scored persons
    amount: Decimal  # window amount, net of refunds


def class_summary(scope: DataScope) -> list[ClassRow]:
    """The eight RFM classes in their usual order, with count, share and window amount."""
    rows = {
        k: (n, a or Decimal(0))
        for k, n, a in metrics_queryset(scope)
        .exclude(rfm_class="")
        .values_list("rfm_class")
        .annotate(n=Count("pk"), a=Sum("amount"))
        .values_list("rfm_class", "n", "a")
    }
    total = sum(n for n, _ in rows.values())
    out: list[ClassRow] = []
    for choice in RfmClass:
        n, amount = rows.get(choice.value, (0, Decimal(0)))
        out.append(
            {
                "key": choice.value,
                "label": str(choice.label),
                "count": n,
                "share": round(100.0 * n / total, 1) if total else 0.0,
                "amount": amount,
            }
        )
    return out


def class_counts(scope: DataScope) -> dict[str, int]:
    return {r["key"]: r["count"] for r in class_summary(scope)}


def score_distribution(scope: DataScope) -> dict[str, list[int]]:
    """How many persons have each R, F and M score (index 0 = score 1 ... 4 = score 5)."""
    out: dict[str, list[int]] = {}
    qs = metrics_queryset(scope)
    for name in ("r", "f", "m"):
        counts = dict(qs.filter(**{f"{name}__gt": 0}).values_list(name).annotate(n=Count("pk")).values_list(name, "n"))
        out[name] = [int(counts.get(s, 0)) for s in range(1, 6)]
    return out


class StageRow(TypedDict):
    key: str
    label: str
    count: int


def stage_counts(scope: DataScope) -> list[StageRow]:
    """Persons per stage now, funnel order (prospect first)."""
    counts = dict(metrics_queryset(scope).values_list("stage").annotate(n=Count("pk")).values_list("stage", "n"))
    return [{"key": s.value, "label": str(s.label), "count": int(counts.get(s.value, 0))} for s in Stage]


class Move(TypedDict):
    from_key: str
    from_label: str
    to_key: str
    to_label: str
    count: int


def _labels() -> dict[str, str]:
    return {s.value: str(s.label) for s in Stage}


def moves_this_week(scope: DataScope) -> list[Move]:
    """Moves between stages since the last weekly snapshot (each person's ``week_stage``)."""
    labels = _labels()
    rows = (
        metrics_queryset(scope)
        .exclude(week_stage="")
        .values_list("week_stage", "stage")
        .annotate(n=Count("pk"))
        .values_list("week_stage", "stage", "n")
    )
    out: list[Move] = [
        {"from_key": a, "from_label": labels.get(a, a), "to_key": b, "to_label": labels.get(b, b), "count": n}
        for a, b, n in rows
        if a != b
    ]
    return sorted(out, key=lambda m: -m["count"])


class Week(TypedDict):
    week: date
    counts: dict[str, int]
    moves: list[Move]


def weekly_history(scope: DataScope, weeks: int = 12) -> list[Week] | None:
    """The weekly snapshots (newest first), corp-wide: None for a scoped viewer (the snapshots
    count every person)."""
    if not scope.everything:
        return None
    labels = _labels()
    recent = list(StageCount.objects.values_list("week", flat=True).distinct().order_by("-week")[:weeks])
    by_week: dict[date, Week] = {w: {"week": w, "counts": {}, "moves": []} for w in recent}
    for row in StageCount.objects.filter(week__in=recent):
        slot = by_week[row.week]
        if row.from_stage:
            slot["moves"].append(
                {
                    "from_key": row.from_stage,
                    "from_label": labels.get(row.from_stage, row.from_stage),
                    "to_key": row.stage,
                    "to_label": labels.get(row.stage, row.stage),
                    "count": row.count,
                }
            )
        else:
            slot["counts"][row.stage] = row.count
    for w in by_week.values():
        w["moves"].sort(key=lambda m: -m["count"])
    return [by_week[w] for w in recent]


def person_metrics(person_id: int) -> Metrics | None:
    return Metrics.objects.filter(profile_id=person_id).first()


def metrics_dict(m: Metrics | None, settings: Settings | None = None) -> dict[str, Any] | None:
    """A person's metrics for the profile section and the API (labels resolved)."""
    if m is None:
        return None
    # a label still the default Chinese one in the viewer's language (as value_band_choices)
    bands = {b["key"]: gettext(str(b.get("label") or b["key"])) for b in band_list(settings or current_settings())}
    return {
        "profile_id": m.profile_id,
        "orders": m.orders,
        "amount": m.amount,
        "orders_total": m.orders_total,
        "amount_total": m.amount_total,
        "first_order_at": m.first_order_at,
        "last_order_at": m.last_order_at,
        "r": m.r,
        "f": m.f,
        "m": m.m,
        "rfm_class": m.rfm_class,
        "rfm_class_label": str(RfmClass(m.rfm_class).label) if m.rfm_class in RfmClass.values else "",
        "stage": m.stage,
        "stage_label": str(Stage(m.stage).label) if m.stage in Stage.values else m.stage,
        "stage_since": m.stage_since,
        "value_score": m.value_score,
        "value_band": m.value_band,
        "value_band_label": bands.get(m.value_band, m.value_band),
        "computed_at": m.computed_at,
    }


def current_settings() -> Settings:
    s = Settings.objects.filter(pk=1).first()
    return s if s is not None else Settings(pk=1, value_bands=compute.DEFAULT_BANDS)


def band_list(s: Settings) -> list[dict[str, Any]]:
    bands = s.value_bands if isinstance(s.value_bands, list) and s.value_bands else compute.DEFAULT_BANDS
    return sorted(bands, key=lambda b: -int(b["min"]))


def last_runs(limit: int = 5) -> list[Run]:
    return list(Run.objects.order_by("-id")[:limit])


def run_busy() -> bool:
    return Run.objects.filter(status__in=(Run.Status.QUEUED, Run.Status.RUNNING)).exists()


def tag_group_choices() -> list[tuple[int, str]]:
    """The corp tag groups an operator may pick for the mirror (names, not ids)."""
    return tag_selectors.group_choices()


def metrics() -> QuerySet[Metrics]:
    """Every profile's metrics row (RFM, stage, value; ``profile_id`` is the primary key)."""
    return Metrics.objects.all()


# --- reads of the segment console (siyu.segments views) ------------------------------------


def rfm_class_choices() -> list[tuple[str, str]]:
    """The eight RFM classes: (key, label)."""
    return [(str(k), str(v)) for k, v in RfmClass.choices]


def stage_choices() -> list[tuple[str, str]]:
    """The lifecycle stages in order: (key, label)."""
    return [(str(k), str(v)) for k, v in Stage.choices]


def value_band_choices() -> list[tuple[str, str]]:
    """The value bands of the operator's settings (or the defaults): (key, label), highest first;
    a label still the default Chinese one is shown in the viewer's language."""
    return [(str(b["key"]), gettext(str(b.get("label") or b["key"]))) for b in band_list(current_settings())]


def stage_labels(person_ids: Iterable[int]) -> dict[int, str]:
    """Each person's lifecycle stage label (persons without metrics are left out)."""
    labels = dict(Stage.choices)
    rows = Metrics.objects.filter(profile_id__in=list(person_ids)).values_list("profile_id", "stage")
    return {pid: str(labels.get(stage, stage)) for pid, stage in rows}
