"""Routes of the sync page, mounted at /settings/sync/."""

from django.urls import path

from siyu.sync import views as sync_views

app_name = "sync"

urlpatterns = [
    path("", sync_views.sync_page, name="page"),
    path("status/", sync_views.sync_status, name="status"),
    path("run/", sync_views.sync_now, name="run"),
]
