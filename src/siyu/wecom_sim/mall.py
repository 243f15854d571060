"""The brand's other systems: its mall, POS and membership, simulated for the emulator's people.

Not WeCom. A brand that runs Siyu already has a membership system, store tills (POS), a WeChat
mini-program and an online mall; the product imports their members, orders and behaviour events
(``docs/cdp.md``). This module simulates them over the same people the emulator's WeCom corp
serves, so identity resolution has something real to join:

- **stores**: one per store department (its staff are the guides), code ``S<department id>``;
- **products**: the demo brand's catalogue (``CATALOGUE``: rings, necklaces, bangles, gold bars…);
- **members**: most WeCom customers are members, with the customer's unionid and phone; some
  members typed only a phone at the till (no unionid), some people are members who never added an
  employee, some WeCom customers are no members but buy in the mini-program by unionid and openid,
  a few phones are typed with a country code or dashes, and a few online orders (gifts) name their
  buyer's unionid with another member's phone: two persons with different unionids, an identity
  conflict for an operator;
- **orders** over twelve months: spend is Pareto-like (a heavy-tailed number of orders per buyer
  and a lognormal ticket), purchases repeat on a personal cycle, every cycle's day is drawn from a
  seasonal curve (春节, 情人节, 520, 618, 七夕, 双11, 双12 and weekends), some buyers are new and
  some stopped buying months ago; channels 门店 (with the store and the guide), 小程序 (often shared
  by a guide) and 商城; some refunds and part refunds;
- **events**: browse_product, add_to_cart, coupon_claimed, coupon_redeemed, link_clicked,
  store_visit and points_change around the orders, and browsing of people who never bought.

``generate()`` is deterministic: the same world and seed give the same rows, times relative to the
world's seeding time. ``live_step()`` adds new orders, refunds and events as time passes.
Amounts are in fen; ``endpoints.mall`` turns rows into the ingestion API's JSON and pushes them.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import itertools
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from siyu.wecom_sim import clock
from siyu.wecom_sim.models import (
    Department,
    ExternalContact,
    Follow,
    MallEvent,
    MallMember,
    MallOrder,
    MallProduct,
    MallStore,
    SimState,
    User,
)
from siyu.wecom_sim.world import DAY, _mobile, _person, _token, store_department_ids

TZ = ZoneInfo("Asia/Shanghai")
HISTORY_MONTHS = 12
SOURCE = "mall"  # the rows' ``source``: the sending system
CHANNELS = ("门店", "小程序", "商城")
LEVELS = ((0, "普通会员"), (5_000_00, "银卡会员"), (20_000_00, "金卡会员"), (50_000_00, "钻石会员"))

# The demo brand's catalogue: (category, brand line, [(sku suffix, name, price in yuan)]).
CATALOGUE: tuple[tuple[str, str, str, tuple[tuple[str, int], ...]], ...] = (
    (
        "RG",
        "戒指",
        "金澜",
        (
            ("足金素圈戒指", 1280),
            ("足金福字戒指", 1680),
            ("18K金碎钻戒指", 3999),
            ("18K金小方糖戒指", 2599),
            ("铂金钻石戒指30分", 9800),
            ("铂金钻石戒指1克拉", 36800),
        ),
    ),
    (
        "WD",
        "对戒",
        "金澜婚嫁",
        (("钻石对戒·相守", 7800), ("铂金对戒·一生", 6200), ("足金龙凤对戒", 4600), ("钻石对戒·臻爱", 15800)),
    ),
    (
        "NK",
        "项链",
        "金澜",
        (
            ("足金锁骨链", 1880),
            ("18K玫瑰金项链", 2380),
            ("钻石项链·星光", 5980),
            ("足金转运珠项链", 1380),
            ("18K金四叶草项链", 3280),
        ),
    ),
    (
        "BG",
        "手镯",
        "金澜古法",
        (
            ("古法金素面手镯", 12800),
            ("古法金福镯", 18600),
            ("古法金龙凤手镯", 26800),
            ("足金儿童手镯", 3600),
            ("翡翠手镯·冰种", 48000),
        ),
    ),
    (
        "ER",
        "耳饰",
        "澜珠",
        (("珍珠耳钉", 880), ("淡水珍珠耳环", 1280), ("钻石耳钉", 3280), ("足金耳线", 980)),
    ),
    (
        "PD",
        "吊坠",
        "金澜",
        (("生肖吊坠", 1580), ("足金平安扣", 2680), ("转运珠", 599), ("18K金钻石吊坠", 4280), ("足金长命锁", 2980)),
    ),
    ("BR", "手链", "金澜", (("足金串珠手链", 899), ("18K金手链", 2180), ("黄金小蛮腰手链", 1680), ("红绳转运珠", 399))),
    ("PL", "珍珠", "澜珠", (("海水珍珠项链", 6800), ("南洋金珠吊坠", 5280), ("淡水珍珠手链", 1180))),
    ("GB", "金条", "金澜投资金", (("投资金条10g", 6200), ("投资金条20g", 12300), ("生肖金条50g", 31200))),
)

# Shopping seasons: (name, month, day or None for a lunar date, days of the run-up, peak weight).
HOLIDAYS = (
    ("春节", None, None, 24, 2.2),
    ("情人节", 2, 14, 7, 2.6),
    ("520", 5, 20, 5, 2.0),
    ("618", 6, 18, 14, 3.5),
    ("七夕", None, None, 8, 2.8),
    ("双11", 11, 11, 14, 4.0),
    ("双12", 12, 12, 5, 1.4),
)
# lunar dates: 春节 (Chinese New Year) and 七夕 (7th day of the 7th lunar month)
LUNAR = {
    "春节": ("2023-01-22", "2024-02-10", "2025-01-29", "2026-02-17", "2027-02-06", "2028-01-26", "2029-02-13"),
    "七夕": ("2023-08-22", "2024-08-10", "2025-08-29", "2026-08-19", "2027-08-08", "2028-08-26", "2029-08-16"),
}
COUPONS = {
    "春节": ("新春足金立减200", 200),
    "情人节": ("情人节钻饰满3000减300", 300),
    "520": ("520告白季9折券", 0),
    "618": ("618年中庆满5000减600", 600),
    "七夕": ("七夕心意礼满2000减200", 200),
    "双11": ("双11狂欢满5000减500", 500),
    "双12": ("双12会员专享95折", 0),
}
CAMPAIGN_LINKS = (
    ("新品上市·古法金手镯", "https://m.jinlanjewelry.com/new/gufa"),
    ("会员日福利", "https://m.jinlanjewelry.com/member-day"),
    ("婚嫁系列预约到店", "https://m.jinlanjewelry.com/wedding"),
    ("金价每日播报", "https://m.jinlanjewelry.com/gold-price"),
)
# the share of members who send a gift to another member's phone (an identity conflict)
CONFLICT_SHARE = 0.003


@dataclass
class Person:
    """One buyer as the brand's systems know them."""

    member_no: str = ""
    unionid: str = ""  # "" when the systems never saw it (a till that took only a phone)
    openid: str = ""
    phone: str = ""  # as typed
    external_userid: str = ""
    follower: str = ""  # the guide who serves them on WeCom
    home_store: str = ""
    ticket: int = 0  # typical order in fen
    channels: tuple[float, float, float] = (0.6, 0.28, 0.12)  # 门店, 小程序, 商城
    buys: bool = False  # orders in the history


