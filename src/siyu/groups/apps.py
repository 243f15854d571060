from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GroupsConfig(AppConfig):
    name = "siyu.groups"
    label = "groups"
    verbose_name = "Customer groups"

    def ready(self):
        # lazy: these imports need the app registry, which is loaded when ready() runs
        from siyu.core import dashboard, menu
        from siyu.customers import selectors as customer_selectors
        from siyu.groups import (
            handlers,  # noqa: F401  (registers the callback handlers)
            selectors,
        )
        from siyu.org import selectors as org_selectors

        menu.register("groups", _("客户群"), "groups:list", order=10)
        dashboard.provide("groups", selectors.group_count, url_name="groups:list")
        # the customer list's group filter and the customer detail's groups read these
        customer_selectors.use_group_reads(selectors)
        org_selectors.provide_employee_counts("groups", selectors.group_counts_by_employee)
