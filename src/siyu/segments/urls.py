"""Console routes of the segments app, mounted at /segments/."""

from django.urls import path  # noqa: F401

app_name = "segments"

urlpatterns: list = []
