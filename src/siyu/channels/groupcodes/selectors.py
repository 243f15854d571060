"""Reads of group QR codes (群活码). Every console role that reaches the page manages all codes
(the page is admin/operator only), so no DataScope narrows them."""

from __future__ import annotations

from typing import TypedDict

from siyu.channels.models import GroupCode, GroupWelcomeTemplate
from siyu.groups import selectors as group_selectors


def group_codes() -> list[GroupCode]:
    return list(GroupCode.objects.select_related("welcome_template"))


def welcome_templates() -> list[GroupWelcomeTemplate]:
    return list(GroupWelcomeTemplate.objects.all())


def welcome_template(pk: int | None) -> GroupWelcomeTemplate | None:
    return GroupWelcomeTemplate.objects.filter(id=pk).first() if pk else None


def template_choices() -> list[tuple[str, str]]:
    """(id, name) of every group welcome template, newest first, for the group code form."""
    return [(str(pk), name) for pk, name in GroupWelcomeTemplate.objects.values_list("id", "name")]


class CodeGroup(TypedDict):
    chat_id: str
    name: str  # "" when the group is not synced here (yet) or has no name


class GroupCodeRow(TypedDict):
    code: GroupCode
    groups: list[CodeGroup]


def group_code_rows() -> list[GroupCodeRow]:
    """Every group code with its groups by name (the list shows names, the chat id only as
    secondary text)."""
    codes = group_codes()
    names = group_selectors.names_by_chat(c for code in codes for c in code.chat_ids)
    return [
        {"code": code, "groups": [{"chat_id": c, "name": names.get(c, "")} for c in code.chat_ids]} for code in codes
    ]


def any_live() -> bool:
    """True when some group code has a WeCom join way (its events are worth reading)."""
    return GroupCode.objects.exclude(config_id="").exists()
