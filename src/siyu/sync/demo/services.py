"""The demo's history: six months of a jewellery brand's private-domain work, seeded on the first
``siyu demo`` (a cross-domain flow: it calls the apps' services and selectors only).

The emulator's demo world already holds the WeCom side of the history (customers who added guides
through store posters, package cards and live streams over six months, and those who left again);
``siyu demo`` reads it from the emulator's control API (``/sim/demo/history``) and hands it here:

1. ``ensure_channel_codes`` creates the brand's channel codes through ``channels.services`` (so
   each is a contact way in WeCom) and answers which state each channel's customers must carry;
   the emulator re-keys them (``/sim/demo/attribute``) before the first full sync imports them;
2. ``import_history`` (after the sync) records the past adds through each code with their welcome
   sends and losses (channel analytics), the relations customers ended (customers' timelines) and
   the churn alerts of the last six months;
3. ``ensure_group_codes``, ``start_broadcasts`` / ``sync_broadcasts`` and ``hand_over`` add group
   codes, finished mass messages and Moments, and a finished 离职继承, through the products' own
   flows against the emulator (whose simulated employees confirm and customers accept).

Every step is idempotent: a second start on the same var folder finds its rows and adds nothing.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone

from siyu.accounts import services as account_services
from siyu.accounts.selectors import DataScope, api_tokens
from siyu.attribution import services as attribution_services
from siyu.broadcasts import selectors as broadcast_selectors
from siyu.broadcasts import services as broadcast_services
from siyu.channels import services as channel_services
from siyu.channels.groupcodes import selectors as groupcode_selectors
from siyu.channels.groupcodes import services as groupcode_services
from siyu.customers import selectors as customer_selectors
from siyu.customers import services as customer_services
from siyu.customers.tags import selectors as tag_selectors
from siyu.groups import selectors as group_selectors
from siyu.guidetasks import selectors as task_selectors
from siyu.guidetasks import services as task_services
from siyu.materials import selectors as material_selectors
from siyu.materials import services as material_services
from siyu.org import selectors as org_selectors
from siyu.org import services as org_services
from siyu.transfers import selectors as transfer_selectors
from siyu.transfers import services as transfer_services

logger = logging.getLogger("siyu.demo")

EVERYTHING = DataScope(everything=True)
CREATED_BY = "demo"

WELCOMES = {
    "门店海报": "{nickname}您好，我是金澜珠宝{employee}，欢迎来店里试戴! 到店出示本消息可领取一次免费清洗保养。",
    "包装卡": "感谢{nickname}选购金澜珠宝！我是您的专属顾问{employee}，佩戴、保养、以旧换新都可以随时问我。",
    "直播": "{nickname}您好，直播间福利已为您预留，我是{employee}，有喜欢的款式直接发我截图!",
    "线上": "欢迎{nickname}！我是金澜珠宝{employee}，新品和会员活动会第一时间通知您。",
    "线下活动": "{nickname}您好，感谢老朋友推荐！我是{employee}，推荐礼已为您登记。",
}

DEFAULT_WELCOME = "{nickname}您好，欢迎关注金澜珠宝！我是{employee}，有任何需要随时找我。"

# Follow status in the emulator's history (as WeCom's callbacks name them)
DELETED_BY_CUSTOMER, DELETED_BY_EMPLOYEE = 1, 2


def _ts(value: int | float) -> datetime:
    return datetime.fromtimestamp(value, tz=UTC)


def _fraction(*parts: Any) -> float:
    """A stable pseudo-random number in [0, 1) for a history row (the same on every start)."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") / 2**32


