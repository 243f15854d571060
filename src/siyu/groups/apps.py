from django.apps import AppConfig


class GroupsConfig(AppConfig):
    name = "siyu.groups"
    label = "groups"
    verbose_name = "Customer groups"

    def ready(self):
        from django.utils.translation import gettext_lazy as _

        from siyu.core import menu
        from siyu.groups import handlers  # noqa: F401  (registers the callback handlers)

        menu.register("groups", _("客户群"), "groups:list", order=10)
        from siyu.core import dashboard
        from siyu.groups import selectors

        dashboard.provide("groups", selectors.group_count, url_name="groups:list")
