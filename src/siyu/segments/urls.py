"""Console routes of the segments app, mounted at /segments/."""

from django.urls import path

from siyu.segments import views

app_name = "segments"

urlpatterns = [
    path("", views.segment_list, name="list"),
    path("new/", views.build, name="new"),
    path("count/", views.count, name="count"),
    path("quick/", views.quick, name="quick"),
    path("pick/", views.pick, name="pick"),
    path("<id:pk>/", views.detail, name="detail"),
    path("<id:pk>/edit/", views.build, name="edit"),
    path("<id:pk>/recount/", views.recount, name="recount"),
    path("<id:pk>/archive/", views.archive, name="archive"),
    path("<id:pk>/export.<str:fmt>", views.export, name="export"),
]
