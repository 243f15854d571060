from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TransfersConfig(AppConfig):
    name = "siyu.transfers"
    label = "transfers"
    verbose_name = "Transfers"

    def ready(self):
        # lazy: these imports need the app registry, which is loaded when ready() runs
        from siyu.core import dashboard, menu, worker
        from siyu.transfers import handlers, selectors, tasks  # noqa: F401  (callback handlers, timer handlers)

        menu.register("transfer", _("离职继承"), "transfers:resigned", order=10)
        menu.register(
            "transfer", _("在职继承"), "transfers:onjob", order=20, roles=("admin", "operator", "store_manager")
        )
        menu.register("transfer", _("继承记录"), "transfers:handovers", order=30)
        menu.register("transfer", _("流失提醒"), "transfers:churn", order=40)
        worker.on_start(tasks.on_worker_start)

        dashboard.register(
            "transfers_waiting",
            _("等待接替客户"),
            empty_hint=_("暂无继承记录"),
            order=60,
            fn=selectors.waiting_count,
            url_name="transfers:handovers",
        )
        dashboard.register(
            "churn_today",
            _("今日流失"),
            empty_hint=_("暂无流失记录"),
            order=65,
            fn=selectors.churn_today,
            url_name="transfers:churn",
        )
