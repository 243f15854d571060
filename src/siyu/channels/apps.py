from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChannelsConfig(AppConfig):
    name = "siyu.channels"
    label = "channels"
    verbose_name = "Channels"

    def ready(self):
        # lazy: these imports need the app registry, which is loaded when ready() runs
        from siyu.channels import handlers, schedule, selectors
        from siyu.core import dashboard, menu, pickers, worker
        from siyu.customers import selectors as customer_selectors

        handlers._welcome_first()
        worker.on_start(schedule.ensure_scheduled)
        worker.on_start(schedule.ensure_reconcile_scheduled)
        menu.register("contact_ways", _("渠道活码"), "channels:list", order=10)
        menu.register("contact_ways", _("群活码"), "channels:groups", order=20)
        menu.register("contact_ways", _("默认欢迎语"), "channels:welcomes", order=30)
        menu.register("contact_ways", _("入群欢迎语"), "channels:group_welcomes", order=35)
        menu.register("analytics", _("渠道分析"), "channels:analytics", order=20)
        pickers.register("channels", search_url_name="channels:pick", resolve=selectors.code_items)
        # the customer pages show a relation's channel by its code's name
        customer_selectors.use_channel_names(selectors.names_by_state)
        dashboard.register(
            "channel_adds_today", _("今日渠道新增"), order=50, fn=selectors.adds_today, url_name="channels:analytics"
        )
