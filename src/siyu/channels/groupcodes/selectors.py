"""Reads of group QR codes (群活码). Every console role that reaches the page manages all codes
(the page is admin/operator only), so no DataScope narrows them."""

from __future__ import annotations

from siyu.channels.models import GroupCode, GroupWelcomeTemplate


def group_codes() -> list[GroupCode]:
    return list(GroupCode.objects.select_related("welcome_template"))


def welcome_templates() -> list[GroupWelcomeTemplate]:
    return list(GroupWelcomeTemplate.objects.all())


def welcome_template(pk: int | None) -> GroupWelcomeTemplate | None:
    return GroupWelcomeTemplate.objects.filter(id=pk).first() if pk else None


def template_choices() -> list[tuple[str, str]]:
    """(id, name) of every group welcome template, newest first, for the group code form."""
    return [(str(pk), name) for pk, name in GroupWelcomeTemplate.objects.values_list("id", "name")]


def any_live() -> bool:
    """True when some group code has a WeCom join way (its events are worth reading)."""
    return GroupCode.objects.exclude(config_id="").exists()
