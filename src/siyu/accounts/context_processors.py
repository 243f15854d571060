"""Template context shared by every console page: the sidebar and the user's role."""

from __future__ import annotations

from siyu import __version__
from siyu.accounts import selectors as accounts
from siyu.core import menu


def console(request) -> dict:
    user = getattr(request, "user", None)
    role = accounts.role_of(user) if user is not None and user.is_authenticated else None
    return {
        "siyu_version": __version__,
        "console_role": role,
        "console_role_label": accounts.role_label(role) if role else "",
        "console_menu": menu.build(request.path, role) if role else [],
    }
