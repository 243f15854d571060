"""设置 › API 令牌, mounted at /settings/api-tokens/."""

from django.urls import path

from siyu.accounts import views

app_name = "apitokens"

urlpatterns = [
    path("", views.api_tokens, name="list"),
    path("<id:token_id>/revoke/", views.api_token_revoke, name="revoke"),
]
