"""Console routes of the channels app, mounted at /channels/."""

from django.urls import path  # noqa: F401

app_name = "channels"

urlpatterns: list = []
