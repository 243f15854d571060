"""Routes of the customer group pages, mounted at /groups/."""

from django.urls import path

from siyu.groups import views

app_name = "groups"

urlpatterns = [
    path("", views.group_list, name="list"),
    path("<id:group_id>/", views.group_detail, name="detail"),
]
