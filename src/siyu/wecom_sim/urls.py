from django.urls import path

from siyu.wecom_sim import control, endpoints, framework, index, qr  # noqa: F401  (registers the endpoints)

urlpatterns = [
    path("", index.view),
    path("cgi-bin/", index.view),
    path("cgi-bin/<path:path>", framework.dispatch),
    path("sim/<path:name>", control.view),
    path("sim-qr/<str:config_id>.png", qr.view),
]
