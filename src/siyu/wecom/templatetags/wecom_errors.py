"""Template filters for WeCom errors in words (siyu.wecom.errcodes): ``{% load wecom_errors %}``,
``{{ code|errcode_text }}`` for an errcode, ``{{ stored|error_text }}`` for a stored error text.
The raw code stays secondary: templates show it as grey text next to these, if at all."""

from __future__ import annotations

from django import template

from siyu.wecom import errcodes

register = template.Library()


@register.filter
def errcode_text(code: int | str | None) -> str:
    if code in (None, ""):
        return ""
    try:
        return errcodes.sentence(int(code))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""


@register.filter
def error_text(stored: str | None) -> str:
    return errcodes.stored_sentence(stored or "")
