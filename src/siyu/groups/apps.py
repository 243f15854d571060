from django.apps import AppConfig


class GroupsConfig(AppConfig):
    name = "siyu.groups"
    label = "groups"
    verbose_name = "Customer groups"

    def ready(self):
        from siyu.groups import handlers  # noqa: F401  (registers the callback handlers)
