from django.urls import path

from siyu.signin import views

app_name = "signin"

urlpatterns = [
    path("", views.start, name="start"),
    path("callback/", views.callback, name="callback"),
]
