from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _
from django_tasks.signals import task_finished


class WeComConfig(AppConfig):
    name = "siyu.wecom"
    label = "wecom"
    verbose_name = "WeCom gateway"

    def ready(self) -> None:
        # lazy: these imports need the app registry, which is loaded when ready() runs
        from siyu.core import dashboard, menu, timers, worker
        from siyu.wecom import inbox, selectors
        from siyu.wecom.media import services as media_services
        from siyu.wecom.redaction import error_text, install_log_redaction, redact_failed_task

        install_log_redaction()  # no log line, from any logger, carries a WeCom token or secret
        timers.describe_errors_with(error_text)  # nor a failed timer's stored error
        worker.serve_inbox(inbox.process_pending, inbox.process_urgent)  # the worker drains the inbox
        worker.on_start(media_services.ensure_refresh_scheduled)  # media ids renewed before they expire
        dashboard.provide_health("wecom", selectors.connection_status)
        dashboard.provide_health("inbox", selectors.inbox_summary)
        dashboard.provide_health("calls_by_hour", lambda: selectors.api_calls_by_hour(24))
        task_finished.connect(redact_failed_task, dispatch_uid="siyu.wecom.redact_failed_task")

        menu.register("settings", _("企业微信"), "wecom:settings", order=10, roles=("admin",))
        menu.register("settings", _("接口日志"), "wecom:calls", order=20, roles=("admin",))
        menu.register("settings", _("回调"), "wecom:callbacks", order=30, roles=("admin",))
