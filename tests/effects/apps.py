from django.apps import AppConfig


class EffectsConfig(AppConfig):
    name = "tests.effects"
    label = "test_effects"

    def ready(self):
        from tests.effects import handlers  # noqa: F401
