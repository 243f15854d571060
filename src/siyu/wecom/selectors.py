"""Reads for the WeCom console pages and the dashboard: effective settings, API log, inbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncHour
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from siyu.core.text import mask
from siyu.wecom import config as wecom_config
from siyu.wecom import errcodes
from siyu.wecom.models import ApiCall, CallbackInbox, CallbackRejection, WeComSettings

# field → (settings.WECOM key, environment variable, is a secret)
FIELD_SOURCES = {
    "corp_id": ("CORP_ID", "WECOM_CORP_ID", False),
    "api_base": ("API_BASE", "WECOM_API_BASE", False),
    "contact_secret": ("CONTACT_SECRET", "WECOM_CONTACT_SECRET", True),
    "app_secret": ("APP_SECRET", "WECOM_APP_SECRET", True),
    "agent_id": ("AGENT_ID", "WECOM_AGENT_ID", False),
    "callback_token": ("CALLBACK_TOKEN", "WECOM_CALLBACK_TOKEN", True),
    "callback_aes_key": ("CALLBACK_AES_KEY", "WECOM_CALLBACK_AES_KEY", True),
}
SECRET_FIELDS = tuple(name for name, (_k, _e, secret) in FIELD_SOURCES.items() if secret)

SOURCE_LABELS = {
    "console": _("控制台"),
    "env": _("环境变量"),
    "default": _("默认值"),
    "fallback": _("沿用客户联系 Secret"),
    "unset": _("未设置"),
}


@dataclass(frozen=True)
class FieldState:
    name: str
    label: str
    secret: bool
    console_value: str  # the console's override ("" = none); masked when secret
    effective: str  # what the gateway uses; masked when secret
    source: str  # console | env | default | fallback | unset
    source_label: str
    env_var: str
    has_console_value: bool


def settings_row() -> WeComSettings | None:
    return WeComSettings.objects.order_by("id").first()


def effective_config() -> list[FieldState]:
    """Each connection setting with where its effective value comes from (console / environment)."""
    row = settings_row()
    env = settings.WECOM
    states = []
    for name, (key, env_var, secret) in FIELD_SOURCES.items():
        console = getattr(row, name) if row else ""
        env_value = env.get(key) or ""
        if console:
            value, source = console, "console"
        elif env_value and name == "api_base" and not env.get("API_BASE_SET"):
            value, source = env_value, "default"
        elif env_value:
            value, source = env_value, "env"
        else:
            value, source = "", "unset"
        if name == "app_secret" and source == "unset":
            contact = (row.contact_secret if row else "") or env.get("CONTACT_SECRET") or ""
            if contact:
                value, source = contact, "fallback"
        label = str(getattr(WeComSettings._meta.get_field(name), "verbose_name", name))
        states.append(
            FieldState(
                name=name,
                label=label,
                secret=secret,
                console_value=mask(console) if secret else console,
                effective=mask(value) if secret else value,
                source=source,
                source_label=str(SOURCE_LABELS[source]),
                env_var=env_var,
                has_console_value=bool(console),
            )
        )
    return states


def connection_status() -> dict[str, Any]:
    """Is WeCom configured, and how did the latest calls end?"""
    cfg = wecom_config.get()
    since = timezone.now() - timedelta(hours=24)
    last = ApiCall.objects.order_by("-id").first()
    last_error = ApiCall.objects.filter(_errors()).order_by("-id").first()
    recent = ApiCall.objects.filter(at__gte=since).aggregate(calls=Count("id"), errors=Count("id", filter=_errors()))
    return {
        "configured": bool(cfg.corp_id and cfg.contact_secret and cfg.api_base),
        "corp_id": cfg.corp_id,
        "api_base": cfg.api_base,
        "callback_ready": cfg.callback_ready,
        "app_ready": bool(cfg.agent_id and cfg.secret("app")),
        "last_call": last,
        "last_ok": last is not None and last.errcode == 0,
        "last_meaning": errcodes.meaning(last.errcode) if last else "",
        "last_error": last_error,
        "last_error_meaning": errcodes.meaning(last_error.errcode) if last_error else "",
        "calls_24h": recent["calls"],
        "errors_24h": recent["errors"],
    }


def _errors() -> Q:
    return Q(errcode__isnull=True) | ~Q(errcode=0)


def api_calls(*, errors_only: bool = False, path: str = "", errcode: int | None = None) -> QuerySet[ApiCall]:
    """The gateway's call log, newest first. ``path`` matches a prefix (``externalcontact/``)."""
    qs = ApiCall.objects.all()
    if errors_only:
        qs = qs.filter(_errors())
    if path:
        qs = qs.filter(path__startswith=path.strip().lstrip("/"))
    if errcode is not None:
        qs = qs.filter(errcode=errcode)
    return qs.order_by("-id")


def api_calls_by_hour(hours: int = 24) -> list[dict[str, Any]]:
    """Calls and errors per hour over the last ``hours`` (for the dashboard chart), oldest first."""
    now = timezone.localtime()
    start = (now - timedelta(hours=hours - 1)).replace(minute=0, second=0, microsecond=0)
    rows = (
        ApiCall.objects.filter(at__gte=start)
        .annotate(hour=TruncHour("at"))
        .values("hour")
        .annotate(calls=Count("id"), errors=Count("id", filter=_errors()))
    )
    by_hour = {timezone.localtime(r["hour"]).replace(minute=0, second=0, microsecond=0): r for r in rows}
    out = []
    for i in range(hours):
        hour = start + timedelta(hours=i)
        r = by_hour.get(hour, {"calls": 0, "errors": 0})
        out.append({"hour": hour, "ok": r["calls"] - r["errors"], "errors": r["errors"]})
    return out


