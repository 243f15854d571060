"""wechatpy's ``WeChatClient``, used unchanged, pointed at the emulator."""

from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter


def wechatpy_client(sim, secret: str | None = None):
    """A ``wechatpy.work.WeChatClient`` whose calls (including the hard-coded gettoken URL of
    ``fetch_access_token``) reach the emulator, through a transport adapter that rewrites
    ``https://qyapi.weixin.qq.com/`` to ``sim.base_url``."""
    from wechatpy.work import WeChatClient

    base = sim.base_url.rstrip("/") + "/"

    class _Rewrite(HTTPAdapter):
        def send(self, request, **kw):
            request.url = base + request.url[len("https://qyapi.weixin.qq.com/") :]
            return super().send(request, **kw)

    session = requests.Session()
    session.mount("https://qyapi.weixin.qq.com/", _Rewrite())
    client = WeChatClient(sim.corp_id, secret or sim.secret, session=None)
    client._http = session
    client.API_BASE_URL = base + "cgi-bin/"
    return client
