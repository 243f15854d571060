from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "siyu.segments"
    label = "segments"
    verbose_name = "Segments"

    def ready(self):
        # lazy: these imports need the app registry
        from siyu.core import worker
        from siyu.segments import engine, services

        # the daily count history of saved segments (its timer is scheduled when a worker starts),
        # and the in-memory index built while the worker starts rather than on its first count
        worker.on_start(services.ensure_daily_scheduled)
        worker.on_start(engine.warm)