@dataclass
class World:
    """What the generator needs from the emulator's WeCom world."""

    anchor: int
    stores: list[MallStore]
    staff: dict[str, list[str]]  # store code → guides' userids (any status: history precedes leaving)
    store_of_user: dict[str, str]
    products: list[MallProduct]
    seed: int


# Rows as plain records while generating (tens of thousands: a Django model instance each would
# cost more than generating them); the fields are the models' (MallMember, MallOrder, MallEvent).
@dataclass(slots=True)
class Member:
    member_no: str
    joined_at: int
    external_userid: str = ""
    unionid: str = ""
    openid: str = ""
    phone: str = ""
    name: str = ""
    gender: str = ""
    level: str = ""
    points: int = 0
    birthday: str = ""
    join_store: str = ""


@dataclass(slots=True)
class Order:
    order_no: str
    keys: dict[str, str]
    channel: str
    paid_at: int
    amount: int
    store_code: str = ""
    guide_userid: str = ""
    discount: int = 0
    status: str = "paid"
    refunded_amount: int = 0
    items: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class Event:
    event_id: str
    keys: dict[str, str]
    type: str
    at: int
    props: dict[str, Any]


ID_FIELD = {"members": "member_no", "orders": "order_no", "events": "event_id"}


def record(cls: type[Any], obj: Any) -> Any:
    """The plain record of a stored row (``cls`` one of Member, Order, Event)."""
    return cls(**{name: getattr(obj, name) for name in cls.__dataclass_fields__})


