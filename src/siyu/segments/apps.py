from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


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
        self._console()

    # --- the console (part E): the menu entry and the segment picker of the broadcast composer ---
    @staticmethod
    def _console() -> None:
        # lazy: these imports need the app registry, which is loaded when ready() runs
        from siyu.core import menu, pickers
        from siyu.segments import selectors

        menu.register("cdp", _("客户分群"), "segments:list", order=40)
        pickers.register(
            "segments",
            search_url_name="segments:pick",
            resolve=selectors.segment_items,
            value_pattern=r"^[0-9]{1,18}$",
        )
