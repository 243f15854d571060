from django.apps import AppConfig


class ProfilesConfig(AppConfig):
    name = "siyu.profiles"
    label = "profiles"
    verbose_name = "Profiles"

    def ready(self):
        # lazy: registrations (menu, dashboard, worker timers) go here
        pass
