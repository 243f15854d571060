"""The emulated WeCom client (企业微信客户端) in a browser, and WeCom's browser-side pages (part 4).

- ``/client/``: pick an employee (the client's signed-in member); ``/client/chats/``: their customers
  and customer groups as chats; ``/client/chat/single/<external_userid>/`` and
  ``/client/chat/group/<chat_id>/``: a chat, with the app's 聊天工具栏 page (``toolbar_url``) in the
  side panel, as WeCom loads it.
- ``/connect/oauth2/authorize``: OAuth (网页授权, §2): silent for snsapi_base in the client, a consent
  page for snsapi_privateinfo; ``/wwlogin/sso/login`` and ``/wwopen/sso/qrConnect``: web login (扫码登录,
  §1), where "scanning" is picking the member who confirms.
- ``/open/js/jweixin-1.2.0.js``: the JS-SDK as a page inside the client sees it. The real script talks
  to the client natively; this one talks to the client page around the panel (``postMessage``), which
  asks the emulator (``/client/api/...``) to check signatures (R9) and to carry out the call (R10–R14).

Every value shown is escaped; codes are single use (R1); an untrusted redirect_uri gets WeCom's
error page, never a code.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.views.decorators.csrf import csrf_exempt

from siyu.wecom_sim import clock, identity, rules, schemas
from siyu.wecom_sim.control import ControlError, action
from siyu.wecom_sim.endpoints.media import check_media
from siyu.wecom_sim.framework import WeComError
from siyu.wecom_sim.models import (
    ChatMessage,
    Department,
    ExternalContact,
    Follow,
    GroupChat,
    GroupMember,
    JsTicket,
    LinkVisit,
    User,
)

ASSETS = Path(__file__).parent / "static" / "wecom_sim"


def _asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


# A customer who deleted the employee stays in the employee's list in the client (WeCom marks the
# chat; the customer's side no longer receives): both kinds are chats here.
CHAT_STATUSES = (Follow.ACTIVE, Follow.DELETED_BY_CUSTOMER)
COOKIE = "sim_client_user"
COOKIE_SALT = "siyu.wecom_sim.client"

CSS = _asset("client.css")


def _page(title: str, body, status: int = 200, user: User | None = None) -> HttpResponse:
    who = (
        format_html('<span>{}</span><a href="/client/chats/">聊天</a><a href="/client/">切换成员</a>', user.name)
        if user
        else ""
    )
    html = format_html(
        """<!doctype html><html lang="zh-Hans"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>{title}</title><style>{css}</style></head>
<body><header><strong>企业微信 (模拟)</strong>{who}</header>{body}</body></html>""",
        title=title,
        css=CSS,
        who=who,
        body=body,
    )
    return HttpResponse(html, status=status)


def _error_page(message: str, status: int = 400) -> HttpResponse:
    return _page("错误", format_html('<main><div class="card"><p class="err">{}</p></div></main>', message), status)


def signed_in(request: HttpRequest) -> User | None:
    userid = request.get_signed_cookie(COOKIE, default=None, salt=COOKIE_SALT)
    if not userid:
        return None
    return User.objects.filter(userid=userid, status=1).first()


def _sign_in(response: HttpResponse, userid: str) -> HttpResponse:
    response.set_signed_cookie(COOKIE, userid, salt=COOKIE_SALT, httponly=True, samesite="Lax")
    return response


def _dept_names() -> dict[int, str]:
    return dict(Department.objects.values_list("id", "name"))


def _member_picker(action_url: str, submit: str, hidden: dict[str, str] | None = None, q: str = "") -> object:
    users = User.objects.filter(status=1).order_by("main_department", "userid")
    if q:
        users = users.filter(Q(name__icontains=q) | Q(userid__icontains=q))
    depts = _dept_names()
    rows = format_html_join(
        "",
        '<li><button class="secondary" name="userid" value="{}">{} <span class="muted">{} · {}</span></button></li>',
        ((u.userid, u.name, depts.get(u.main_department, ""), u.position or u.userid) for u in users[:200]),
    )
    fields = format_html_join("", '<input type="hidden" name="{}" value="{}">', (hidden or {}).items())
    return format_html(
        '<form method="post" action="{}">{}<ul class="chats">{}</ul><p class="muted">{}</p></form>',
        action_url,
        fields,
        rows,
        submit,
    )


# --- the client: sign in, chats, a chat ------------------------------------------------------------------
@csrf_exempt
def home(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        userid = request.POST.get("userid", "")
        if not User.objects.filter(userid=userid, status=1).exists():
            return _error_page("成员不存在或已离职")
        return _sign_in(HttpResponseRedirect(request.POST.get("next") or "/client/chats/"), userid)
    q = request.GET.get("q", "")[:64]
    body = format_html(
        """<main><div class="card"><h2>选择登录企业微信的成员</h2>
