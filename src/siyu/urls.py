from django.urls import include, path

from siyu.wecom import callbacks

urlpatterns = [
    path("wecom/callback/", callbacks.callback, name="wecom-callback"),
    path("i18n/", include("django.conf.urls.i18n")),
]
