"""Routes of group QR codes, included by ``siyu.channels.urls`` under /channels/groups/ without a
namespace of their own (their names stay ``channels:groups``)."""

from django.urls import path

from siyu.channels.groupcodes import views

urlpatterns = [
    path("", views.group_list, name="groups"),
    path("welcomes/", views.template_list, name="group_welcomes"),
    path("welcomes/<id:pk>/", views.template_edit, name="group_welcome_edit"),
    path("welcomes/<id:pk>/delete/", views.template_delete, name="group_welcome_delete"),
]
