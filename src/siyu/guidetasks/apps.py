from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GuideTasksConfig(AppConfig):
    name = "siyu.guidetasks"
    label = "guidetasks"
    verbose_name = "Guide tasks"

    def ready(self):
        # lazy: these imports need the app registry, which is loaded when ready() runs
        from siyu.core import menu, worker
        from siyu.guidetasks import tasks

        menu.register(
            "enable", _("导购任务"), "guidetasks:rules", order=40, roles=("admin", "operator", "store_manager")
        )
        menu.register(
            "enable", _("任务看板"), "guidetasks:board", order=50, roles=("admin", "operator", "store_manager")
        )
        worker.on_start(tasks.ensure_scheduled)
