"""Console routes of the insights app, mounted at /insights/."""

from django.urls import path  # noqa: F401

app_name = "insights"

urlpatterns: list = []