<form method="get"><input name="q" value="{}" placeholder="姓名或账号"> <button>搜索</button></form>{}</div></main>""",
        q,
        _member_picker("/client/", "点击成员即以其身份登录客户端"),
    )
    return _page("企业微信 (模拟)", body, user=signed_in(request))


def chats(request: HttpRequest) -> HttpResponse:
    user = signed_in(request)
    if user is None:
        return HttpResponseRedirect("/client/")
    q = request.GET.get("q", "")[:64]
    follows = Follow.objects.filter(userid=user.userid, status__in=CHAT_STATUSES).order_by("-createtime")
    contacts = {
        c.external_userid: c
        for c in ExternalContact.objects.filter(external_userid__in=follows.values("external_userid"))
    }
    rows = []
    for f in follows:
        c = contacts.get(f.external_userid)
        name = c.name if c else f.external_userid
        if q and q not in name and q not in (f.remark or ""):
            continue
        rows.append((f"/client/chat/single/{f.external_userid}/", f.remark or name, name if f.remark else ""))
        if len(rows) >= 300:
            break
    groups = GroupChat.objects.filter(dismissed=False).filter(
        Q(owner=user.userid) | Q(chat_id__in=GroupMember.objects.filter(userid=user.userid).values("chat_id"))
    )
    if q:
        groups = groups.filter(name__icontains=q)
    group_rows = [
        (f"/client/chat/group/{g.chat_id}/", g.name or "群聊", "") for g in groups.order_by("-create_time")[:100]
    ]
    item = '<li><a href="{}">{} <span class="muted">{}</span></a></li>'
    body = format_html(
        """<main><div class="card"><form method="get"><input name="q" value="{}" placeholder="搜索客户或群">
<button>搜索</button></form></div><div class="card"><h3>客户群</h3><ul class="chats">{}</ul></div>
<div class="card"><h3>客户 ({})</h3><ul class="chats">{}</ul></div></main>""",
        q,
        format_html_join("", item, group_rows) or format_html('<li class="muted">没有客户群</li>'),
        follows.count(),
        format_html_join("", item, rows) or format_html('<li class="muted">没有客户</li>'),
    )
    return _page("聊天", body, user=user)


def _chat_title(user: User, chat_type: str, key: str) -> str | None:
    if chat_type == "single":
        f = Follow.objects.filter(userid=user.userid, external_userid=key, status__in=CHAT_STATUSES).first()
        c = ExternalContact.objects.filter(external_userid=key).first()
        if f is None or c is None:
            return None
        return f.remark or c.name
    g = GroupChat.objects.filter(chat_id=key, dismissed=False).first()
    if g is None:
        return None
    if g.owner != user.userid and not GroupMember.objects.filter(chat_id=key, userid=user.userid).exists():
        return None
    return g.name or "群聊"


BRIDGE_JS = _asset("bridge.js")


def chat(request: HttpRequest, chat_type: str, key: str) -> HttpResponse:
    user = signed_in(request)
    if user is None:
        return HttpResponseRedirect("/client/?" + urlencode({"next": request.get_full_path()}))
    title = _chat_title(user, chat_type, key) if chat_type in ENTRIES else None
    if title is None:
        return _error_page("这不是该成员的客户或客户群", 404)
    toolbar = identity.client_config().get("toolbar_url") or ""
    if toolbar:
        parts = urlsplit(toolbar)
        origin = f"{parts.scheme}://{parts.netloc}"
        panel = format_html('<iframe id="toolbar" src="{}" title="聊天工具栏"></iframe>', toolbar)
    else:
        origin = ""
        panel = format_html(
            '<div class="none muted">{}</div>', "管理员尚未配置聊天工具栏页面 (控制接口 /sim/client/config)"
        )
    data = json.dumps({"chat_type": chat_type, "chat_key": key, "toolbar_origin": origin}).replace("<", "\\u003c")
    body = format_html(
        """<div class="chat"><section><div class="card" style="margin:0;border-radius:0"><strong>{}</strong>
