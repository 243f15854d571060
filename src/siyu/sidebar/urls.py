from django.urls import path

from siyu.sidebar import views

app_name = "sidebar"

urlpatterns = [
    path("", views.entry, name="entry"),
    path("oauth/", views.oauth, name="oauth"),
    path("signature", views.signature, name="signature"),
    path("customer/<str:external_userid>/", views.customer, name="customer"),
    path("customer/<str:external_userid>/tags", views.customer_tags, name="customer-tags"),
    path("customer/<str:external_userid>/remark", views.customer_remark, name="customer-remark"),
    path("customer/<str:external_userid>/followup", views.customer_followup, name="customer-followup"),
    path("group/<str:chat_id>/", views.group, name="group"),
    path("library", views.library, name="library"),
    path("prepare", views.prepare, name="prepare"),
    path("sent", views.sent, name="sent"),
    path("tasks/", views.workbench, name="tasks"),
    path("tasks/<id:pk>/done", views.task_done, name="task-done"),
]
