"""Console routes of the profiles app, mounted at /profiles/."""

from django.urls import path  # noqa: F401

app_name = "profiles"

urlpatterns: list = []
