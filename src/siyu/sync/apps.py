from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SyncConfig(AppConfig):
    name = "siyu.sync"
    label = "sync"
    verbose_name = "Sync"

    def ready(self):
        # lazy: these imports need the app registry, which is loaded when ready() runs
        # the sync page and the nightly reconciliation (its timer is scheduled whenever a worker
        # starts)
        from siyu.core import menu, worker
        from siyu.sync import nightly

        menu.register("settings", _("数据同步"), "sync:page", order=15, roles=("admin",))
        worker.on_start(nightly.ensure_scheduled)
