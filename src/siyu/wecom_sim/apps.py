from django.apps import AppConfig


class WeComSimConfig(AppConfig):
    name = "siyu.wecom_sim"
    label = "wecom_sim"
    verbose_name = "WeCom emulator"
