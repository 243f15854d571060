"""Reads of group QR codes (群活码). Every console role that reaches the page manages all codes
(the page is admin/operator only), so no DataScope narrows them."""

from __future__ import annotations

from siyu.channels.models import GroupCode


def group_codes() -> list[GroupCode]:
    return list(GroupCode.objects.all())


def any_live() -> bool:
    """True when some group code has a WeCom join way (its events are worth reading)."""
    return GroupCode.objects.exclude(config_id="").exists()