# --- channel codes --------------------------------------------------------------------------------
def ensure_channel_codes(channels: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Create the demo's channel codes (a contact way each in WeCom) unless they exist; returns the
    emulator's history state → the code's own state, for ``/sim/demo/attribute``."""
    out: dict[str, str] = {}
    for ch in channels:
        code = channel_services.code_by_name(ch["name"])
        if code is None:
            users = [str(u) for u in ch.get("users") or []]
            if not users:
                continue
            store = ch.get("kind") == "store"
            data: dict[str, Any] = {
                "name": ch["name"],
                "folder": ch.get("folder", ""),
                "kind": "store" if store else "channel",
                "department_id": ch.get("department_id") if store else None,
                "users": users,
                "welcome": channel_services.clean_welcome(WELCOMES.get(ch.get("folder", ""), WELCOMES["线上"]), []),
            }
            # made a day before its first add: the code list tells the same story as the analytics
            made = _ts(ch["first_add"] - 86400) if ch.get("first_add") else None
            code = channel_services.create_code(data, created_by=CREATED_BY, created_at=made)
        out[ch["state"]] = code.state
    return out


# --- history: adds, welcomes, losses, churn alerts --------------------------------------------------
def import_history(history: dict[str, Any]) -> dict[str, int]:
    """Record the emulator's history (``/sim/demo/history`` after the channels were attributed and
    the first full sync ran) through the owning apps' services, in bulk."""
    rows: list[channel_services.HistoryAdd] = []
    codes: dict[str, int | None] = {}
    for userid, ext, state, createtime, status, status_time in history.get("follows", []):
        if state not in codes:
            code = channel_services.code_for_state(state)
            codes[state] = code.id if code is not None else None
        code_id = codes[state]
        if code_id is None:
            continue
        x = _fraction(userid, ext, createtime)
        rows.append(
            {
                "code_id": code_id,
                "userid": userid,
                "external_userid": ext,
                "added_at": _ts(createtime),
                "lost_at": _ts(status_time) if status and status_time else None,
                # most welcomes went out; a few codes had expired (the customer chatted first)
                "welcome": "sent" if x < 0.94 else ("failed" if x < 0.98 else ""),
            }
        )
    out = channel_services.import_history(rows)
    churn: list[tuple[str, str, str, datetime]] = []
    lost: list[tuple[str, str, str, datetime]] = []
    for userid, ext, status, status_time, _createtime in history.get("losses", []):
        at = _ts(status_time)
        if status == DELETED_BY_CUSTOMER:
            # WeCom still lists such a relation; the product knew it ended from the callback
            lost.append((ext, userid, "lost_by_customer", at))
            churn.append(("del_follow_user", ext, userid, at))
        elif status == DELETED_BY_EMPLOYEE:
            churn.append(("del_external_contact", ext, userid, at))
    out["relations_lost"] = customer_services.set_relation_statuses(lost, source="history")
    out["churn_alerts"] = transfer_services.import_churn_history(churn)
    if not channel_services.default_welcome_count():
        channel_services.save_default_welcome(DEFAULT_WELCOME, department_id=1)
        out["default_welcomes"] = 1
    return out


# --- group codes ----------------------------------------------------------------------------------
GROUP_CODES = (
    ("新品品鉴会群", 3, "欢迎加入金澜珠宝新品品鉴会，每周四晚8点新品首发!"),
    ("会员福利群", 2, "欢迎加入会员福利群，群内专享价不定期放送！"),
)


def ensure_group_codes() -> list[str]:
    """The demo's group QR codes over its busiest groups; returns the join ways (config ids) of
    those created now."""
    existing = {c.name for c in groupcode_selectors.group_codes()}
    busiest = group_selectors.chats().filter(status="active").order_by("-member_count", "id")
    chats = list(busiest.values_list("chat_id", flat=True))
    made: list[str] = []
    start = 0
    for name, n, welcome in GROUP_CODES:
        picked, start = chats[start : start + n], start + n
        if name in existing or not picked:
            continue
        code = groupcode_services.create_group_code(name, chat_ids=picked, room_base_name=name, welcome_text=welcome)
        if code.config_id:
            made.append(code.config_id)
    return made


# --- mass messages and Moments ---------------------------------------------------------------------
# (kind, name, text, audience: tag and department names for their ids). Audiences of a region or
# a tag keep the results sync short (one WeCom task per sending employee).
BROADCASTS: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    (
        "customer",
        "华东会员日预告",
        "亲爱的会员您好，12月12日会员日全场黄金工费5折，钻石会员加赠保养券！我是{员工姓名}，欢迎到店。",
        {"departments": ["华东大区"], "tags": ["金卡会员", "钻石会员", "银卡会员"], "tag_mode": "any"},
    ),
    (
        "customer",
        "婚嫁季钻戒专场",
        "婚嫁季钻石对戒专场，预约到店试戴享免费刻字。",
        {"departments": ["华南大区"], "tags": ["钻石对戒", "婚嫁系列"]},
    ),
    ("group", "社群周四新品首发", "本周四晚8点，古法金新品首发，群内专享9折!", {}),
    ("moment", "冬季新品·古法金手镯", "冬日暖金，古法手作。金澜珠宝冬季新品已到店。", {"departments": ["华东大区"]}),
    ("moment", "门店周年庆", "感恩一路相伴，门店周年庆满5000减500，到店还有惊喜礼。", {"departments": ["华南大区"]}),
)


