"""The walk over changed orders (new ones and refunds) that keeps their attribution current: one
recurring timer (``attribution.walk``) carrying its watermark from run to run."""

from __future__ import annotations

from siyu.attribution import services
from siyu.core import timers

KIND = "attribution.walk"
ensure_scheduled = timers.walk(KIND, services.step, every_s=5.0, busy_s=0.2, batch=services.BATCH)
