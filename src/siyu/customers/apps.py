from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "siyu.customers"
    label = "customers"
    verbose_name = "Customers"

    def ready(self):
        from siyu.customers import handlers  # noqa: F401  (registers the callback handlers)
