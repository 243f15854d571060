from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LinksConfig(AppConfig):
    name = "siyu.links"
    label = "links"
    verbose_name = "Links"

    def ready(self):
        # lazy: these imports need the app registry, which is loaded when ready() runs
        from siyu.core import menu, worker
        from siyu.links import tasks

        menu.register("enable", _("链接追踪"), "links:report", order=30, roles=("admin", "operator", "store_manager"))
        worker.on_start(tasks.ensure_scheduled)
