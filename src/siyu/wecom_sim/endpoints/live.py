"""A live world for the demo: customers add guides, leave, join groups and get new remarks.

``POST /sim/world/live {"enabled": true, "interval_s": 4}`` turns it on. Every ``interval_s`` on
average one event happens, through the same control actions a test would call, so the product
receives exactly the callbacks WeCom would send.
"""

from __future__ import annotations

import random
import time

from django.db import transaction

from siyu.wecom_sim import schemas
from siyu.wecom_sim.control import ACTIONS, ControlError, action, on_tick
from siyu.wecom_sim.models import ContactWay, Follow, GroupChat, GroupMember, SimState, User

_rng = random.Random()
_next_at = 0.0

# (weight, kind); "scan": a new customer scans one of the corp's channel codes (contact ways with a
# state), so the product's channel analytics and welcomes move live too
EVENTS = [(25, "add"), (20, "scan"), (12, "lose"), (18, "join"), (8, "leave"), (17, "edit")]
REMARKS = ["老客户", "喜欢新品", "会员日到店", "VIP", "生日本月", "已复购", "咨询过活动"]


def _settings() -> dict:
    row = SimState.objects.filter(key="live").first()
    return row.value if row else {"enabled": False, "interval_s": 4.0}


@action("world/live", schemas.WorldLive)
def world_live(body: dict) -> dict:
    cfg = _settings()
    if "enabled" in body:
        cfg["enabled"] = bool(body["enabled"])
    if "interval_s" in body:
        interval = float(body["interval_s"])
        if interval <= 0:
            raise ControlError("interval_s must be positive")
        cfg["interval_s"] = interval
    SimState.objects.update_or_create(key="live", defaults={"value": cfg})
    return {"live": cfg}


def _guides() -> list[str]:
    return list(User.objects.filter(contact_enabled=True, status=User.STATUS_ACTIVE).values_list("userid", flat=True))


def _random_follow() -> Follow | None:
    top = Follow.objects.order_by("-id").values_list("id", flat=True).first()
    if not top:
        return None
    return Follow.objects.filter(id__gte=_rng.randint(1, top), status=Follow.ACTIVE).order_by("id").first()


def happen(kind: str) -> dict:
    """One random event of ``kind``; returns what the control action answered."""
    if kind == "scan":
        rows = ContactWay.objects.filter(deleted=False, is_temp=False).order_by("created_at")
        ways = [cid for cid, cfg in rows.values_list("config_id", "config") if (cfg or {}).get("state")]
        if not ways:
            kind = "add"
        else:
            return ACTIONS["scan"]({"config_id": _rng.choice(ways)})
    if kind == "add":
        guides = _guides()
        return ACTIONS["add_friend"](
            {"userid": _rng.choice(guides), "add_way": _rng.choice([1, 1, 1, 3, 2, 4]), "by": "customer"}
        )
    f = _random_follow()
    if f is None:
        raise ControlError("empty world")
    if kind == "lose":
        return ACTIONS["delete"](
            {
                "userid": f.userid,
                "external_userid": f.external_userid,
                "by": _rng.choice(["customer", "customer", "employee"]),
            }
        )
    if kind == "edit":
        return ACTIONS["customer/edit"](
            {"userid": f.userid, "external_userid": f.external_userid, "remark": _rng.choice(REMARKS)}
        )
    chat = GroupChat.objects.filter(dismissed=False).order_by("?").first()
    if chat is None:
        raise ControlError("no groups")
    if kind == "join":
        if GroupMember.objects.filter(chat=chat, userid=f.external_userid).exists():
            raise ControlError("already a member")
        return ACTIONS["group/join"](
            {"chat_id": chat.chat_id, "external_userid": f.external_userid, "join_scene": _rng.choice([1, 2, 3])}
        )
    member = GroupMember.objects.filter(chat=chat, type=GroupMember.CUSTOMER).order_by("?").first()
    if member is None:
        raise ControlError("no customer in the group")
    return ACTIONS["group/leave"]({"chat_id": chat.chat_id, "userid": member.userid, "quit_scene": 0})


@on_tick
def live_tick(now: int) -> None:
    global _next_at
    cfg = _settings()
    if not cfg.get("enabled"):
        return
    t = time.time()
    if t < _next_at:
        return
    _next_at = t + _rng.expovariate(1.0 / float(cfg.get("interval_s", 4.0)))
    kinds, weights = zip(*((k, w) for w, k in EVENTS), strict=True)
    try:
        with transaction.atomic():  # a savepoint: a refused pick leaves nothing behind
            happen(_rng.choices(kinds, weights)[0])
    except ControlError:
        pass  # a random pick that does not apply (already a member, empty group): skip this beat
