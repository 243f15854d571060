"""Routes of the employee page, mounted at /employees/."""

from django.urls import path

from siyu.org import views

app_name = "org"

urlpatterns = [
    path("", views.employee_list, name="employees"),
]
