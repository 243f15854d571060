"""Console routes of the broadcasts app, mounted at /broadcasts/."""

from django.urls import path

from siyu.broadcasts import views

app_name = "broadcasts"

urlpatterns = [
    path("", views.broadcast_list, name="list"),
    path("moments/", views.moment_list, name="moments"),
    path("new/", views.compose, name="new"),
    path("estimate/", views.estimate_preview, name="estimate"),
    path("media/", views.upload_media, name="media"),
    path("<id:pk>/", views.detail, name="detail"),
    path("<id:pk>/edit/", views.compose, name="edit"),
    path("<id:pk>/action/<str:op>/", views.act, name="action"),
    path("<id:pk>/export/<str:what>.csv", views.export, name="export"),
]
