from django.apps import AppConfig


class ChannelsConfig(AppConfig):
    name = "siyu.channels"
    label = "channels"
    verbose_name = "Channels"

    def ready(self):
        # register callback handlers, menu entries, dashboard counters and worker hooks here
        pass
