"""Routes of the employee page, mounted at /employees/."""

from django.urls import path

from siyu.org import views

app_name = "org"

urlpatterns = [
    path("", views.employee_list, name="employees"),
    path("pick/employees/", views.pick_employees, name="pick-employees"),
    path("pick/departments/", views.pick_departments, name="pick-departments"),
    path("pick/tree/", views.department_tree, name="department-tree"),
]
