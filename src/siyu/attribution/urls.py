from django.urls import path

from siyu.attribution import views

app_name = "attribution"

urlpatterns = [
    path("", views.report, name="report"),
    path("export.csv", views.export, name="export"),
    path("guides/", views.guides, name="guides"),
    path("rules/", views.rule_save, name="rule-save"),
    path("rules/<id:pk>/delete", views.rule_delete, name="rule-delete"),
]
