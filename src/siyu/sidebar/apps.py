from django.apps import AppConfig


class SidebarConfig(AppConfig):
    name = "siyu.sidebar"
    label = "sidebar"
    verbose_name = "Sidebar"
