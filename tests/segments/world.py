"""A random small world for the segment tests: org, WeCom customers with relations, tags and group
stays, profiles (some merged), custom fields, orders with items, events and metrics — written
straight to the tables (tests may), from one ``random.Random`` seed."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from siyu.commerce.models import Event, EventType, Order, OrderItem
from siyu.customers.models import Customer, FollowRelation, FollowTag, Tag, TagGroup
from siyu.groups.models import GroupChat, GroupMember
from siyu.insights.models import Metrics
from siyu.org.models import Department, Employee, EmployeeDepartment
from siyu.profiles.models import CustomField, Profile, ProfileKey

NOW = datetime(2026, 6, 15, 10, 30, 0, tzinfo=timezone.get_default_timezone())
STATES = ["s1", "s2", "s3", ""]
SKUS = ["A1", "A2", "B1"]
CATEGORIES = ["戒指", "项链", "耳饰"]
BRANDS = ["甲", "乙"]
EVENT_CODES = ["coupon_claimed", "store_visit", "quiz"]
LEVELS = ["gold", "silver", ""]
STORES = ["SH01", "BJ02", ""]
BANDS = ["high", "mid", "low", ""]
RFM = [
    "important_value",
    "important_develop",
    "important_keep",
    "important_retain",
    "normal_value",
    "normal_develop",
    "normal_keep",
    "normal_retain",
    "",
]
STAGES = ["prospect", "new", "repeat", "loyal", "dormant", "lost"]
CUSTOM = {"note": "text", "height": "number", "anniv": "date", "size": "choice", "likes": "multi"}
SIZES = ["S", "M", "L"]
LIKES = ["红", "蓝", "green"]


@dataclass
class World:
    tags: list[int] = field(default_factory=list)
    employees: list[int] = field(default_factory=list)
    departments: list[int] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)
    profiles: list[int] = field(default_factory=list)
    customers: list[int] = field(default_factory=list)
    employee_userids: dict[int, str] = field(default_factory=dict)


def _when(rng: random.Random, days: int = 400) -> datetime:
    return NOW - timedelta(seconds=rng.randrange(0, days * 86400)) + timedelta(microseconds=rng.choice([0, 500000]))


def build_org(w: World) -> None:
    for did, path, parent in ((1, "/1/", 0), (2, "/1/2/", 1), (3, "/1/3/", 1), (4, "/1/2/4/", 2)):
        Department.objects.create(id=did, name=f"部门{did}", path=path, parentid=parent, depth=path.count("/") - 2)
        w.departments.append(did)
    for i, did in enumerate((2, 3, 4, 1), start=1):
        e = Employee.objects.create(userid=f"emp{i}", name=f"员工{i}")
        EmployeeDepartment.objects.create(employee=e, department_id=did)
        w.employees.append(e.id)
        w.employee_userids[e.id] = e.userid
    g = TagGroup.objects.create(group_id="tg1", name="标签组")
    w.tags = [Tag.objects.create(tag_id=f"t{i}", group=g, name=f"标签{i}").id for i in range(5)]
    for code in EVENT_CODES:
        EventType.objects.get_or_create(code=code)
    for key, kind in CUSTOM.items():
        options = SIZES if kind == "choice" else LIKES if kind == "multi" else []
        CustomField.objects.get_or_create(key=key, defaults={"label": key, "type": kind, "options": options})
    for i in range(3):
        w.groups.append(GroupChat.objects.create(chat_id=f"chat{i}", name=f"群{i}", owner_id=w.employees[i]).id)


def _custom(rng: random.Random) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if rng.random() < 0.5:
        out["note"] = rng.choice(["VIP 客户", "vip", "", "普通"])
    if rng.random() < 0.5:
        out["height"] = rng.choice([150, 165.5, 170, 182])
    if rng.random() < 0.5:
        out["anniv"] = (NOW.date() - timedelta(days=rng.randrange(0, 60))).isoformat()
    if rng.random() < 0.5:
        out["size"] = rng.choice(SIZES)
    if rng.random() < 0.5:
        out["likes"] = rng.sample(LIKES, rng.randrange(0, 3))
    return out


def add_profiles(w: World, rng: random.Random, n: int) -> list[int]:
    made = []
    for _i in range(n):
        bday = None
        if rng.random() < 0.7:
            near = NOW.date().replace(year=1990) + timedelta(days=rng.randrange(-3, 20))
            other = date(1980 + rng.randrange(30), rng.randrange(1, 13), rng.randrange(1, 29))
            bday = rng.choice([date(1992, 2, 29), near, other])
        p = Profile.objects.create(
            name=f"客户{rng.randrange(10000)}",
            member_no=f"M{rng.randrange(10**8)}",
            gender=rng.choice([0, 1, 2]),
            birthday=bday,
            member_level=rng.choice(LEVELS),
            join_store=rng.choice(STORES),
            points=rng.choice([0, 10, 100, 500, 1000]),
            member_joined_at=_when(rng) if rng.random() < 0.6 else None,
            custom=_custom(rng),
        )
        made.append(p.id)
        if rng.random() < 0.75:
            add_customer(w, rng, p.id)
    w.profiles += made
    return made


def add_customer(w: World, rng: random.Random, profile_id: int) -> int:
    c = Customer.objects.create(external_userid=f"wm{rng.randrange(10**12)}", name="wx")
    ProfileKey.objects.create(profile_id=profile_id, kind="external_userid", value=c.external_userid, customer=c)
    w.customers.append(c.id)
    for emp in rng.sample(w.employees, rng.randrange(0, 3)):
        rel = FollowRelation.objects.create(
            customer=c,
            employee_id=emp,
            state=rng.choice(STATES),
            added_at=_when(rng),
            status=rng.choice(["active", "active", "lost_by_customer"]),
        )
        for t in rng.sample(w.tags, rng.randrange(0, 3)):
            FollowTag.objects.create(relation=rel, tag_id=t, customer=c, employee_id=emp)
    for g in rng.sample(w.groups, rng.randrange(0, 2)):
        GroupMember.objects.create(
            group_id=g,
            userid=c.external_userid,
            type=GroupMember.CUSTOMER,
            customer=c,
            left_at=_when(rng) if rng.random() < 0.3 else None,
        )
    return c.id


def merge_some(w: World, rng: random.Random, k: int) -> None:
    live = list(Profile.objects.filter(merged_into__isnull=True).order_by("id").values_list("id", flat=True))
    for _i in range(k):
        if len(live) < 3:
            return
        young = rng.choice(live[1:])
        old = rng.choice([p for p in live if p < young])
        Profile.objects.filter(merged_into_id=young).update(merged_into_id=old)
        Profile.objects.filter(id=young).update(merged_into_id=old, updated_at=timezone.now())
        live.remove(young)


def add_orders(w: World, rng: random.Random, n: int) -> None:
    types = dict(EventType.objects.values_list("code", "id"))
    for _i in range(n):
        pid = rng.choice(w.profiles)
        amount = Decimal(rng.randrange(0, 50000)) / 100
        status = rng.choice(["paid", "paid", "paid", "part_refunded", "refunded"])
        refunded = (
            Decimal(0)
            if status == "paid"
            else amount
            if status == "refunded"
            else (amount / 3).quantize(Decimal("0.01"))
        )
        paid_at = _when(rng)
        o = Order.objects.create(
            source="pos",
            order_no=f"SO{rng.randrange(10**12)}",
            profile_id=pid,
            paid_at=paid_at,
            amount=amount,
            refunded_amount=refunded,
            status=status,
        )
        for _j in range(rng.randrange(1, 3)):
            OrderItem.objects.create(
                order=o,
                profile_id=pid,
                paid_at=paid_at,
                sku=rng.choice(SKUS),
                category=rng.choice(CATEGORIES),
                brand=rng.choice(BRANDS),
            )
    for _i in range(n):
        Event.objects.create(
            source="app",
            event_id=f"E{rng.randrange(10**12)}",
            type_id=types[rng.choice(EVENT_CODES[:2] if rng.random() < 0.8 else EVENT_CODES)],
            profile_id=rng.choice(w.profiles),
            at=_when(rng, 100),
        )


def add_metrics(w: World, rng: random.Random) -> None:
    for pid in Profile.objects.filter(merged_into__isnull=True).values_list("id", flat=True):
        if rng.random() < 0.3:
            continue
        Metrics.objects.update_or_create(
            profile_id=pid,
            defaults={
                "r": rng.randrange(6),
                "f": rng.randrange(6),
                "m": rng.randrange(6),
                "rfm_class": rng.choice(RFM),
                "stage": rng.choice(STAGES),
                "value_score": rng.choice([0, 20, 50, 80, 100]),
                "value_band": rng.choice(BANDS),
                "computed_at": NOW,
            },
        )


def build(seed: int, persons: int = 30) -> World:
    rng = random.Random(seed)
    w = World()
    build_org(w)
    add_profiles(w, rng, persons)
    merge_some(w, rng, 4)
    add_orders(w, rng, persons * 2)
    add_metrics(w, rng)
    return w
