"""Routes of the customer group pages, mounted at /groups/."""

from django.urls import path

from siyu.groups import views

app_name = "groups"

urlpatterns = [
    path("", views.group_list, name="list"),
    path("pick/", views.pick, name="pick"),
    path("pick/tags/", views.pick_tags, name="pick-tags"),
    path("<id:group_id>/", views.group_detail, name="detail"),
]
