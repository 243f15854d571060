from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "siyu.segments"
    label = "segments"
    verbose_name = "Segments"

    def ready(self):
        # lazy: registrations (menu, dashboard, worker timers) go here
        pass
