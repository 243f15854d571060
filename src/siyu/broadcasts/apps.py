from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BroadcastsConfig(AppConfig):
    name = "siyu.broadcasts"
    label = "broadcasts"
    verbose_name = "Broadcasts"

    def ready(self):
        # lazy: these imports need the app registry, which is loaded when ready() runs
        from siyu.broadcasts import services  # (importing it registers the timer handlers)
        from siyu.core import menu, worker

        menu.register("mass", _("群发任务"), "broadcasts:list", order=10)
        menu.register("mass", _("新建群发"), "broadcasts:new", order=20)
        menu.register("mass", _("朋友圈"), "broadcasts:moments", order=30)
        worker.on_start(services.resume_orphans)
        worker.on_start(services.resume_live_syncs)
