"""PNG QR codes for contact ways and join ways (the ``qr_code`` URLs point here).

The QR code encodes what WeCom's would: ``https://work.weixin.qq.com/ca/<config_id>`` for a
「联系我」 way, ``https://work.weixin.qq.com/gm/<config_id>`` for a group join way.
"""

from __future__ import annotations

import io

import qrcode
from django.http import HttpRequest, HttpResponse, JsonResponse

from siyu.wecom_sim.models import ContactWay, JoinWay


def content_for(config_id: str) -> str | None:
    if ContactWay.objects.filter(config_id=config_id, deleted=False).exists():
        return f"https://work.weixin.qq.com/ca/{config_id}"
    if JoinWay.objects.filter(config_id=config_id, deleted=False).exists():
        return f"https://work.weixin.qq.com/gm/{config_id}"
    return None


def view(request: HttpRequest, config_id: str) -> HttpResponse:
    content = content_for(config_id)
    if content is None:
        return JsonResponse({"errcode": 404, "errmsg": "no such qr code"}, status=404)
    img = qrcode.make(content, box_size=8, border=2)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    resp = HttpResponse(buf.getvalue(), content_type="image/png")
    resp["Cache-Control"] = "max-age=86400"
    return resp
