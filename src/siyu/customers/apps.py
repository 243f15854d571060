from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CustomersConfig(AppConfig):
    name = "siyu.customers"
    label = "customers"
    verbose_name = "Customers"

    def ready(self):
        # lazy: these imports need the app registry, which is loaded when ready() runs
        from siyu.core import dashboard, menu, pickers, worker
        from siyu.customers import handlers  # noqa: F401  (registers the callback handlers)
        from siyu.customers import selectors as customer_selectors
        from siyu.customers import services as customer_services
        from siyu.customers.tags import selectors as tag_selectors
        from siyu.org import selectors as org_selectors

        # tag management (the customers.tags sub-package)
        menu.register("tags", _("客户标签"), "tags:list", order=10)
        dashboard.provide("tags", customer_selectors.tag_count, url_name="tags:list")
        # the employees page's customer counts
        org_selectors.provide_employee_counts("customers", customer_selectors.relation_counts_by_employee)

        menu.register("customers", _("客户列表"), "customers:list", order=10)
        pickers.register(
            "tags", search_url_name="tags:pick", resolve=tag_selectors.tag_items, value_pattern=r"^[0-9]{1,18}$"
        )
        pickers.register(
            "wecom_tags",
            search_url_name="tags:pick",
            params=[("by", "tag_id")],
            resolve=lambda values, scope: tag_selectors.tag_items(values, scope, by="tag_id"),
        )
        worker.on_start(customer_services.resume_bulk_tag_jobs)  # bulk-tag jobs of a killed worker
