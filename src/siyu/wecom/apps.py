from django.apps import AppConfig


class WeComConfig(AppConfig):
    name = "siyu.wecom"
    label = "wecom"
    verbose_name = "WeCom gateway"
