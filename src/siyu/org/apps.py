from django.apps import AppConfig


class OrgConfig(AppConfig):
    name = "siyu.org"
    label = "org"
    verbose_name = "Organisation"

    def ready(self):
        from siyu.org import handlers  # noqa: F401  (registers the callback handlers)
