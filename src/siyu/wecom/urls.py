"""Console routes of the WeCom app, mounted at /settings/wecom/ (the callback endpoint is in siyu.urls)."""

from django.urls import path

from siyu.wecom import views
from siyu.wecom.media import views as media_views

app_name = "wecom"

urlpatterns = [
    path("", views.settings_page, name="settings"),
    path("test/", views.test_connection, name="test"),
    path("calls/", views.api_calls, name="calls"),
    path("callbacks/", views.callbacks, name="callbacks"),
    path("callbacks/<id:row_id>/", views.callback_payload, name="callback-payload"),
    path("callbacks/<id:row_id>/retry/", views.callback_retry, name="callback-retry"),
    path("media/<id:pk>/", media_views.image, name="media-image"),
]
