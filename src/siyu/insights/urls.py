"""Console routes of the insights app, mounted at /insights/."""

from django.urls import path

from siyu.insights import views

app_name = "insights"

urlpatterns: list = [
    path("rfm/", views.rfm_page, name="rfm"),
    path("lifecycle/", views.lifecycle_page, name="lifecycle"),
    path("settings/", views.settings_page, name="settings"),
    path("settings/runs/", views.run_status, name="runs"),
    path("settings/recompute/", views.recompute_now, name="recompute"),
]