def inbox_rows(*, status: str = "", event: str = "", change_type: str = "") -> QuerySet[CallbackInbox]:
    qs = CallbackInbox.objects.defer("payload")
    if status:
        qs = qs.filter(status=status)
    if event:
        qs = qs.filter(event=event)
    if change_type:
        qs = qs.filter(change_type=change_type)
    return qs.order_by("-id")


def inbox_payload(row_id: int) -> CallbackInbox | None:
    return CallbackInbox.objects.filter(id=row_id).first()


# The callback events an SCRM receives (part3-callbacks-errors.md §2), for the filter menus.
# A static catalogue: a DISTINCT over a large inbox would scan it on every page view.
EVENT_CATALOGUE = {
    "change_external_contact": (
        "add_external_contact",
        "add_half_external_contact",
        "edit_external_contact",
        "del_external_contact",
        "del_follow_user",
        "transfer_fail",
    ),
    "change_external_chat": ("create", "update", "dismiss"),
    "change_external_tag": ("create", "update", "delete", "shuffle"),
    "change_contact": (
        "create_user",
        "update_user",
        "delete_user",
        "create_party",
        "update_party",
        "delete_party",
        "update_tag",
    ),
}


def inbox_event_types() -> dict[str, tuple[str, ...]]:
    return EVENT_CATALOGUE


# Chinese names of the events and change types (WeCom's own names in its admin docs), for pages:
# the raw name is shown beside them as secondary text only.
EVENT_LABELS: dict[str, str | Promise] = {
    "change_external_contact": _("客户变更"),
    "change_external_chat": _("客户群变更"),
    "change_external_tag": _("企业客户标签变更"),
    "change_contact": _("通讯录变更"),
}
CHANGE_TYPE_LABELS: dict[tuple[str, str], str | Promise] = {
    ("change_external_contact", "add_external_contact"): _("添加客户"),
    ("change_external_contact", "add_half_external_contact"): _("客户免验证添加"),
    ("change_external_contact", "edit_external_contact"): _("编辑客户"),
    ("change_external_contact", "del_external_contact"): _("员工删除客户"),
    ("change_external_contact", "del_follow_user"): _("客户删除员工"),
    ("change_external_contact", "transfer_fail"): _("客户接替失败"),
    ("change_external_chat", "create"): _("创建客户群"),
    ("change_external_chat", "update"): _("客户群变更"),
    ("change_external_chat", "dismiss"): _("解散客户群"),
    ("change_external_tag", "create"): _("新建标签"),
    ("change_external_tag", "update"): _("修改标签"),
    ("change_external_tag", "delete"): _("删除标签"),
    ("change_external_tag", "shuffle"): _("标签重新排序"),
    ("change_contact", "create_user"): _("新增成员"),
    ("change_contact", "update_user"): _("更新成员"),
    ("change_contact", "delete_user"): _("删除成员"),
    ("change_contact", "create_party"): _("新建部门"),
    ("change_contact", "update_party"): _("更新部门"),
    ("change_contact", "delete_party"): _("删除部门"),
    ("change_contact", "update_tag"): _("通讯录标签变更"),
}


def event_label(event: str) -> str:
    """An event's Chinese name ("" for an event without one: the page shows the raw name, grey)."""
    return str(EVENT_LABELS.get(event, ""))


def change_type_label(event: str, change_type: str) -> str:
    return str(CHANGE_TYPE_LABELS.get((event, change_type), ""))


def event_choices() -> list[tuple[str, str]]:
    """(event, label) for the inbox filter."""
    return [(e, event_label(e) or e) for e in EVENT_CATALOGUE]


def change_type_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """(event label, [(change_type, label)]) for the inbox filter."""
    return [
        (event_label(e) or e, [(t, change_type_label(e, t) or t) for t in types])
        for e, types in EVENT_CATALOGUE.items()
    ]


def inbox_summary() -> dict[str, Any]:
    """Backlog of the callback inbox: counts per status, oldest pending, recent rejections."""
    counts = dict(CallbackInbox.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    oldest = (
        CallbackInbox.objects.filter(status=CallbackInbox.PENDING)
        .order_by("id")
        .values_list("received_at", flat=True)
        .first()
    )
    since = timezone.now() - timedelta(hours=24)
    return {
        "pending": counts.get(CallbackInbox.PENDING, 0),
        "failed": counts.get(CallbackInbox.FAILED, 0),
        "done": counts.get(CallbackInbox.DONE, 0),
        "ignored": counts.get(CallbackInbox.IGNORED, 0),
        "oldest_pending": oldest,
        "rejections_24h": CallbackRejection.objects.filter(at__gte=since).count(),
        "last_received": CallbackInbox.objects.order_by("-id").values_list("received_at", flat=True).first(),
    }


def rejections(*, reason: str = "") -> QuerySet[CallbackRejection]:
    qs = CallbackRejection.objects.all()
    if reason:
        qs = qs.filter(reason=reason)
    return qs.order_by("-id")
