"""Console routes of the commerce app, mounted at /commerce/."""

from django.urls import path

from siyu.commerce import views

app_name = "commerce"

urlpatterns = [
    path("imports/", views.imports, name="imports"),
    path("imports/<id:job_id>/", views.import_job_page, name="import-job-page"),
    path("imports/<id:job_id>/progress/", views.import_job, name="import-job"),
    path("imports/<id:job_id>/errors.csv", views.import_errors, name="import-errors"),
    path("imports/template/<slug:kind>.csv", views.import_template, name="import-template"),
]
