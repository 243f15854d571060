from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrgConfig(AppConfig):
    name = "siyu.org"
    label = "org"
    verbose_name = "Organisation"

    def ready(self):
        # lazy: these imports need the app registry, which is loaded when ready() runs
        from siyu.accounts import selectors as accounts_selectors
        from siyu.core import dashboard, menu, pickers
        from siyu.org import (
            handlers,  # noqa: F401  (registers the callback handlers)
            selectors,
        )

        menu.register("staff", _("员工"), "org:employees", order=10)
        dashboard.provide("employees", selectors.employee_count, url_name="org:employees")
        accounts_selectors.use_org_reads(
            accounts_selectors.OrgReads(
                departments=selectors.all_departments,
                department_names=selectors.department_names,
                employee_names=selectors.names_by_userid,
                find_employees=selectors.employees_named,
            )
        )
        pickers.register(
            "employees",
            search_url_name="org:pick-employees",
            resolve=selectors.employee_items,
            tree_url_name="org:department-tree",
            value_pattern=r"^[0-9]{1,18}$",
        )
        pickers.register(
            "employee_accounts",
            search_url_name="org:pick-employees",
            params=[("by", "userid")],
            resolve=lambda values, scope: selectors.employee_items(values, scope, by="userid"),
            tree_url_name="org:department-tree",
        )
        pickers.register(
            "departments",
            search_url_name="org:pick-departments",
            resolve=selectors.department_items,
            tree_url_name="org:department-tree",
            value_pattern=r"^[0-9]{1,18}$",
        )
