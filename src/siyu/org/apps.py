from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrgConfig(AppConfig):
    name = "siyu.org"
    label = "org"
    verbose_name = "Organisation"

    def ready(self):
        # lazy: these imports need the app registry, which is loaded when ready() runs
        from siyu.core import dashboard, menu
        from siyu.org import (
            handlers,  # noqa: F401  (registers the callback handlers)
            selectors,
        )

        menu.register("staff", _("员工"), "org:employees", order=10)
        dashboard.provide("employees", selectors.employee_count, url_name="org:employees")
