from django.urls import path

from siyu.wecom_sim import api, control, endpoints  # noqa: F401  (registers the endpoints)

urlpatterns = [
    path("cgi-bin/<path:path>", api.dispatch),
    path("sim/<path:name>", control.view),
]
