"""REST: group welcome templates (入群欢迎语素材, WeCom ``group_welcome_template/*``). Reads need a
console role; writes admin or operator (the console page's roles)."""

from __future__ import annotations

from typing import Any

from ninja import Field, Router, Schema

from siyu.accounts.permissions import Role, caller, require_role
from siyu.channels.api import Attachment
from siyu.channels.groupcodes import selectors, services
from siyu.channels.models import GroupWelcomeTemplate
from siyu.core.api_schemas import responses
from siyu.core.inputs import DbId, InputSchema
from siyu.wecom import gateway
from siyu.wecom.media import selectors as media_selectors

router = Router(tags=["group welcome templates"])
MANAGERS = (Role.ADMIN, Role.OPERATOR)


class TemplateIn(InputSchema):
    name: str = Field(..., min_length=1, max_length=64)
    text: str = Field("", max_length=3000)
    attachment: Attachment | None = None  # the channel codes' attachment schema: the same kinds and fields
    notify: bool = True


class TemplateOut(Schema):
    id: int
    name: str
    text: str
    attachment: dict
    notify: bool
    template_id: str


def _out(t: GroupWelcomeTemplate) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "text": t.text,
        "attachment": t.attachment,
        "notify": t.notify,
        "template_id": t.template_id,
    }


def _wecom_refusal(e: gateway.WeComAPIError) -> tuple[int, dict[str, str]]:
    """WeCom's "invalid parameter" (40058) is about the input: 422; anything else is WeCom's side: 502."""
    return (422 if e.errcode == 40058 else 502), {"detail": f"WeCom {e.errcode}: {e.errmsg}"}


def _attachment(body: TemplateIn) -> dict[str, Any]:
    a = body.attachment
    if a is None:
        return {}
    obj = dict(getattr(a, a.msgtype) or {})
    media = obj.get("media")
    if media is not None:
        kind = "image" if a.msgtype == "miniprogram" else a.msgtype
        if a.msgtype == "link" or not isinstance(media, int) or not media_selectors.exists(media, kind):
            raise services.TemplateError(f"{a.msgtype}.media must be the id of an uploaded {kind}")
    return {"msgtype": a.msgtype, a.msgtype: obj}


@router.get("/group-welcome-templates", response=responses(list[TemplateOut]))
def list_templates(request):
    require_role(request, *MANAGERS)
    return [_out(t) for t in selectors.welcome_templates()]


@router.get("/group-welcome-templates/{pk}", response=responses(TemplateOut, 404))
def get_template(request, pk: DbId):
    require_role(request, *MANAGERS)
    t = selectors.welcome_template(pk)
    if t is None:
        return 404, {"detail": "not found"}
    return _out(t)


@router.post("/group-welcome-templates", response=responses(TemplateOut, 502, status=201))
def create_template(request, body: TemplateIn):
    require_role(request, *MANAGERS)
    try:
        t = services.create_template(
            body.name, body.text, _attachment(body), notify=body.notify, created_by=caller(request).get_username()
        )
    except services.TemplateError as e:
        return 422, {"detail": str(e)}
    except gateway.WeComAPIError as e:
        return _wecom_refusal(e)
    return 201, _out(t)


@router.put("/group-welcome-templates/{pk}", response=responses(TemplateOut, 404, 502))
def update_template(request, pk: DbId, body: TemplateIn):
    require_role(request, *MANAGERS)
    t = selectors.welcome_template(pk)
    if t is None:
        return 404, {"detail": "not found"}
    try:
        services.update_template(t, body.name, body.text, _attachment(body))
    except services.TemplateError as e:
        return 422, {"detail": str(e)}
    except gateway.WeComAPIError as e:
        return _wecom_refusal(e)
    return _out(t)


@router.delete("/group-welcome-templates/{pk}", response=responses(None, 404, 502, status=204))
def delete_template(request, pk: DbId):
    require_role(request, *MANAGERS)
    t = selectors.welcome_template(pk)
    if t is None:
        return 404, {"detail": "not found"}
    try:
        services.delete_template(t)
    except gateway.WeComAPIError as e:
        return 502, {"detail": f"WeCom {e.errcode}: {e.errmsg}"}
    return 204, None
