from django.urls import path

from siyu.links import views

app_name = "links"

urlpatterns = [
    path("", views.report, name="report"),
]
