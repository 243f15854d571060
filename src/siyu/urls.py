from django.urls import include, path
from django.views.generic import RedirectView

from siyu import views as console_views
from siyu.api import api
from siyu.links import views as link_views
from siyu.wecom import callbacks

handler400 = "siyu.core.views.bad_request"

urlpatterns = [
    path("wecom/callback/", callbacks.callback, name="wecom-callback"),
    # a trackable short link (the ASGI fast path answers it under ``siyu serve``)
    path("l/<str:code>", link_views.follow, name="short-link"),
    path("lm/<str:code>", link_views.image, name="link-image"),
    path("i18n/", include("django.conf.urls.i18n")),
    # --- REST API (django-ninja; OpenAPI at /api/v1/openapi.json, docs at /api/v1/docs) ---
    path("api/v1/", api.urls),
    path("api/docs", RedirectView.as_view(url="/api/v1/docs", permanent=False), name="api-docs"),
    path("api/docs/", RedirectView.as_view(url="/api/v1/docs", permanent=False)),
    # --- console ---
    path("", console_views.overview, name="overview"),
    path("overview/health/", console_views.overview_health, name="overview-health"),
    path("accounts/wecom/", include("siyu.signin.urls")),
    path("accounts/", include("siyu.accounts.urls")),
    path("customers/", include("siyu.customers.urls")),
    path("settings/wecom/", include("siyu.wecom.urls")),
    path("settings/sync/", include("siyu.sync.urls")),
    path("tags/", include("siyu.customers.tags.urls")),
    path("groups/", include("siyu.groups.urls")),
    path("employees/", include("siyu.org.urls")),
    path("channels/", include("siyu.channels.urls")),
    path("broadcasts/", include("siyu.broadcasts.urls")),
    path("transfers/", include("siyu.transfers.urls")),
    path("profiles/", include("siyu.profiles.urls")),
    path("commerce/", include("siyu.commerce.urls")),
    path("insights/", include("siyu.insights.urls")),
    path("segments/", include("siyu.segments.urls")),
    path("library/", include("siyu.materials.urls")),
    path("links/", include("siyu.links.urls")),
    path("guide-tasks/", include("siyu.guidetasks.urls")),
    path("attribution/", include("siyu.attribution.urls")),
    # the chat sidebar WeCom opens beside a chat (聊天工具栏), signed in by WeCom OAuth
    path("sidebar/", include("siyu.sidebar.urls")),
    path("settings/api-tokens/", include("siyu.accounts.token_urls")),
    path("settings/users/", include("siyu.accounts.user_urls")),
]
