"""Tokens (获取access_token)."""

from __future__ import annotations

from django.conf import settings

from siyu.wecom_sim import rules
from siyu.wecom_sim.framework import SimRequest, WeComError, endpoint, issue_token


def accepted_secrets() -> set[str]:
    return {settings.SIM_SECRET, settings.SIM_APP_SECRET}


@endpoint("gettoken", methods=("GET",), auth=False)
def gettoken(req: SimRequest) -> dict:
    corpid = req.query.get("corpid")
    secret = req.query.get("corpsecret")
    if not corpid:
        raise WeComError(41002)
    if not secret:
        raise WeComError(41004)
    if corpid != settings.SIM_CORP_ID:
        raise WeComError(40013)
    if secret not in accepted_secrets():
        raise WeComError(40001)
    tok = issue_token(secret)
    return {"access_token": tok.access_token, "expires_in": max(0, tok.expires_at - req.now) or rules.get().token_ttl_s}