def _tag_ids(names: Iterable[str]) -> list[int]:
    wanted = set(names)
    return [t.id for g in tag_selectors.tag_library(EVERYTHING) for t in g["tags"] if t.name in wanted]


def _audience(spec: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in spec.items() if k not in ("tags", "departments")}
    if spec.get("tags"):
        out["tags"] = _tag_ids(spec["tags"])
    if spec.get("departments"):
        wanted = set(spec["departments"])
        out["department_ids"] = [d.id for d in org_selectors.departments_for_scope(EVERYTHING) if d.name in wanted]
    return out


def start_broadcasts(user: User) -> list[int]:
    """Create and send the demo's mass messages and Moments through the broadcasts flow (planned,
    sent to WeCom in this process). Returns the ids of those still to be synced."""
    have = {b.name: b for b in broadcast_selectors.broadcasts_for(user, EVERYTHING)}
    ids = []
    for kind, name, text, audience in BROADCASTS:
        b = have.get(name)
        if b is None:
            aud = _audience(audience)
            b = broadcast_services.save_draft(
                kind=kind, name=name, text=text, attachments=[], audience=aud, scope=EVERYTHING, user=user
            )
            broadcast_services.submit(b)
            b.refresh_from_db()
            broadcast_services.Executor(b).run()
        if not b.synced_at or not (b.totals or {}).get("confirmed"):
            ids.append(b.id)
    return ids


def sync_broadcasts(ids: Iterable[int], user: User) -> dict[int, dict[str, int]]:
    """Read the demo broadcasts' results back from WeCom; returns their totals by id."""
    out = {}
    for bid in ids:
        b = broadcast_selectors.broadcast_for(user, EVERYTHING, bid)
        broadcast_services.sync(b)
        b.refresh_from_db()
        out[bid] = dict(b.totals or {})
    return out


# --- a finished 离职继承 ---------------------------------------------------------------------------
def record_departure(userid: str) -> None:
    """What the delete_user callback records (it may still wait in the inbox for the worker;
    applying it later changes nothing)."""
    org_services.resign_employee(userid)


def hand_over(leaver_userid: str) -> int | None:
    """Hand the departed guide's customers and groups to the colleagues of their store (once).
    Returns the handover's id, None when there is nothing to hand over."""
    record_departure(leaver_userid)
    emp = org_selectors.employee_by_userid(leaver_userid)
    if emp is None:
        return None
    done = transfer_selectors.handovers(EVERYTHING).filter(handover=emp).first()
    if done is not None:
        return int(done.id)
    customers = transfer_selectors.unassigned_of(emp, transfer_selectors.unassigned_from_wecom())
    chats = [g.chat_id for g in transfer_selectors.groups_of(emp)]
    store = emp.main_department_id
    takeovers = org_selectors.contact_member_ids([store], {emp.id}) if store else []
    if not (customers or chats) or not takeovers:
        return None
    p = transfer_services.plan("store", external_userids=customers, chat_ids=chats, takeovers=takeovers)
    h = transfer_services.create_handover("resigned", emp, p, strategy="store")
    transfer_services.submit(h)
    return int(h.id)


def poll_handovers() -> int:
    """Read the handovers' results from WeCom; returns how many customers still wait."""
    transfer_services.poll()
    return transfer_selectors.waiting_count(EVERYTHING) or 0


# --- the brand's mall (the emulator's simulated mall/POS) ------------------------------------------
MALL_TOKEN_NAME = "演示商城（模拟器）"


def mall_token(admin: User) -> str:
    """A fresh API token for the emulator's mall to push members, orders and events with; the
    previous demo start's mall tokens are revoked. The token is returned once, to be handed to the
    emulator: never print or log it."""
    for row in api_tokens().filter(name=MALL_TOKEN_NAME, revoked_at__isnull=True):
        account_services.revoke_api_token(row.id)
    _row, token = account_services.create_api_token(admin, MALL_TOKEN_NAME)
    return token


