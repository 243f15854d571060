"""Routes of the tag management page, mounted at /tags/."""

from django.urls import path

from siyu.customers.tags import views as tag_views

app_name = "tags"

urlpatterns = [
    path("", tag_views.tag_list, name="list"),
    path("groups/new/", tag_views.group_create, name="group-create"),
    path("refresh/", tag_views.refresh, name="refresh"),
    path("pick/", tag_views.pick, name="pick"),
    path("groups/<str:group_id>/tags/", tag_views.tags_add, name="tags-add"),
    path("groups/<str:group_id>/delete/", tag_views.delete_group, name="group-delete"),
    path("tags/<str:tag_id>/delete/", tag_views.delete_tag, name="tag-delete"),
    path("<str:obj_id>/rename/", tag_views.rename, name="rename"),
    path("<str:obj_id>/move/", tag_views.move, name="move"),
]