<span class="muted">{}</span></div><div class="log" id="log" style="height:calc(100% - 50px)"></div></section>
<aside class="panel">{}</aside></div>
<dialog id="share"><form method="dialog"><h3 id="share-title"></h3>
<pre id="share-body" style="white-space:pre-wrap"></pre>
<button value="send">发送</button> <button class="secondary" value="cancel">取消</button></form></dialog>
<script type="application/json" id="chat-data">{}</script><script>{}</script>""",
        title,
        "客户群" if chat_type == "group" else "微信客户",
        panel,
        mark_safe(data),  # JSON with "<" escaped: cannot close the script element
        mark_safe(BRIDGE_JS),
    )
    return _page(title, body, user=user)


# --- the client's own API (called by the page around the panel) -----------------------------------------------
_registrations: dict[tuple[str, str], dict[str, float]] = {}
_reg_lock = threading.Lock()
_register_log: deque = deque(maxlen=200)  # (at, userid, kind, url, errMsg): control action client/registrations
ENTRIES = {"single": "single_chat_tools", "group": "group_chat_tools"}
CONTACT_ENTRIES = {"contact_profile", "single_chat_tools", "single_kf_tools"}
SEND_ENTRIES = {"single_chat_tools", "group_chat_tools", "chat_attachment", "single_kf_tools"}


def _json_body(request: HttpRequest) -> dict:
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def _registered(userid: str, url: str, kind: str) -> bool:
    with _reg_lock:
        return kind in _registrations.get((userid, url), {})


@csrf_exempt
def api(request: HttpRequest, name: str) -> JsonResponse:
    user = signed_in(request)
    if user is None:
        return JsonResponse({"err_msg": "system:not signed in"}, status=403)
    if name == "messages":
        return JsonResponse(_messages(user, request.GET))
    if request.method != "POST":
        return JsonResponse({"err_msg": "system:method not allowed"}, status=405)
    body = _json_body(request)
    chat_type = body.get("chat_type")
    key = str(body.get("chat_key") or "")
    if chat_type not in ENTRIES or _chat_title(user, chat_type, key) is None:
        return JsonResponse({"err_msg": "system:no such chat"}, status=404)
    if name == "register":
        return JsonResponse(_register(user, body))
    if name == "invoke":
        payload = body.get("args") if isinstance(body.get("args"), dict) else {}
        api_name = str(body.get("name") or "")[:64]
        try:
            result = _invoke(user, api_name, payload, chat_type, key, str(body.get("url") or ""))
        except _Fail as e:
            result = {"err_msg": f"{api_name}:fail {e}"}
        result.setdefault("err_msg", f"{api_name}:ok")
        result["errMsg"] = result["err_msg"]
        return JsonResponse(result)
    return JsonResponse({"err_msg": "system:unknown call"}, status=404)


def _register(user: User, body: dict) -> dict:
    kind = body.get("kind")
    params = body.get("params") if isinstance(body.get("params"), dict) else {}
    url = str(body.get("url") or "").split("#", 1)[0]
    if kind not in ("config", "agentConfig"):
        return {"ok": False, "errMsg": "system:unknown registration"}
    ok, msg = identity.verify_registration(kind, params, url)
    _register_log.append((time.time(), user.userid, kind, url, msg))
    if ok:
        with _reg_lock:
            _registrations.setdefault((user.userid, url), {})[kind] = time.time()
            if len(_registrations) > 10_000:  # the client forgets old pages
                _registrations.pop(next(iter(_registrations)))
    return {"ok": ok, "errMsg": msg, "err_msg": msg}


class _Fail(Exception):
    pass


def _http_url(value: object) -> bool:
    return isinstance(value, str) and re.match(r"^https?://\S+$", value) is not None


def _message_body(msgtype: str, args: dict, now: int) -> dict:
    """The body of a sendChatMessage (doc 98539), checked as the client checks it."""
    if msgtype == "text":
        text = args.get("text")
        content = text.get("content") if isinstance(text, dict) else None
        if not isinstance(content, str) or not content:
            raise _Fail("invalid text")
        return {"content": content[:4000]}
    if msgtype in ("image", "video", "file"):
        obj = args.get(msgtype) if isinstance(args.get(msgtype), dict) else {}
        try:
            check_media(obj.get("mediaid"), now, kind=msgtype)
        except WeComError:
            raise _Fail("invalid mediaid") from None
        return {"mediaid": obj["mediaid"]}
    if msgtype == "news":
        obj = args.get("news") if isinstance(args.get("news"), dict) else {}
        if not _http_url(obj.get("link")):
            raise _Fail("invalid link")
        if obj.get("imgUrl") and not _http_url(obj.get("imgUrl")):
            raise _Fail("invalid imgUrl")
        return {k: str(obj.get(k) or "")[:512] for k in ("link", "title", "desc", "imgUrl")}
    if msgtype == "miniprogram":
        obj = args.get("miniprogram") if isinstance(args.get("miniprogram"), dict) else {}
        if not obj.get("appid"):
            raise _Fail("invalid appid")
        if not _http_url(obj.get("imgUrl")):
            raise _Fail("invalid imgUrl")
        if not str(obj.get("page") or "").split("?")[0].endswith(".html"):
            raise _Fail("invalid page")
        return {k: str(obj.get(k) or "")[:512] for k in ("appid", "title", "imgUrl", "page")}
    raise _Fail("invalid msgtype")


def _share_body(name: str, args: dict) -> dict:
    """shareToExternalContact/Chat (R12) and shareToExternalMoments (R13)."""
    r = rules.get()
    text = args.get("text") if isinstance(args.get("text"), dict) else {}
    content = str(text.get("content") or "")
    attachments = args.get("attachments") if isinstance(args.get("attachments"), list) else []
    if name == "shareToExternalMoments":
        if len(content) > r.share_moments_text_max_chars:
            raise _Fail("invalid text size")
        kinds = {a.get("msgtype") for a in attachments if isinstance(a, dict)}
        if len(kinds) > 1 or (kinds & {"video", "link"} and len(attachments) > 1):
            raise _Fail("invalid attachments msgtype")
        if len(attachments) > r.moment_max_images:
            raise _Fail("invalid attachments size")
    else:
        if len(content) > r.share_text_max_chars:
            raise _Fail("invalid text size")
        if len(attachments) > r.share_max_attachments:
            raise _Fail("invalid attachments size")
    if not content and not attachments:
        raise _Fail("invalid content")
    return {"text": {"content": content}, "attachments": attachments}


def _invoke(user: User, name: str, args: dict, chat_type: str, key: str, url: str) -> dict:  # noqa: C901 - one branch per JS API, as the doc lists them
    url = url.split("#", 1)[0]
    entry = ENTRIES[chat_type]
    if not (_registered(user.userid, url, "config") or _registered(user.userid, url, "agentConfig")):
        raise _Fail("no permission")
    app_identity = _registered(user.userid, url, "agentConfig")
    needs_cc = name in {
        "getCurExternalContact",
        "getCurExternalChat",
        "sendChatMessage",
        "shareToExternalContact",
        "shareToExternalChat",
        "shareToExternalMoments",
    }
    # chat-toolbar APIs: "本接口必须使用应用身份进行注册" (R10); 客户联系 permission of the member
    if needs_cc and name not in ("shareToExternalContact", "shareToExternalChat") and not app_identity:
        raise _Fail("no permission")
    if needs_cc and not user.contact_enabled:
        raise _Fail("no permission")
    now = clock.now()
    if name == "getContext":
        return {"entry": entry}
    if name == "getCurExternalContact":
        if entry not in CONTACT_ENTRIES:
            raise _Fail("without context of external contact")
        return {"userId": key}
    if name == "getCurExternalChat":
        if entry != "group_chat_tools":
            raise _Fail("without context of external contact")
        return {"chatId": key}
    if name == "sendChatMessage":
        if entry not in SEND_ENTRIES:
            raise _Fail("without context of external contact")
        msgtype = str(args.get("msgtype") or "text")
        payload = _message_body(msgtype, args, now)
        ChatMessage.objects.create(
            userid=user.userid, chat_type=chat_type, chat_key=key, msgtype=msgtype, payload=payload, sent_at=now
        )
        return {}
    if name in ("shareToExternalContact", "shareToExternalChat", "shareToExternalMoments"):
        payload = _share_body(name, args)
        kind = {"shareToExternalContact": "share_contact", "shareToExternalChat": "share_chat"}.get(name, "moments")
        ChatMessage.objects.create(
            userid=user.userid, chat_type=kind, chat_key="", msgtype="share", payload=payload, via=name, sent_at=now
        )
        return {}
    if name == "openUserProfile":
        kind, target = args.get("type"), str(args.get("userid") or "")
        exists = (
            User.objects.filter(userid=target).exists()
            if kind == 1
            else ExternalContact.objects.filter(external_userid=target).exists()
        )
        if kind not in (1, 2) or not exists:
            raise _Fail("invalid userid")
        return {}
    raise _Fail("not support")


def _text_of(m: ChatMessage) -> tuple[str, str]:
    p = m.payload or {}
    if m.msgtype == "text":
        return p.get("content", ""), ""
    if m.msgtype == "news":
        return f"[链接] {p.get('title', '')}", f"{p.get('desc', '')}\n{p.get('link', '')}"
    if m.msgtype == "miniprogram":
        return f"[小程序] {p.get('title', '')}", ""
    return f"[{m.msgtype}]", ""


def _messages(user: User, query) -> dict:
    chat_type = query.get("chat_type")
    key = str(query.get("chat_key") or "")
    try:
        after = int(query.get("after") or 0)
    except ValueError:
        after = 0
    if chat_type not in ENTRIES or _chat_title(user, chat_type, key) is None:
        return {"items": []}
    items = []
    for m in ChatMessage.objects.filter(userid=user.userid, chat_type=chat_type, chat_key=key, id__gt=after).order_by(
        "id"
    )[:200]:
        text, link = _text_of(m)
        items.append({"id": m.id, "seq": m.id, "kind": "message", "text": text, "link": link})
    return {"items": items}


# --- OAuth and web login pages ------------------------------------------------------------------------------
_STATE = re.compile(r"^[A-Za-z0-9]*$")


def _redirect_with(redirect_uri: str, **params: str) -> HttpResponseRedirect:
    sep = "&" if urlsplit(redirect_uri).query else "?"
    return HttpResponseRedirect(redirect_uri + sep + urlencode({k: v for k, v in params.items() if v is not None}))


def _check_redirect(redirect_uri: str, state: str) -> str | None:
    if not redirect_uri or not re.match(r"^https?://", redirect_uri):
        return "redirect_uri 参数错误"
    if not identity.trusted(redirect_uri):
        return "redirect_uri 需使用应用可信域名"
    if len(state.encode()) > rules.get().oauth_state_max_bytes or not _STATE.match(state):
        return "state 参数错误: 只能是 a-zA-Z0-9, 不超过 128 字节"
    return None


@csrf_exempt
def oauth_authorize(request: HttpRequest) -> HttpResponse:
    """网页授权 (doc 96441): snsapi_base is silent inside the client; snsapi_privateinfo with an
    agentid asks the member (R4: without agentid it is snsapi_base)."""
    q = request.GET
    redirect_uri, state, scope = q.get("redirect_uri", ""), q.get("state", ""), q.get("scope", "")
    if q.get("appid") != settings.SIM_CORP_ID:
        return _error_page("appid 参数错误")
    if q.get("response_type") != "code":
        return _error_page("response_type 参数错误")
    if scope not in ("snsapi_base", "snsapi_privateinfo", "snsapi_userinfo"):
        return _error_page("scope 参数错误")
    problem = _check_redirect(redirect_uri, state)
    if problem:
        return _error_page(problem)
    agentid = q.get("agentid")
    agent = int(agentid) if agentid and agentid.isdigit() else None
    if scope == "snsapi_privateinfo" and agent is None:
        scope = "snsapi_base"
    user = signed_in(request)
    if request.method == "POST" and request.POST.get("userid"):  # outside the client: the emulator's picker
        picked = User.objects.filter(userid=request.POST["userid"], status=1).first()
        if picked is None:
            return _error_page("成员不存在或已离职")
        return _sign_in(HttpResponseRedirect(request.get_full_path()), picked.userid)
    if user is None:
        body = format_html(
            '<main><div class="card"><h2>请在企业微信客户端打开链接</h2><p class="muted">{}</p>{}</div></main>',
            "模拟器: 选择一名成员, 以其身份在企业微信内打开此页面。",
            _member_picker(request.get_full_path(), ""),
        )
        return _page("企业微信", body)
    if scope == "snsapi_privateinfo" and request.method != "POST":
        body = format_html(
            """<main><div class="card"><h2>授权登录</h2><p>应用申请获取 {} 的头像、手机号、邮箱等敏感信息。</p>
