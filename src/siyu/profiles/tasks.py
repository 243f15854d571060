"""The incremental link of WeCom customers to profiles: one recurring timer (kind
``profiles.link``, one pending at a time under its key) walks the customers' id and updated_at
watermarks, carried in its payload from one run to the next. A worker that starts with no such
timer pending schedules one without a payload: its first run is the set-based backfill, which
catches up whatever was missed."""

from __future__ import annotations

from siyu.core import timers
from siyu.profiles import services

KIND = KEY = "profiles.link"
# new and changed customers are linked within about two seconds
ensure_scheduled = timers.walk(KIND, services.link_step, every_s=2.0, busy_s=0.2, batch=services.LINK_BATCH)
