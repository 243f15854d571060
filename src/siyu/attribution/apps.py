from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AttributionConfig(AppConfig):
    name = "siyu.attribution"
    label = "attribution"
    verbose_name = "Order attribution"

    def ready(self):
        # lazy: these imports need the app registry, which is loaded when ready() runs
        from siyu.attribution import tasks
        from siyu.core import menu, worker

        menu.register(
            "enable", _("业绩归因"), "attribution:report", order=60, roles=("admin", "operator", "store_manager")
        )
        worker.on_start(tasks.ensure_scheduled)
