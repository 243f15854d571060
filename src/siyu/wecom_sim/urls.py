from django.urls import path

from siyu.wecom_sim import client, control, endpoints, framework, index, qr  # noqa: F401  (registers the endpoints)

urlpatterns = [
    path("", index.view),
    path("cgi-bin/", index.view),
    path("cgi-bin/<path:path>", framework.dispatch),
    path("sim/<path:name>", control.view),
    path("sim-qr/<str:config_id>.png", qr.view),
    # the WeCom client and WeCom's browser-side pages (part 4)
    path("client/", client.home),
    path("client/chats/", client.chats),
    path("client/chat/<str:chat_type>/<str:key>/", client.chat),
    path("client/api/<str:name>", client.api),
    path("connect/oauth2/authorize", client.oauth_authorize),
    path("wwlogin/sso/login", client.web_login),
    path("wwopen/sso/qrConnect", client.web_login),
    path("open/js/jweixin-1.2.0.js", client.jssdk),
]
