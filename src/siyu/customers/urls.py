"""Console routes of the customers app, mounted at /customers/."""

from django.urls import path

from siyu.customers import views

app_name = "customers"

urlpatterns = [
    path("", views.customer_list, name="list"),
    path("<id:customer_id>/", views.customer_detail, name="detail"),
    path("bulk-tag/", views.bulk_tag, name="bulk-tag"),
    path("bulk-tag/<id:job_id>/", views.bulk_tag_job, name="bulk-tag-job"),
    path("export.<str:fmt>", views.export, name="export"),
]
