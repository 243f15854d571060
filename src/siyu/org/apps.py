from django.apps import AppConfig


class OrgConfig(AppConfig):
    name = "siyu.org"
    label = "org"
    verbose_name = "Organisation"
