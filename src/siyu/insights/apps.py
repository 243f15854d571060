from django.apps import AppConfig


class InsightsConfig(AppConfig):
    name = "siyu.insights"
    label = "insights"
    verbose_name = "Insights"

    def ready(self):
        # lazy: registrations (menu, dashboard, worker timers) go here
        pass