<form method="post"><button name="consent" value="yes">同意</button>
<button class="secondary" name="consent" value="no">拒绝</button></form></div></main>""",
            user.name,
        )
        return _page("授权", body, user=user)
    if scope == "snsapi_privateinfo" and request.POST.get("consent") != "yes":
        return _redirect_with(redirect_uri, state=state)  # refusal: no code (R7)
    code = identity.issue_code("oauth", user.userid, redirect_uri, scope=scope, agentid=agent)
    return _redirect_with(redirect_uri, code=code, state=state)


@csrf_exempt
def web_login(request: HttpRequest) -> HttpResponse:
    """Web login (§1.1 ``wwlogin/sso/login``, §1.2 legacy ``wwopen/sso/qrConnect``): the QR code
    is "scanned" by picking the member who confirms in their client; cancel returns without a code."""
    q = request.GET
    redirect_uri, state = q.get("redirect_uri", ""), q.get("state", "")
    if q.get("appid") != settings.SIM_CORP_ID:
        return _error_page("appid 参数错误")
    if request.path.startswith("/wwlogin/") and q.get("login_type", "CorpApp") != "CorpApp":
        return _error_page("login_type 参数错误")
    if str(q.get("agentid", "")) != str(settings.SIM_AGENT_ID):
        return _error_page("agentid 参数错误")
    problem = _check_redirect(redirect_uri, state)
    if problem:
        return _error_page(problem)
    if request.method == "POST":
        if request.POST.get("cancel"):
            return _redirect_with(redirect_uri, state=state)
        user = User.objects.filter(userid=request.POST.get("userid", ""), status=1).first()
        if user is None:
            return _error_page("成员不存在或已离职")
        code = identity.issue_code("web", user.userid, redirect_uri, agentid=settings.SIM_AGENT_ID)
        return _redirect_with(redirect_uri, code=code, state=state)
    body = format_html(
        """<main><div class="card"><h2>企业微信扫码登录</h2>
