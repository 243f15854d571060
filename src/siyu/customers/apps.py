from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "siyu.customers"
    label = "customers"
    verbose_name = "Customers"

    def ready(self):
        from django.utils.translation import gettext_lazy as _

        # tag management, the sync page and the nightly reconciliation (its timer is scheduled
        # whenever a worker starts)
        from siyu.core import dashboard, menu, worker
        from siyu.customers import (
            handlers,  # noqa: F401  (registers the callback handlers)
            nightly,
        )
        from siyu.customers import selectors as customer_selectors

        menu.register("tags", _("客户标签"), "tags:list", order=10)
        menu.register("settings", _("数据同步"), "sync:page", order=15, roles=("admin",))
        dashboard.provide("tags", customer_selectors.tag_count, url_name="tags:list")
        worker.on_start(nightly.ensure_scheduled)

        menu.register("customers", _("客户列表"), "customers:list", order=10)
