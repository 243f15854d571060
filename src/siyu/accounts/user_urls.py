"""设置 › 用户与角色, mounted at /settings/users/."""

from django.urls import path

from siyu.accounts import views

app_name = "users"

urlpatterns = [
    path("", views.users, name="list"),
    path("<id:user_id>/", views.user_detail, name="detail"),
]