# --- the guides' library and tasks -------------------------------------------------------------------
DEMO_SCRIPTS = [
    ("开场问候", "上新", "{nickname}您好，我是{store}的{employee}，以后您的售后、保养和新品信息都可以找我。"),
    ("新品到店", "上新", "{nickname}，秋冬新品到店了，给您留了几款适合您的，这周方便来店里试戴吗？"),
    ("生日祝福", "关怀", "{nickname}，祝您生日快乐！您的生日礼已经准备好，到店出示会员码即可领取🎁"),
    ("保养提醒", "售后", "{nickname}，您的饰品佩戴快半年了，{store}提供免费清洗保养，随时欢迎来店。"),
    ("复购邀约", "复购", "{nickname}，上次您挑的款式有新的配套款到了，需要我发几张图给您看看吗？"),
]
DEMO_LINKS = [
    ("秋冬新品系列", "限时会员 9 折，到店再享清洗服务", "https://shop.example.com/autumn"),
    ("婚嫁对戒专场", "对戒刻字免费，预约到店试戴", "https://shop.example.com/wedding"),
    ("会员积分商城", "积分兑好礼，本月新增 20 款", "https://shop.example.com/points"),
]


def seed_guide_library(admin: User) -> dict[str, int]:
    """Scripts, link materials and task rules for the demo's guides (once: a second start adds
    nothing), and a campaign for the first guides' customers so the sidebar has tasks at once."""
    if material_selectors.scripts().exists():
        return {"scripts": 0, "materials": 0, "rules": 0, "tasks": 0}
    scripts = []
    for title, category, content in DEMO_SCRIPTS:
        cat = material_services.add_category("script", category).id
        scripts.append(
            material_services.save_script(
                material_services.ScriptInput(title=title, content=content, category_id=cat), operator=admin.username
            )
        )
    links = [
        material_services.save_material(
            material_services.MaterialInput(kind="link", title=t, description=d, url=u, tags=["活动"]),
            operator=admin.username,
        )
        for t, d, u in DEMO_LINKS
    ]
    specs: list[tuple[str, str, dict[str, Any], int | None, int | None]] = [
        ("browsed", "浏览未下单 24 小时跟进", {"hours": 24}, None, links[0].id),
        ("repurchase", "复购提醒", {"fraction": 0.83}, scripts[4].id, None),
        ("birthday", "生日前 3 天关怀", {"days_before": 3}, scripts[2].id, None),
        ("dormant", "90 天沉睡唤醒", {"days": 90}, None, links[0].id),
        ("newcomer", "新客第 1/3/7 天跟进", {"days": [1, 3, 7]}, scripts[0].id, None),
    ]
    for kind, name, params, script_id, material_id in specs:
        task_services.save_rule(
            task_services.RuleInput(kind=kind, name=name, params=params, script_id=script_id, material_id=material_id),
            operator=admin.username,
        )
    guides = list(org_selectors.contact_employees().filter(status=1).order_by("id").values_list("id", flat=True)[:3])
    customers = sorted(set(_followed_by(guides)))[:150]
    if customers:
        task_services.save_rule(
            task_services.RuleInput(
                kind="campaign",
                name="秋冬新品邀约",
                params={},
                material_id=links[0].id,
                customer_ids=customers,
                deadline=timezone.now() + timedelta(days=3),
            ),
            operator=admin.username,
        )
    attribution_services.save_rule("default", "", "1")  # commission: 1 %, rings and necklaces 3 %
    attribution_services.save_rule("category", "戒指", "3")
    attribution_services.save_rule("category", "项链", "3")
    made = task_services.generate()
    return {
        "scripts": len(scripts),
        "materials": len(links),
        "rules": len(task_selectors.rules(DataScope(everything=True))),
        "tasks": sum(made.values()),
    }


def _followed_by(employee_ids: list[int]) -> list[int]:
    """The customers the given employees follow now."""
    return list(
        customer_selectors.follow_relations()
        .filter(employee_id__in=employee_ids, status="active")
        .values_list("customer_id", flat=True)
    )
