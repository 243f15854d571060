"""Reads of the insights app (scoped by the viewer's DataScope)."""

from __future__ import annotations

from django.db.models import QuerySet

from siyu.insights.models import Metrics


def metrics() -> QuerySet[Metrics]:
    """Every profile's metrics row (RFM, stage, value; ``profile_id`` is the primary key)."""
    return Metrics.objects.all()
