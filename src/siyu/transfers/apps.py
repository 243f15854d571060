from django.apps import AppConfig


class TransfersConfig(AppConfig):
    name = "siyu.transfers"
    label = "transfers"
    verbose_name = "Transfers"

    def ready(self):
        # register callback handlers, menu entries, dashboard counters and worker hooks here
        pass
