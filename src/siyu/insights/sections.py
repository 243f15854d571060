"""The profile page's RFM section (registered with ``siyu.profiles.sections`` in ``ready()``)."""

from __future__ import annotations

from typing import Any

from siyu.insights import selectors


def rfm_section(person_id: int, cluster_ids: list[int], viewer: Any) -> dict[str, Any] | None:
    settings = selectors.current_settings()
    return {
        "metrics": selectors.metrics_dict(selectors.person_metrics(person_id), settings),
        "window_days": settings.window_days,
    }