<p class="muted">模拟器: 点击一名成员, 即该成员用企业微信扫码并确认登录。</p>{}
<form method="post" action="{}"><button class="secondary" name="cancel" value="1">取消登录</button></form>
</div></main>""",
        _member_picker(request.get_full_path(), ""),
        request.get_full_path(),
    )
    return _page("企业微信登录", body)


# --- the JS-SDK inside the client -----------------------------------------------------------------------------
JSSDK = _asset("jweixin-1.2.0.js")


def jssdk(request: HttpRequest) -> HttpResponse:
    resp = HttpResponse(JSSDK, content_type="application/javascript; charset=utf-8")
    resp["Cache-Control"] = "max-age=300"
    return resp


# --- control actions ------------------------------------------------------------------------------------------
@action("client/config", schemas.ClientConfig)
def client_config_action(body: dict) -> dict:
    """The app's trusted domains (可信域名) and its chat-toolbar page (聊天工具栏)."""
    cfg = identity.set_client_config(trusted_domains=body.get("trusted_domains"), toolbar_url=body.get("toolbar_url"))
    return {"client": cfg}


@action("client/messages", schemas.ChatMessages)
def chat_messages(body: dict) -> dict:
    """What employees sent into chats from pages in the client (newest first)."""
    qs = ChatMessage.objects.order_by("-id")
    if body.get("userid"):
        qs = qs.filter(userid=body["userid"])
    if body.get("chat_key"):
        qs = qs.filter(chat_key=body["chat_key"])
    return {
        "messages": [
            {
                "id": m.id,
                "userid": m.userid,
                "chat_type": m.chat_type,
                "chat_key": m.chat_key,
                "msgtype": m.msgtype,
                "payload": m.payload,
                "via": m.via,
                "sent_at": m.sent_at,
                "visits": [{"status": v.status, "location": v.location, "at": v.at} for v in m.visits.all()],
            }
            for m in qs[: body.get("limit", 100)]
        ]
    }


