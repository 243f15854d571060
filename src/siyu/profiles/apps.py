from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ProfilesConfig(AppConfig):
    name = "siyu.profiles"
    label = "profiles"
    verbose_name = "Profiles"

    def ready(self):
        # lazy: these imports need the app registry, which is loaded when ready() runs
        from siyu.core import menu, worker
        from siyu.profiles import tasks  # (registers the link timer's handler)

        menu.register("cdp", _("客户档案"), "profiles:list", order=10)
        menu.register("cdp", _("身份冲突"), "profiles:conflicts", order=80, roles=("admin", "operator"))
        menu.register("cdp", _("自定义字段"), "profiles:fields", order=90, roles=("admin", "operator"))
        # WeCom customers get their person within seconds: the link timer (backfill on first run)
        worker.on_start(tasks.ensure_scheduled)
