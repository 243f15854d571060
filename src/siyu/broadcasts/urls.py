"""Console routes of the broadcasts app, mounted at /broadcasts/."""

from django.urls import path  # noqa: F401

app_name = "broadcasts"

urlpatterns: list = []