_URL_IN_TEXT = re.compile(r"https?://[^\s<>\"']+")


def _links_of(m: ChatMessage) -> list[str]:
    p = m.payload or {}
    if m.msgtype == "news":
        return [p.get("link", "")]
    if m.msgtype == "text":
        return _URL_IN_TEXT.findall(p.get("content", ""))
    return []


@action("client/code", schemas.ClientCode)
def client_code(body: dict) -> dict:
    """A login or OAuth code for a member, as the pages would hand it to ``redirect_uri``."""
    if not User.objects.filter(userid=body["userid"], status=1).exists():
        raise ControlError("no such active member")
    if not identity.trusted(body["redirect_uri"]):
        raise ControlError("redirect_uri is not on a trusted domain of the app")
    kind = body.get("kind") or "oauth"
    return {"code": identity.issue_code(kind, body["userid"], body["redirect_uri"], scope="snsapi_base")}


@action("click_link", schemas.ClickLink, atomic=False)
def click_link(body: dict) -> dict:
    """The customer opens a link an employee sent them: the WeChat browser requests it (without
    following the redirect) and the answer is recorded."""
    ext = body["external_userid"]
    msgs = ChatMessage.objects.filter(chat_type="single", chat_key=ext).order_by("-id")
    if body.get("message_id"):
        msgs = msgs.filter(id=body["message_id"])
    url, message = body.get("url"), None
    for m in msgs[:200]:
        links = _links_of(m)
        if (url and url in links) or (not url and links):
            message, url = m, url or links[-1]
            break
    if message is None or not url:
        raise ControlError("no link was sent to this customer in a 1:1 chat")
    ua = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Mobile MicroMessenger/8.0.50 (Siyu WeCom emulator)"
    try:
        r = requests.get(url, allow_redirects=False, timeout=10, headers={"User-Agent": ua})
    except requests.RequestException as e:
        raise ControlError(f"the link did not answer: {type(e).__name__}") from None
    with transaction.atomic():
        v = LinkVisit.objects.create(
            message=message,
            external_userid=ext,
            url=url,
            status=r.status_code,
            location=r.headers.get("Location", "")[:2048],
            at=clock.now(),
        )
    return {"message_id": message.id, "url": url, "status": v.status, "location": v.location}


@action("client/registrations", schemas.Empty)
def registrations(body: dict) -> dict:
    """The pages' latest wx.config / wx.agentConfig checks and the client's answers (newest last)."""
    return {
        "registrations": [
            {"at": at, "userid": u, "kind": k, "url": url, "errMsg": msg} for at, u, k, url, msg in _register_log
        ]
    }


@action("tickets/revoke", schemas.Empty)
def tickets_revoke(body: dict) -> dict:
    """Invalidate every JS-SDK ticket early (like ``tokens/revoke``): pages signed with a cached
    ticket are refused (40093) until the app fetches new ones."""
    return {"revoked": JsTicket.objects.filter(expires_at__gt=clock.now()).update(expires_at=clock.now())}
