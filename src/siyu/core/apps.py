from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "siyu.core"
    label = "core"
    verbose_name = "Siyu core"

    def ready(self) -> None:
        from siyu.core import menu

        menu.register("overview", _("概览"), "overview", order=10)
