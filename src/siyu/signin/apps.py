from django.apps import AppConfig


class SigninConfig(AppConfig):
    name = "siyu.signin"
    label = "signin"
    verbose_name = "Sign-in with WeCom"
