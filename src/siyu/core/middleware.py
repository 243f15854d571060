"""Console middleware."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.middleware.locale import LocaleMiddleware
from django.utils import translation


class ConsoleLocaleMiddleware(LocaleMiddleware):
    """Chinese unless the user picked another language with the switcher.

    Django's ``LocaleMiddleware`` would follow the browser's ``Accept-Language`` header, so an
    operator whose browser (or a headless test browser) prefers English would get an English
    console. Siyu speaks Chinese by default: only the language cookie set by
    ``/i18n/setlang/`` (the switcher in the top bar) changes the language.
    """

    def process_request(self, request: HttpRequest) -> None:
        code = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME) or settings.LANGUAGE_CODE
        try:
            code = translation.get_supported_language_variant(code)
        except LookupError:
            code = settings.LANGUAGE_CODE
        translation.activate(code)
        request.LANGUAGE_CODE = translation.get_language()
