from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WeComConfig(AppConfig):
    name = "siyu.wecom"
    label = "wecom"
    verbose_name = "WeCom gateway"

    def ready(self) -> None:
        from django_tasks.signals import task_finished

        from siyu.core import menu
        from siyu.wecom.redaction import install_log_redaction, redact_failed_task

        install_log_redaction()  # no log line, from any logger, carries a WeCom token or secret
        task_finished.connect(redact_failed_task, dispatch_uid="siyu.wecom.redact_failed_task")

        menu.register("settings", _("企业微信"), "wecom:settings", order=10, roles=("admin",))
        menu.register("settings", _("接口日志"), "wecom:calls", order=20, roles=("admin",))
        menu.register("settings", _("回调"), "wecom:callbacks", order=30, roles=("admin",))
