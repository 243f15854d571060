"""Console routes of the transfers app, mounted at /transfers/."""

from django.urls import path

from siyu.transfers import views

app_name = "transfers"

urlpatterns = [
    path("", views.handovers, name="handovers"),
    path("resigned/", views.resigned, name="resigned"),
    path("resigned/<id:employee_id>/", views.resigned_assign, name="resigned_assign"),
    path("onjob/", views.onjob, name="onjob"),
    path("handovers/<id:handover_id>/", views.handover, name="handover"),
    path("handovers/<id:handover_id>/refresh/", views.refresh, name="refresh"),
    path("churn/", views.churn, name="churn"),
    path("churn/export.csv", views.churn_export, name="churn_export"),
]
