"""Console routes of the channels app, mounted at /channels/."""

from django.urls import include, path

from siyu.channels import views

app_name = "channels"

urlpatterns = [
    path("", views.code_list, name="list"),
    path("new/", views.code_create, name="create"),
    path("pick/", views.pick, name="pick"),
    path("<id:code_id>/", views.code_detail, name="detail"),
    path("<id:code_id>/edit/", views.code_edit, name="edit"),
    path("<id:code_id>/delete/", views.code_delete, name="delete"),
    path("<id:code_id>/qr.png", views.code_png, name="png"),
    path("<id:code_id>/poster.png", views.code_poster, name="poster"),
    path("groups/", include("siyu.channels.groupcodes.urls")),
    path("welcomes/", views.default_welcomes, name="welcomes"),
    path("analytics/", views.analytics, name="analytics"),
    path("analytics/export.csv", views.analytics_export, name="analytics_export"),
]
