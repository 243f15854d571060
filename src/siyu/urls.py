from django.urls import include, path

from siyu.core import views as core_views
from siyu.wecom import callbacks

urlpatterns = [
    path("wecom/callback/", callbacks.callback, name="wecom-callback"),
    path("i18n/", include("django.conf.urls.i18n")),
    # --- console ---
    path("", core_views.overview, name="overview"),
    path("overview/health/", core_views.overview_health, name="overview-health"),
    path("accounts/", include("siyu.accounts.urls")),
    path("settings/wecom/", include("siyu.wecom.urls")),
]
