"""REST endpoints of the insights app: a person's metrics, the RFM class counts, the settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import Http404
from ninja import Router, Schema
from ninja.errors import HttpError

from siyu.accounts.permissions import Role, require_role, scope_of
from siyu.core.api_schemas import responses
from siyu.core.inputs import DbId, InputSchema
from siyu.insights import selectors, services
from siyu.insights.forms import BAND_KEYS, SettingsForm
from siyu.profiles import selectors as profile_selectors

router = Router(tags=["insights"])
SETTINGS_ROLES = (Role.ADMIN, Role.OPERATOR)


class MetricsOut(Schema):
    profile_id: int
    orders: int
    amount: str
    orders_total: int
    amount_total: str
    first_order_at: datetime | None
    last_order_at: datetime | None
    r: int
    f: int
    m: int
    rfm_class: str
    rfm_class_label: str
    stage: str
    stage_label: str
    stage_since: datetime | None
    value_score: int
    value_band: str
    value_band_label: str
    computed_at: datetime


class ClassCount(Schema):
    key: str
    label: str
    count: int
    share: float
    amount: str


class RfmOut(Schema):
    scored: int
    classes: list[ClassCount]


class Band(Schema):
    key: str
    label: str
    min: int


class SettingsOut(Schema):
    window_days: int
    scoring: str
    thresholds: dict[str, list[float]]
    loyal_orders: int
    loyal_days: int
    dormant_days: int
    lost_days: int
    value_bands: list[Band]
    mirror_enabled: bool
    mirror_tag_group_id: int | None


class SettingsIn(SettingsOut, InputSchema):
    pass


@router.get(
    "/cdp/profiles/{int:profile_id}/metrics",
    response=responses(MetricsOut, 404),
    summary="A person's RFM scores and class, lifecycle stage, value score and band",
)
def profile_metrics(request, profile_id: DbId):
    found = profile_selectors.clusters([profile_id])
    if not found:
        raise Http404
    person = next(iter(found))
    if not profile_selectors.person_queryset(scope_of(request)).filter(id=person).exists():
        raise HttpError(403, "out of scope")
    data = selectors.metrics_dict(selectors.person_metrics(person))
    if data is None:
        raise HttpError(404, "not computed yet")
    data["amount"] = str(data["amount"])
    data["amount_total"] = str(data["amount_total"])
    return data


@router.get("/cdp/rfm", response=responses(RfmOut), summary="Persons per RFM class (within the caller's scope)")
def rfm_counts(request):
    classes = selectors.class_summary(scope_of(request))
    return {
        "scored": sum(c["count"] for c in classes),
        "classes": [{**c, "amount": str(c["amount"])} for c in classes],
    }


def _settings_out() -> dict[str, Any]:
    s = services.get_settings()
    return {
        "window_days": s.window_days,
        "scoring": s.scoring,
        "thresholds": s.thresholds or {},
        "loyal_orders": s.loyal_orders,
        "loyal_days": s.loyal_days,
        "dormant_days": s.dormant_days,
        "lost_days": s.lost_days,
        "value_bands": selectors.band_list(s),
        "mirror_enabled": s.mirror_enabled,
        "mirror_tag_group_id": s.mirror_tag_group_id,
    }


@router.get("/cdp/insights/settings", response=responses(SettingsOut), summary="The RFM, lifecycle and value settings")
def get_settings(request):
    require_role(request, *SETTINGS_ROLES)
    return _settings_out()


@router.put(
    "/cdp/insights/settings",
    response=responses(SettingsOut, 400),
    summary="Change the settings (a rule change queues a full recompute)",
)
def put_settings(request, body: SettingsIn):
    require_role(request, *SETTINGS_ROLES)
    bands = {b.key: b for b in body.value_bands}
    if set(bands) != set(BAND_KEYS):
        raise HttpError(400, "value_bands: exactly the bands high, medium and low")
    data: dict[str, Any] = {
        "window_days": body.window_days,
        "scoring": body.scoring,
        "loyal_orders": body.loyal_orders,
        "loyal_days": body.loyal_days,
        "dormant_days": body.dormant_days,
        "lost_days": body.lost_days,
        "mirror_enabled": body.mirror_enabled,
        "mirror_tag_group_id": body.mirror_tag_group_id or "",
    }
    for k in "rfm":
        data[f"{k}_thresholds"] = ", ".join(str(x) for x in body.thresholds.get(k, []))
    for k in BAND_KEYS:
        data[f"{k}_label"] = bands[k].label
        data[f"{k}_min"] = bands[k].min
    form = SettingsForm(data, groups=selectors.tag_group_choices())
    if not form.is_valid():
        problems = "; ".join(f"{name}: {' '.join(str(e) for e in errs)}" for name, errs in form.errors.items())
        raise HttpError(400, problems)
    services.update_settings(form.values())
    return _settings_out()