@dataclass
class Plan:
    members: list[Member] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


# --- calendar -----------------------------------------------------------------------------------
def day_start(t: int) -> int:
    """The start of ``t``'s day in Asia/Shanghai (Unix seconds)."""
    return int(dt.datetime.fromtimestamp(t, TZ).replace(hour=0, minute=0, second=0, microsecond=0).timestamp())


def holiday_dates(start: int, end: int) -> list[tuple[str, int]]:
    """(name, Unix time of the day's start) of every shopping season's day in [start - 30 d, end]."""
    first = dt.datetime.fromtimestamp(start - 30 * DAY, TZ).year
    last = dt.datetime.fromtimestamp(end, TZ).year
    out = []
    for name, month, day, _run, _peak in HOLIDAYS:
        for year in range(first, last + 1):
            if month is None:
                day_s = next((d for d in LUNAR[name] if d.startswith(str(year))), None)
                if day_s is None:
                    continue
                date = dt.date.fromisoformat(day_s)
            else:
                date = dt.date(year, month, day or 1)
            t = int(dt.datetime(date.year, date.month, date.day, tzinfo=TZ).timestamp())
            if start - 30 * DAY <= t <= end:
                out.append((name, t))
    return sorted(out, key=lambda x: x[1])


class Season:
    """Daily weights of shopping over [start, end]: a base, weekends, and each season's run-up."""

    def __init__(self, start: int, end: int):
        self.start = day_start(start)
        self.days = max(1, (end - self.start) // DAY + 1)
        self.holidays = holiday_dates(start, end)
        runs = {name: (run, peak) for name, _m, _d, run, peak in HOLIDAYS}
        weights = []
        for i in range(self.days):
            t = self.start + i * DAY
            w = 1.0
            if dt.datetime.fromtimestamp(t, TZ).weekday() >= 5:
                w *= 1.35
            for name, h in self.holidays:
                run, peak = runs[name]
                before = (h - t) / DAY
                if 0 <= before <= run:
                    w += peak * (1 - before / (run + 1)) ** 1.5
            weights.append(w)
        self.weights = weights
        self.cum = list(itertools.accumulate(weights))

    def day_in(self, rng: random.Random, lo: int, hi: int) -> int:
        """A day's start in [lo, hi] (Unix seconds), drawn by the seasonal weights."""
        a = max(0, min(self.days - 1, (lo - self.start) // DAY))
        b = max(a, min(self.days - 1, (hi - self.start) // DAY))
        base = self.cum[a - 1] if a else 0.0
        x = base + rng.random() * (self.cum[b] - base)
        i = min(b, max(a, bisect.bisect_left(self.cum, x)))
        return self.start + i * DAY

    def season_of(self, t: int) -> str | None:
        """The shopping season whose run-up ``t`` falls in, if any."""
        runs = {name: run for name, _m, _d, run, _p in HOLIDAYS}
        for name, h in self.holidays:
            if 0 <= (h + DAY - t) / DAY <= runs[name] + 1:
                return name
        return None


# --- the world --------------------------------------------------------------------------------------
def _world_seed() -> tuple[int, int]:
    row = SimState.objects.filter(key="world").first()
    value = row.value if row else {}
    return int(value.get("seed", 1)), int(value.get("seeded_at") or clock.now())


def build_stores_and_products() -> tuple[list[MallStore], list[MallProduct]]:
    names = dict(Department.objects.values_list("id", "name"))
    stores = [MallStore(code=f"S{d:03d}", name=names[d], department_id=d) for d in store_department_ids()]
    if not stores:  # a world without stores: one flagship stands for HQ
        stores = [MallStore(code="S001", name=names.get(1, "旗舰店"), department_id=1)]
    products = []
    for code, category, brand, items in CATALOGUE:
        for k, (name, yuan) in enumerate(items, 1):
            products.append(
                MallProduct(sku=f"JL-{code}-{k:03d}", name=name, category=category, brand=brand, price=yuan * 100)
            )
    return stores, products


def load_world(seed: int | None = None) -> World:
    world_seed, anchor = _world_seed()
    stores = list(MallStore.objects.order_by("code"))
    products = list(MallProduct.objects.order_by("price", "sku"))
    by_dept = {s.department_id: s.code for s in stores}
    staff: dict[str, list[str]] = {s.code: [] for s in stores}
    store_of_user: dict[str, str] = {}
    for userid, depts, main in User.objects.order_by("userid").values_list("userid", "department", "main_department"):
        code = by_dept.get(main) or next((by_dept[d] for d in depts or [] if d in by_dept), "")
        if code:
            staff[code].append(userid)
            store_of_user[userid] = code
    fallback = [
        u for u in User.objects.filter(contact_enabled=True).order_by("userid").values_list("userid", flat=True)
    ]
    for code, users in staff.items():
        if not users:
            staff[code] = fallback[:5]
    return World(
        anchor=anchor,
        stores=stores,
        staff=staff,
        store_of_user=store_of_user,
        products=products,
        seed=world_seed if seed is None else seed,
    )


# --- generation -----------------------------------------------------------------------------------
class _Gen:
    def __init__(self, w: World, months: int):
        self.w = w
        self.rng = random.Random(f"mall:{w.seed}")
        # whole days up to the day the world was seeded: the same seed on the same day gives the
        # same history, to the second (live orders cover the day itself)
        day = day_start(w.anchor)
        self.end = day - 1
        self.start = day - round(months * 30.44) * DAY
        self.season = Season(self.start, self.end)
        self.prices = [p.price for p in w.products]
        self.plan = Plan()
        self.next_order = 1
        self.next_event = 1
        self.coupon_ids: dict[tuple[str, int], str] = {}

    def order_no(self) -> str:
        n, self.next_order = self.next_order, self.next_order + 1
        return f"JL{n:08d}"

    def event(self, keys: dict, type_: str, at: int, props: dict) -> None:
        n, self.next_event = self.next_event, self.next_event + 1
        self.plan.events.append(Event(event_id=f"EV{n:09d}", keys=dict(keys), type=type_, at=at, props=props))

    # people ------------------------------------------------------------------------------------------
    def people(self) -> list[Person]:
        rng = self.rng
        w = self.w
        first_follow: dict[str, str] = {}
        for userid, ext in Follow.objects.order_by("createtime", "id").values_list("userid", "external_userid"):
            first_follow.setdefault(ext, userid)
        codes = [s.code for s in w.stores]
        members: list[Member] = self.plan.members
        people: list[Person] = []
        seq = itertools.count(1)

        def member(p: Person, name: str, gender: int, joined: int) -> None:
            p.member_no = f"8{next(seq):09d}"
            phone = p.phone
            r = rng.random()
            if r < 0.04:  # typed with the country code and dashes at the till
                phone = f"+86 {phone[:3]}-{phone[3:7]}-{phone[7:]}"
            elif r < 0.07:
                phone = "86" + phone
            members.append(
                Member(
                    member_no=p.member_no,
                    external_userid=p.external_userid,
                    unionid=p.unionid,
                    openid=p.openid,
                    phone=phone,
                    name=name,
                    gender=str(gender or ""),
                    birthday=_birthday(rng),
                    join_store=p.home_store,
                    joined_at=joined,
                )
            )

        customers = ExternalContact.objects.order_by("external_userid").values_list(
            "external_userid", "type", "gender", "unionid", "mobile"
        )
        for ext, type_, gender, unionid, mobile in customers:
            follower = first_follow.get(ext, "")
            home = w.store_of_user.get(follower) or codes[rng.randrange(len(codes))]
            p = Person(
                external_userid=ext,
                follower=follower,
                home_store=home,
                phone=mobile or _mobile(rng),
                ticket=_ticket(rng),
            )
            r = rng.random()
            if r < 0.78:  # a member: the till knows the unionid for most (scanned the member QR code)
                if type_ == 1 and rng.random() < 0.85:
                    p.unionid = unionid
                    p.openid = "oMp" + _token(rng, 25)
                name = _person(rng, gender or None)[0]
                member(p, name, gender, self.start - int(rng.random() ** 2 * 900 * DAY))
                p.buys = rng.random() < 0.66
            elif type_ == 1 and unionid and r < 0.88:  # no member, buys in the mini-program
                p.unionid, p.openid = unionid, "oMp" + _token(rng, 25)
                p.channels = (0.0, 1.0, 0.0)
                p.buys = True
            else:
                p.buys = False
            people.append(p)
        # members who never added an employee (some use the mini-program: a unionid WeCom never saw)
        union_stem = "o" + _token(random.Random(f"u:{w.seed}"), 5)
        for _ in range(int(len(people) * 0.18)):
            home = codes[rng.randrange(len(codes))]
            p = Person(phone=_mobile(rng), home_store=home, ticket=_ticket(rng), channels=(0.75, 0.1, 0.15))
            if rng.random() < 0.55:
                p.unionid, p.openid = union_stem + _token(rng, 22), "oMp" + _token(rng, 25)
            name, _py, gender = _person(rng)
            member(p, name, gender, self.start - int(rng.random() ** 2 * 900 * DAY) + int(rng.random() * 300 * DAY))
            p.buys = rng.random() < 0.6
            people.append(p)
        return people

    def conflicts(self, people: list[Person]) -> None:
        """A few gifts: an order in the online mall paid by one member (their unionid) and delivered
        to another member's phone. The order's keys name two persons with different unionids."""
        rng = self.rng
        joined = [p for p in people if p.member_no and p.unionid and p.external_userid and p.phone]
        n = max(3, int(len(joined) * CONFLICT_SHARE)) if len(joined) >= 8 else 0
        picks = rng.sample(joined, min(len(joined), 2 * n))
        for k in range(len(picks) // 2):
            x, y = picks[2 * k], picks[2 * k + 1]
            t = self.season.day_in(rng, self.start, self.end) + rng.randrange(DAY)
            order = self.order(x, max(self.start, min(t, self.end)), "商城", refunds=False)
            order.keys = {"unionid": x.unionid, "phone": y.phone}

    # orders --------------------------------------------------------------------------------------------
    def orders_for(self, p: Person) -> None:
        rng = self.rng
        n = max(1, min(60, int(rng.paretovariate(1.3) * 1.7)))
        start, end = self.start, self.end
        r = rng.random()
        if r < 0.2:  # new this year
            start = end - int(rng.uniform(5, 150) * DAY)
        elif r < 0.45:  # stopped buying months ago
            end = end - int(rng.uniform(90, 300) * DAY)
        if end - start < 7 * DAY:
            start = end - 7 * DAY
        cycle = (end - start) / n
        for k in range(n):
            lo = int(start + k * cycle)
            day = self.season.day_in(rng, lo, int(lo + cycle))
            channel = CHANNELS[_pick(rng, p.channels)]
            if channel == "门店":
                t = day + int(rng.triangular(10, 22, 19.5) * 3600)
            else:
                t = day + int(rng.triangular(0, 24, 21) * 3600)
            self.order(p, max(self.start, min(t, self.end)), channel)

    def order(self, p: Person, t: int, channel: str, refunds: bool = True) -> Order:
        rng = self.rng
        w = self.w
        store, guide = "", ""
        if channel == "门店":
            store = p.home_store if rng.random() < 0.85 or not w.stores else w.stores[rng.randrange(len(w.stores))].code
            staff = w.staff.get(store) or [""]
            guide = p.follower if p.follower in staff and rng.random() < 0.8 else staff[rng.randrange(len(staff))]
        elif channel == "小程序" and p.follower and rng.random() < 0.4:  # shared by the guide
            guide, store = p.follower, w.store_of_user.get(p.follower, "")
        keys = _keys(p, channel, rng)
        lines = 1 if rng.random() < 0.75 else (2 if rng.random() < 0.8 else 3)
        items, gross = [], 0
        for _ in range(lines):
            target = p.ticket / lines * rng.lognormvariate(0, 0.35)
            i = min(len(self.prices) - 1, bisect.bisect_left(self.prices, target) + rng.randint(-2, 1))
            prod = w.products[max(0, i)]
            qty = 2 if rng.random() < 0.05 else 1
            items.append(
                {
                    "sku": prod.sku,
                    "name": prod.name,
                    "category": prod.category,
                    "brand": prod.brand,
                    "quantity": qty,
                    "price": prod.price,
                }
            )
            gross += prod.price * qty
        season = self.season.season_of(t)
        discount, coupon = 0, None
        if season and rng.random() < 0.7:
            coupon = COUPONS[season]
            discount = coupon[1] * 100 if coupon[1] and gross >= coupon[1] * 1000 else int(gross * 0.05) // 1000 * 1000
        elif p.member_no and rng.random() < 0.35:
            discount = int(gross * 0.02) // 100 * 100  # member price
        amount = gross - discount
        order = Order(
            order_no=self.order_no(),
            keys=keys,
            store_code=store,
            guide_userid=guide,
            channel=channel,
            paid_at=t,
            amount=amount,
            discount=discount,
            items=items,
        )
        if refunds:
            r = rng.random()
            if r < 0.035:
                order.status, order.refunded_amount = "refunded", amount
            elif r < 0.065:
                part = items[-1]["price"] if len(items) > 1 else amount * rng.choice((20, 30, 50)) // 100 // 100 * 100
                order.status, order.refunded_amount = "part_refunded", min(amount, part)
        self.plan.orders.append(order)
        self.order_events(p, order, season, coupon)
        return order

    def order_events(self, p: Person, order: Order, season: str | None, coupon: tuple[str, int] | None) -> None:
        rng = self.rng
        t = order.paid_at
        ev_keys = {k: v for k, v in order.keys.items() if k != "phone"}
        first = order.items[0]
        if order.channel == "门店":
            store = next((s for s in self.w.stores if s.code == order.store_code), None)
            self.event(
                ev_keys,
                "store_visit",
                t - rng.randint(300, 3600),
                {"store_code": order.store_code, "store": store.name if store else ""},
            )
        else:
            for _ in range(rng.randint(1, 3)):
                prod = self.w.products[rng.randrange(len(self.w.products))] if rng.random() < 0.4 else None
                sku, name = (prod.sku, prod.name) if prod else (first["sku"], first["name"])
                self.event(ev_keys, "browse_product", t - rng.randint(600, 3 * DAY), {"sku": sku, "name": name})
            self.event(ev_keys, "add_to_cart", t - rng.randint(60, 3600), {"sku": first["sku"], "quantity": 1})
        if coupon:
            key = (season or "", int(dt.datetime.fromtimestamp(t, TZ).year))
            cid = self.coupon_ids.setdefault(key, f"CP{key[1]}{len(self.coupon_ids) + 1:03d}")
            props = {"coupon_id": cid, "name": coupon[0]}
            self.event(ev_keys, "coupon_claimed", t - rng.randint(3600, 6 * DAY), props)
            self.event(ev_keys, "coupon_redeemed", t, {**props, "order_no": order.order_no})
        if p.member_no:
            mk = {"member_no": p.member_no}
            self.event(
                mk,
                "points_change",
                t + 60,
                {"delta": order.amount // 100, "reason": "消费", "order_no": order.order_no},
            )
            if order.refunded_amount:
                self.event(
                    mk,
                    "points_change",
                    t + rng.randint(1, 10) * DAY,
                    {"delta": -(order.refunded_amount // 100), "reason": "退款", "order_no": order.order_no},
                )

    def behaviour(self, p: Person) -> None:
        """Browsing and link clicks besides orders (prospects too)."""
        rng = self.rng
        if p.unionid and rng.random() < 0.4:
            keys = {"unionid": p.unionid, "openid": p.openid} if p.openid else {"unionid": p.unionid}
            for _ in range(rng.randint(1, 3)):
                prod = self.w.products[rng.randrange(len(self.w.products))]
                at = self.season.day_in(rng, self.start, self.end) + rng.randrange(DAY)
                self.event(keys, "browse_product", min(at, self.end), {"sku": prod.sku, "name": prod.name})
        if p.external_userid and rng.random() < 0.3:
            for _ in range(rng.randint(1, 3)):
                title, url = CAMPAIGN_LINKS[rng.randrange(len(CAMPAIGN_LINKS))]
                at = self.season.day_in(rng, self.start, self.end) + rng.randrange(DAY)
                props = {"url": url, "title": title, "by": p.follower}
                self.event({"external_userid": p.external_userid}, "link_clicked", min(at, self.end), props)

    def finish_members(self) -> None:
        """Levels and points from what each member spent (net of refunds)."""
        spent: dict[str, int] = {}
        for o in self.plan.orders:
            no = o.keys.get("member_no")
            if no:
                spent[no] = spent.get(no, 0) + o.amount - o.refunded_amount
        for m in self.plan.members:
            net = spent.get(m.member_no, 0)
            m.level = level_for(net)
            m.points = max(0, net // 100 - int(net // 100 * 0.3 * self.rng.random()))


def _keys(p: Person, channel: str, rng: random.Random) -> dict[str, str]:
    if channel == "小程序" and p.unionid:
        keys = {"unionid": p.unionid, "openid": p.openid}
        if p.member_no:
            keys["member_no"] = p.member_no
        return keys
    if p.member_no:
        keys = {"member_no": p.member_no}
        if rng.random() < 0.3:
            keys["phone"] = p.phone
        return keys
    if p.unionid:
        return {"unionid": p.unionid, "openid": p.openid}
    return {"phone": p.phone}


def _pick(rng: random.Random, weights: Iterable[float]) -> int:
    ws = list(weights)
    x = rng.random() * sum(ws)
    for i, wgt in enumerate(ws):
        x -= wgt
        if x < 0:
            return i
    return len(ws) - 1


def _ticket(rng: random.Random) -> int:
    """A person's typical order in fen: lognormal around ¥2,000 (jewellery)."""
    return int(rng.lognormvariate(math.log(2000), 0.75) * 100)


def _birthday(rng: random.Random) -> str:
    if rng.random() < 0.15:
        return ""
    return (dt.date(1965, 1, 1) + dt.timedelta(days=rng.randrange(38 * 365))).isoformat()


def level_for(net_fen: int) -> str:
    return [name for floor, name in LEVELS if net_fen >= floor][-1]


def generate(world: World, months: int = HISTORY_MONTHS) -> Plan:
    """The members, orders and events of ``months`` of history (deterministic for a world)."""
    g = _Gen(world, months)
    people = g.people()
    for p in people:
        if p.buys:
            g.orders_for(p)
        g.behaviour(p)
    g.conflicts(people)
    g.finish_members()
    g.plan.orders.sort(key=lambda o: (o.paid_at, o.order_no))
    g.plan.events.sort(key=lambda e: (e.at, e.event_id))
    return g.plan


def digest(plan: Plan, anchor: int) -> str:
    """A fingerprint of a plan, its times relative to ``anchor``'s day (equal for equal worlds
    seeded on the same day)."""
    anchor = day_start(anchor)
    h = hashlib.sha256()
    for m in plan.members:
        h.update(f"{m.member_no}|{m.unionid}|{m.phone}|{m.level}|{m.points}\n".encode())
    for o in plan.orders:
        h.update(f"{o.order_no}|{o.keys}|{o.paid_at - anchor}|{o.amount}|{o.status}|{o.refunded_amount}\n".encode())
    for e in plan.events:
        h.update(f"{e.event_id}|{e.type}|{e.at - anchor}\n".encode())
    return h.hexdigest()[:16]


# --- live ---------------------------------------------------------------------------------------------
def live_step(world: World, n_orders: int, now: int, rng: random.Random) -> Plan:
    """``n_orders`` new orders at about ``now`` (repeat buyers picked as often as they bought, new
    buyers and new members), their events, and now and then a refund of a recent order."""
    g = _Gen(world, 1)
    g.end = now
    g.season = Season(now - DAY, now + DAY)
    g.rng = rng
    last_order = MallOrder.objects.order_by("-order_no").values_list("order_no", flat=True).first()
    last_event = MallEvent.objects.order_by("-event_id").values_list("event_id", flat=True).first()
    g.next_order = int(last_order[2:]) + 1 if last_order else 1
    g.next_event = int(last_event[2:]) + 1 if last_event else 1
    top = MallOrder.objects.count()
    members: dict[str, Member] = {}
    for _ in range(n_orders):
        p = None
        r = rng.random()
        if r < 0.75 and top:
            prev = record(Order, MallOrder.objects.order_by("order_no")[rng.randrange(top)])
            p = _person_of(prev.keys, world, prev.amount, members)
        if p is None:
            found = MallMember.objects.order_by("?").first() if r < 0.95 else None
            m = None
            if found is not None:  # the record of this step, if it has one already (points added)
                m = members.get(found.member_no) or record(Member, found)
            if m is None:
                m = new_member(world, rng, now, members)
            members[m.member_no] = m
            p = _person_of({"member_no": m.member_no}, world, _ticket(rng), members)
        assert p is not None
        channel = CHANNELS[_pick(rng, p.channels)]
        order = g.order(p, now - rng.randrange(60), channel, refunds=False)
        if p.member_no and p.member_no in members:
            members[p.member_no].points += order.amount // 100
    # each member once (a batch names a row once), new ones with their first points
    g.plan.members = list(members.values())
    if rng.random() < 0.08 * max(1, n_orders):
        recent = [
            record(Order, o)
            for o in MallOrder.objects.filter(status="paid", paid_at__gte=now - 30 * DAY).order_by("-paid_at")[:50]
        ]
        if recent:
            o = recent[rng.randrange(len(recent))]
            if rng.random() < 0.5 or len(o.items) < 2:
                o.status, o.refunded_amount = "refunded", o.amount
            else:
                o.status, o.refunded_amount = "part_refunded", min(o.amount, o.items[-1]["price"])
            g.plan.orders.append(o)
            if o.keys.get("member_no"):
                props = {"delta": -(o.refunded_amount // 100), "reason": "退款", "order_no": o.order_no}
                g.event({"member_no": o.keys["member_no"]}, "points_change", now, props)
    return g.plan


def new_member(world: World, rng: random.Random, now: int, members: dict[str, Member]) -> Member:
    """A person joins at a store's till: a WeCom customer who was no member yet, or a stranger
    (``members``: this step's, not stored yet)."""
    last = MallMember.objects.order_by("-member_no").values_list("member_no", flat=True).first()
    no = str(max([int(last or 8_000_000_000), *(int(n) for n in members)]) + 1)
    taken = [*MallMember.objects.exclude(external_userid="").values_list("external_userid", flat=True)]
    taken += [m.external_userid for m in members.values() if m.external_userid]
    c = ExternalContact.objects.exclude(external_userid__in=taken).filter(type=1).order_by("?").first()
    store = world.stores[rng.randrange(len(world.stores))].code
    name, _py, gender = _person(rng)
    if c is not None:
        return Member(
            member_no=no,
            external_userid=c.external_userid,
            unionid=c.unionid,
            openid="oMp" + _token(rng, 25),
            phone=c.mobile,
            name=name,
            gender=str(c.gender or ""),
            level=LEVELS[0][1],
            join_store=store,
            joined_at=now,
            birthday=_birthday(rng),
        )
    return Member(
        member_no=no,
        phone=_mobile(rng),
        name=name,
        gender=str(gender),
        level=LEVELS[0][1],
        join_store=store,
        joined_at=now,
        birthday=_birthday(rng),
    )


def _person_of(keys: dict, world: World, ticket: int, members: dict[str, Member]) -> Person | None:
    no = keys.get("member_no", "")
    m = members.get(no)
    if m is None and no:
        found = MallMember.objects.filter(member_no=no).first()
        m = record(Member, found) if found is not None else None
    if m is not None:
        members[m.member_no] = m
        follower = ""
        if m.external_userid:
            follower = (
                Follow.objects.filter(external_userid=m.external_userid, status=Follow.ACTIVE)
                .order_by("createtime")
                .values_list("userid", flat=True)
                .first()
                or ""
            )
        return Person(
            member_no=m.member_no,
            unionid=m.unionid,
            openid=m.openid,
            phone=m.phone,
            external_userid=m.external_userid,
            follower=follower,
            home_store=m.join_store or world.stores[0].code,
            ticket=max(ticket, 39900),
        )
    if keys.get("unionid"):
        return Person(
            unionid=keys["unionid"],
            openid=keys.get("openid", ""),
            home_store=world.stores[0].code,
            ticket=max(ticket, 39900),
            channels=(0.0, 1.0, 0.0),
        )
    return None


def to_yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def as_row(kind: str, obj: Any) -> dict[str, Any]:
    """The ingestion API's row for a member, order or event (``docs/cdp.md``); the batch names the
    source (``SOURCE``)."""
    if kind == "members":
        row: dict[str, Any] = {"member_no": obj.member_no}
        for k in ("unionid", "openid", "phone", "name", "level", "birthday", "join_store"):
            if getattr(obj, k):
                row[k] = getattr(obj, k)
        if obj.gender:
            row["gender"] = int(obj.gender)
        row["points"] = obj.points
        row["joined_at"] = dt.datetime.fromtimestamp(obj.joined_at, TZ).isoformat()
        return row
    if kind == "orders":
        row = {"order_no": obj.order_no, **obj.keys}
        row.update(
            channel=obj.channel,
            paid_at=dt.datetime.fromtimestamp(obj.paid_at, TZ).isoformat(),
            amount=to_yuan(obj.amount),
            discount=to_yuan(obj.discount),
            status=obj.status,
            refunded_amount=to_yuan(obj.refunded_amount),
            items=[{**i, "price": to_yuan(i["price"])} for i in obj.items],
        )
        if obj.store_code:
            row["store_code"] = obj.store_code
        if obj.guide_userid:
            row["guide_userid"] = obj.guide_userid
        return row
    return {
        "event_id": obj.event_id,
        **obj.keys,
        "type": obj.type,
        "at": dt.datetime.fromtimestamp(obj.at, TZ).isoformat(),
        "props": obj.props,
    }
