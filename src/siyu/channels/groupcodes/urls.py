"""Routes of group QR codes, included by ``siyu.channels.urls`` under /channels/groups/ without a
namespace of their own (their names stay ``channels:groups``)."""

from django.urls import path

from siyu.channels.groupcodes import views

urlpatterns = [
    path("", views.group_list, name="groups"),
]
