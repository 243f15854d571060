from django.apps import AppConfig
from django.urls import register_converter
from django.utils.translation import gettext_lazy as _

from siyu.core import menu
from siyu.core.inputs import IdConverter


class CoreConfig(AppConfig):
    name = "siyu.core"
    label = "core"
    verbose_name = "Siyu core"

    def ready(self) -> None:
        register_converter(IdConverter, "id")

        menu.register("overview", _("概览"), "overview", order=10)
