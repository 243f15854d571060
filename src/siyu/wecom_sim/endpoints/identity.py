"""Identity endpoints (part 4 §1.3, §2.2–2.3, §3.1): code → member, sensitive fields, JS-SDK tickets."""

from __future__ import annotations

from django.conf import settings

from siyu.wecom_sim import identity
from siyu.wecom_sim.framework import SimRequest, WeComError, endpoint
from siyu.wecom_sim.models import User

# DeviceId of the legacy answer: WeCom's is the client's device; the emulator's client has one.
_DEVICE_ID = "sim-client-device-0001"


def _member(userid: str) -> User:
    user = User.objects.filter(userid=userid).first()
    if user is None:
        raise WeComError(60111)
    if user.status != 1:
        raise WeComError(50002, "user not in the app's visible range")
    return user


@endpoint("auth/getuserinfo", methods=("GET",))
def getuserinfo(req: SimRequest) -> dict:
    """获取访问用户身份 (doc 98177 / 96442): ``{userid}``, plus ``user_ticket`` after OAuth with
    snsapi_privateinfo and the app's agentid (R3, R4). Only members use the emulated client, so the
    non-member answer (openid, external_userid) never occurs."""
    row = identity.redeem_code(req.query.get("code"), req.secret)
    _member(row.userid)
    out: dict = {"userid": row.userid}
    if row.user_ticket:
        out.update(user_ticket=row.user_ticket, expires_in=1800)
    return out


@endpoint("user/getuserinfo", methods=("GET",))
def getuserinfo_legacy(req: SimRequest) -> dict:
    """The older path with WeCom's capitalised keys (R6)."""
    row = identity.redeem_code(req.query.get("code"), req.secret)
    _member(row.userid)
    return {"UserId": row.userid, "DeviceId": _DEVICE_ID}


@endpoint("auth/getuserdetail", methods=("POST",))
def getuserdetail(req: SimRequest) -> dict:
    """获取访问用户敏感信息 (R5): the member behind a user_ticket. The emulated admin selected every
    field for the app and the member consented on the authorisation page."""
    user = identity.user_of_ticket(req.param("user_ticket"))
    return {
        "userid": user.userid,
        "gender": user.gender or "0",
        "avatar": user.avatar,
        "qr_code": f"https://open.work.weixin.qq.com/wwopen/userQRCode?vcode=sim{user.userid}",
        "mobile": user.mobile,
        "email": user.email,
        "biz_mail": "",
        "address": "",
    }


@endpoint("get_jsapi_ticket", methods=("GET",))
def get_jsapi_ticket(req: SimRequest) -> dict:
    """企业的 jsapi_ticket (doc 96909): the same ticket while valid, 7200 s, ≤ 400 fetches an hour."""
    row = identity.fetch_ticket("corp")
    return {"ticket": row.ticket, "expires_in": max(0, row.expires_at - req.now)}


@endpoint("ticket/get", methods=("GET",))
def ticket_get(req: SimRequest) -> dict:
    """应用的 jsapi_ticket (``type=agent_config``): fetched with the app's own token, ≤ 100 an hour."""
    if req.query.get("type") != "agent_config":
        raise WeComError(40005)
    if req.secret != settings.SIM_APP_SECRET:
        # the customer-contact secret is not an app: it has no agent to sign for (unverified errcode)
        raise WeComError(48002)
    row = identity.fetch_ticket("agent")
    return {"ticket": row.ticket, "expires_in": max(0, row.expires_at - req.now)}
