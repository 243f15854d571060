"""Console routes of the profiles app, mounted at /profiles/."""

from django.urls import path

from siyu.profiles import views

app_name = "profiles"

urlpatterns = [
    path("", views.person_list, name="list"),
    path("<id:profile_id>/", views.person_detail, name="detail"),
    path("<id:profile_id>/edit/", views.person_edit, name="edit"),
    path("<id:profile_id>/merge/", views.merge_page, name="merge"),
    path("<id:profile_id>/merge/do/", views.merge, name="merge-do"),
    path("<id:profile_id>/unmerge/", views.unmerge, name="unmerge"),
    path("customer/<id:customer_id>/", views.customer_person, name="customer"),
    path("conflicts/", views.conflict_list, name="conflicts"),
    path("conflicts/<id:conflict_id>/resolve/", views.conflict_resolve, name="conflict-resolve"),
    path("fields/", views.field_list, name="fields"),
    path("fields/<id:field_id>/", views.field_edit, name="field-edit"),
]
