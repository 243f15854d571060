from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from siyu.core import menu


class AccountsConfig(AppConfig):
    name = "siyu.accounts"
    label = "accounts"
    verbose_name = "Accounts and roles"

    def ready(self) -> None:
        menu.register("settings", _("用户与角色"), "users:list", order=5, roles=("admin",))
        menu.register("settings", _("API 令牌"), "apitokens:list", order=40, roles=("admin",))
        menu.register("settings", _("API 文档"), "api-docs", order=45, roles=("admin",))
