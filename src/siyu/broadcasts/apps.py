from django.apps import AppConfig


class BroadcastsConfig(AppConfig):
    name = "siyu.broadcasts"
    label = "broadcasts"
    verbose_name = "Broadcasts"

    def ready(self):
        # register callback handlers, menu entries, dashboard counters and worker hooks here
        pass
