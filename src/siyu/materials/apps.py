from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MaterialsConfig(AppConfig):
    name = "siyu.materials"
    label = "materials"
    verbose_name = "Materials"

    def ready(self):
        # lazy: these imports need the app registry, which is loaded when ready() runs
        from siyu.core import menu

        menu.register(
            "enable", _("话术库"), "materials:scripts", order=10, roles=("admin", "operator", "store_manager")
        )
        menu.register(
            "enable", _("素材库"), "materials:materials", order=20, roles=("admin", "operator", "store_manager")
        )
