from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CommerceConfig(AppConfig):
    name = "siyu.commerce"
    label = "commerce"
    verbose_name = "Commerce"

    def ready(self):
        # lazy: these imports need the app registry, which is loaded when ready() runs
        from siyu.commerce import selectors, services
        from siyu.core import menu, worker
        from siyu.profiles import sections

        menu.register("cdp", _("数据导入"), "commerce:imports", order=50, roles=("admin", "operator"))
        worker.on_start(services.resume_import_jobs)  # import jobs of a killed worker
        sections.register(
            "orders", _("订单"), order=30, template="commerce/section_orders.html", fn=selectors.orders_section
        )
        sections.register(
            "events", _("行为事件"), order=40, template="commerce/section_events.html", fn=selectors.events_section
        )
