from django.apps import AppConfig


class GroupsConfig(AppConfig):
    name = "siyu.groups"
    label = "groups"
    verbose_name = "Customer groups"
