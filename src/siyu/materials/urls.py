from django.urls import path

from siyu.materials import views

app_name = "materials"

urlpatterns = [
    path("scripts/", views.script_list, name="scripts"),
    path("scripts/<id:pk>/", views.script_edit, name="script-edit"),
    path("", views.material_list, name="materials"),
    path("<id:pk>/", views.material_edit, name="material-edit"),
]
