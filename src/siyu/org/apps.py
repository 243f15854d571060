from django.apps import AppConfig


class OrgConfig(AppConfig):
    name = "siyu.org"
    label = "org"
    verbose_name = "Organisation"

    def ready(self):
        from django.utils.translation import gettext_lazy as _

        from siyu.core import menu
        from siyu.org import handlers  # noqa: F401  (registers the callback handlers)

        menu.register("staff", _("员工"), "org:employees", order=10)
        from siyu.core import dashboard
        from siyu.org import selectors

        dashboard.provide("employees", selectors.employee_count, url_name="org:employees")
