from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GroupsConfig(AppConfig):
    name = "siyu.groups"
    label = "groups"
    verbose_name = "Customer groups"

    def ready(self):
        # lazy: these imports need the app registry, which is loaded when ready() runs
        from siyu.core import dashboard, menu, pickers
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
        pickers.register(
            "groups", search_url_name="groups:pick", resolve=selectors.group_items, value_pattern=r"^[0-9]{1,18}$"
        )
        pickers.register(
            "group_chats",
            search_url_name="groups:pick",
            params=[("by", "chat_id")],
            resolve=lambda values, scope: selectors.group_items(values, scope, by="chat_id"),
        )
        pickers.register(
            "group_tags",
            search_url_name="groups:pick-tags",
            resolve=selectors.group_tag_items,
            value_pattern=r"^[0-9]{1,18}$",
        )
