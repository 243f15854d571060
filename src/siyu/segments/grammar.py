"""The segment definition grammar (docs/cdp.md, "Segment definitions"): validation into a tree.

``parse(definition)`` checks a definition (JSON already decoded) and answers a tree of ``Group`` /
``Cond`` nodes with normalised values (dates as ``date``, amounts in cents, lists de-duplicated and
sorted), or raises ``DefinitionError`` listing every problem found with its path
(``items.1.value``). Messages are Chinese through gettext (the console's language).

The pydantic models ``GroupSchema`` / ``ConditionSchema`` describe the grammar in the OpenAPI
schema of the REST API; ``parse`` is the validator that counts (ops per field, value types, depth,
the number of conditions).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from pydantic import BaseModel, ConfigDict, Field

from siyu.profiles import selectors as profile_selectors

MAX_DEPTH = 5
MAX_CONDITIONS = 50
MAX_VALUES = 500
MAX_DAYS = 36500

RFM_CLASSES = (
    "important_value",
    "important_develop",
    "important_keep",
    "important_retain",
    "normal_value",
    "normal_develop",
    "normal_keep",
    "normal_retain",
)
STAGES = ("prospect", "new", "repeat", "loyal", "dormant", "lost")
RELATION_STATES = ("active", "lost", "none")
EVENT_CODE = re.compile(r"^[a-z0-9_]{1,32}$")
CUSTOM_KEY = re.compile(r"^[-a-zA-Z0-9_]{1,32}$")
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
DATE_MIN, DATE_MAX = date(1900, 1, 1), date(2100, 12, 31)

# field -> the ops it takes (custom.<key> by the field's type, below)
FIELD_OPS: dict[str, tuple[str, ...]] = {
    "tag": ("any", "all", "none"),
    "employee": ("any", "none"),
    "department": ("any", "none"),
    "channel": ("any", "none"),
    "group": ("any", "none"),
    "relation": ("eq",),
    "added_at": ("between", "within_days"),
    "profile.member_level": ("in",),
    "profile.join_store": ("in",),
    "profile.gender": ("in",),
    "profile.points": ("gte", "lte", "between"),
    "profile.birthday": ("between", "is_set", "birthday_within_days"),
    "profile.member_joined_at": ("between", "is_set"),
    "rfm_class": ("in",),
    "rfm.r": ("in",),
    "rfm.f": ("in",),
    "rfm.m": ("in",),
    "stage": ("in",),
    "value_band": ("in",),
    "value_score": ("gte", "lte", "between"),
    "bought": ("sku", "category", "brand"),
    "order_count": ("gte", "lte", "between"),
    "amount_spent": ("gte", "lte", "between"),
    "last_order_at": ("within_days", "before_days", "between"),
    "event": ("gte", "lte", "eq"),
}
CUSTOM_OPS: dict[str, tuple[str, ...]] = {
    "text": ("eq", "contains", "is_set"),
    "number": ("gte", "lte", "between"),
    "date": ("between", "within_days", "is_set"),
    "choice": ("in",),
    "multi": ("any", "all", "none"),
}
DAYS_FIELDS = ("bought", "order_count", "amount_spent", "event")


@dataclass(frozen=True)
class Cond:
    """One condition. ``value`` is normalised by field and op:

    - id lists / string lists: sorted tuples without duplicates
    - ``between``: a (low, high) tuple (dates, ints, cents)
    - ``within_days`` / ``before_days`` / ``birthday_within_days``: an int
    - ``is_set``: a bool
    - ``amount_spent``: cents (int); ``custom`` numbers: floats
    """

    field: str
    op: str
    value: Any
    negate: bool = False
    days: int | None = None
    type: str = ""  # event code
    custom_type: str = ""  # custom.<key>: the field's type


@dataclass(frozen=True)
class Group:
    op: Literal["and", "or"]
    items: tuple[Node, ...] = field(default_factory=tuple)
    negate: bool = False


Node = Group | Cond


class DefinitionError(ValidationError):
    """A definition the grammar refuses; ``problems`` = [{"path": "items.0.value", "message": ...}]."""

    def __init__(self, problems: list[dict[str, str]]):
        self.problems = problems
        super().__init__([f"{p['path'] or _('定义')}: {p['message']}" if p["path"] else p["message"] for p in problems])


# --- the OpenAPI description --------------------------------------------------------------------
class ConditionSchema(BaseModel):
    """A condition: ``field``, ``op``, ``value`` (and ``days`` / ``type`` where the field takes them).

    Fields and ops: tag any|all|none [tag ids]; employee any|none [employee ids]; department
    any|none [department ids, with their subtrees]; channel any|none [contact-way states]; group
    any|none [group chat ids] (``[]`` with any = in any group); relation eq active|lost|none;
    added_at between [from, to] | within_days N; profile.member_level / profile.join_store /
    profile.gender in [values]; profile.points gte|lte|between; profile.birthday between|is_set|
    birthday_within_days; profile.member_joined_at between|is_set; custom.<key> by the field's type
    (text eq|contains|is_set, number gte|lte|between, date between|within_days|is_set, choice in,
    multi any|all|none); rfm_class in [classes]; rfm.r / rfm.f / rfm.m in [0–5]; stage in [stages];
    value_band in [band keys]; value_score gte|lte|between (0–100); bought sku|category|brand
    [values] with optional days; order_count / amount_spent gte|lte|between with optional days;
    last_order_at within_days|before_days N | between [from, to]; event gte|lte|eq N with ``type``
    (event code) and optional days. Dates are ISO ``YYYY-MM-DD`` (Asia/Shanghai days, both ends
    included). Any node may carry ``"not": true``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    field: str = Field(description="tag, employee, ..., profile.points, custom.<key>, rfm_class, bought, event")
    op: str
    value: Any = None
    days: int | None = Field(default=None, ge=1, le=MAX_DAYS, description="in the last N days (absent = ever)")
    type: str | None = Field(default=None, description="event: the event type code")
    not_: bool = Field(default=False, alias="not")


class GroupSchema(BaseModel):
    """A group of nodes joined by ``and`` / ``or``; nested at most 5 deep, 50 conditions in all."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    op: Literal["and", "or"]
    items: list[GroupSchema | ConditionSchema] = Field(default_factory=list)
    not_: bool = Field(default=False, alias="not")


GroupSchema.model_rebuild()


# --- parsing ------------------------------------------------------------------------------------
class _Problems:
    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.items.append({"path": path, "message": message})


def _join(path: str, part: str | int) -> str:
    return f"{path}.{part}" if path else str(part)


def parse(definition: Any, custom_fields: dict[str, str] | None = None) -> Node:
    """Validate ``definition`` and answer its tree; raise ``DefinitionError`` with every problem.

    ``custom_fields`` maps the active custom-field keys to their types; read from profiles when not
    given (only when the definition has a ``custom.`` condition)."""
    problems = _Problems()
    state = {"conditions": 0, "custom": custom_fields}
    node = _node(definition, "", 1, problems, state)
    if state["conditions"] > MAX_CONDITIONS:  # type: ignore[operator]
        problems.add("", _("条件最多 %(n)d 个") % {"n": MAX_CONDITIONS})
    if problems.items or node is None:
        raise DefinitionError(problems.items or [{"path": "", "message": _("定义无效")}])
    return node


def _negate(raw: dict[str, Any], path: str, problems: _Problems) -> bool:
    value = raw.get("not", False)
    if not isinstance(value, bool):
        problems.add(_join(path, "not"), _("必须是 true 或 false"))
        return False
    return value


def _node(raw: Any, path: str, depth: int, problems: _Problems, state: dict[str, Any]) -> Node | None:
    if not isinstance(raw, dict):
        problems.add(path, _("应为对象（条件或条件组）"))
        return None
    if "items" in raw or (raw.get("op") in ("and", "or") and "field" not in raw):
        return _group(raw, path, depth, problems, state)
    return _cond(raw, path, problems, state)


def _group(raw: dict[str, Any], path: str, depth: int, problems: _Problems, state: dict[str, Any]) -> Group | None:
    if depth > MAX_DEPTH:
        problems.add(path, _("条件组最多嵌套 %(n)d 层") % {"n": MAX_DEPTH})
        return None
    unknown = set(raw) - {"op", "items", "not"}
    if unknown:
        problems.add(path, _("未知的键：%(keys)s") % {"keys": ", ".join(sorted(map(str, unknown)))})
    op = raw.get("op")
    if op not in ("and", "or"):
        problems.add(_join(path, "op"), _("条件组的 op 必须是 and 或 or"))
    items = raw.get("items", [])
    if not isinstance(items, list):
        problems.add(_join(path, "items"), _("应为列表"))
        items = []
    nodes = [_node(item, _join(_join(path, "items"), i), depth + 1, problems, state) for i, item in enumerate(items)]
    negate = _negate(raw, path, problems)
    if op not in ("and", "or") or any(n is None for n in nodes):
        return None
    return Group(op=op, items=tuple(n for n in nodes if n is not None), negate=negate)


def _cond(raw: dict[str, Any], path: str, problems: _Problems, state: dict[str, Any]) -> Cond | None:  # noqa: C901
    state["conditions"] += 1
    before = len(problems.items)
    unknown = set(raw) - {"field", "op", "value", "days", "type", "not"}
    if unknown:
        problems.add(path, _("未知的键：%(keys)s") % {"keys": ", ".join(sorted(map(str, unknown)))})
    name = raw.get("field")
    op = raw.get("op")
    negate = _negate(raw, path, problems)
    custom_type = ""
    if not isinstance(name, str) or not name:
        problems.add(_join(path, "field"), _("缺少条件字段"))
        return None
    if name.startswith("custom."):
        key = name[len("custom.") :]
        fields = state["custom"]
        if fields is None:
            fields = state["custom"] = dict(profile_selectors.custom_field_types())
        if not CUSTOM_KEY.match(key) or key not in fields:
            problems.add(_join(path, "field"), _("没有这个自定义字段：%(key)s") % {"key": key})
            return None
        custom_type = fields[key]
        ops = CUSTOM_OPS.get(custom_type, ())
    elif name in FIELD_OPS:
        ops = FIELD_OPS[name]
    else:
        problems.add(_join(path, "field"), _("未知的条件字段：%(field)s") % {"field": name})
        return None
    if op not in ops:
        problems.add(
            _join(path, "op"),
            _("字段 %(field)s 的运算只能是：%(ops)s") % {"field": name, "ops": ", ".join(ops)},
        )
        return None
    days = None
    if "days" in raw and raw["days"] is not None:
        if name not in DAYS_FIELDS:
            problems.add(_join(path, "days"), _("该字段不支持 days"))
        else:
            days = _int(raw["days"], _join(path, "days"), problems, low=1, high=MAX_DAYS)
    etype = ""
    if name == "event":
        etype = raw.get("type") or ""
        if not isinstance(etype, str) or not EVENT_CODE.match(etype):
            problems.add(_join(path, "type"), _("事件类型应为 1–32 位小写字母、数字或下划线"))
    elif raw.get("type") is not None:
        problems.add(_join(path, "type"), _("只有 event 条件有 type"))
    value = _value(name, custom_type, op, raw.get("value"), _join(path, "value"), problems)
    if len(problems.items) > before:
        return None
    return Cond(field=name, op=op, value=value, negate=negate, days=days, type=etype, custom_type=custom_type)


# --- values ---------------------------------------------------------------------------------------
def _int(raw: Any, path: str, problems: _Problems, *, low: int = 0, high: int | None = None) -> int | None:
    if isinstance(raw, bool) or not isinstance(raw, int):
        if isinstance(raw, float) and raw.is_integer():
            raw = int(raw)
        else:
            problems.add(path, _("应为整数"))
            return None
    if raw < low or (high is not None and raw > high):
        if high is None:
            problems.add(path, _("应不小于 %(low)d") % {"low": low})
        else:
            problems.add(path, _("应在 %(low)d 到 %(high)d 之间") % {"low": low, "high": high})
        return None
    return raw


def _date(raw: Any, path: str, problems: _Problems) -> date | None:
    if isinstance(raw, str) and len(raw) == 10:
        try:
            d = date.fromisoformat(raw)
        except ValueError:
            pass
        else:
            if DATE_MIN <= d <= DATE_MAX:
                return d
            problems.add(path, _("日期应在 1900-01-01 到 2100-12-31 之间"))
            return None
    problems.add(path, _("应为日期 YYYY-MM-DD"))
    return None


def _cents(raw: Any, path: str, problems: _Problems) -> int | None:
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        problems.add(path, _("应为金额（元）"))
        return None
    try:
        amount = Decimal(str(raw))
    except InvalidOperation:
        problems.add(path, _("应为金额（元）"))
        return None
    if not amount.is_finite() or amount < 0 or amount > Decimal("1e12"):
        problems.add(path, _("金额应在 0 到 1,000,000,000,000 元之间"))
        return None
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _number(raw: Any, path: str, problems: _Problems) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw != raw or abs(raw) > 1e15:
        problems.add(path, _("应为数字"))
        return None
    return float(raw)


def _list(
    raw: Any, path: str, problems: _Problems, item: Callable[[Any], Any], *, empty: bool = False, what: str = ""
) -> tuple[Any, ...] | None:
    if not isinstance(raw, list):
        problems.add(path, _("应为列表"))
        return None
    if not raw and not empty:
        problems.add(path, _("至少选择一项"))
        return None
    if len(raw) > MAX_VALUES:
        problems.add(path, _("最多 %(n)d 项") % {"n": MAX_VALUES})
        return None
    out = []
    for i, v in enumerate(raw):
        got = item(v)
        if got is None:
            problems.add(_join(path, i), what or _("值无效"))
            return None
        out.append(got)
    return tuple(sorted(set(out)))


def _id(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and 0 < v < 2**63 else None


def _text(v: Any) -> str | None:
    return v if isinstance(v, str) and 0 < len(v) <= 128 and not CONTROL_CHARS.search(v) else None


def _between(raw: Any, path: str, problems: _Problems, item: Callable[[Any, str, _Problems], Any]) -> Any:
    if not isinstance(raw, list) or len(raw) != 2:
        problems.add(path, _("应为 [起, 止] 两个值"))
        return None
    low, high = item(raw[0], _join(path, 0), problems), item(raw[1], _join(path, 1), problems)
    if low is None or high is None:
        return None
    if low > high:
        problems.add(path, _("起始值不能大于结束值"))
        return None
    return (low, high)


def _range(op: str, raw: Any, path: str, problems: _Problems, item: Callable[[Any, str, _Problems], Any]) -> Any:
    """gte / lte / between of numbers (``item`` parses one)."""
    if op == "between":
        return _between(raw, path, problems, item)
    return item(raw, path, problems)


def _bounded(low: int, high: int | None) -> Callable[[Any, str, _Problems], Any]:
    def parse_one(raw: Any, path: str, problems: _Problems) -> Any:
        return _int(raw, path, problems, low=low, high=high)

    return parse_one


def _is_set(raw: Any, path: str, problems: _Problems) -> bool | None:
    if raw is None:
        return True
    if not isinstance(raw, bool):
        problems.add(path, _("必须是 true 或 false"))
        return None
    return raw


def _choices(raw: Any, path: str, problems: _Problems, allowed: Iterable[Any]) -> tuple[Any, ...] | None:
    allowed = set(allowed)
    return _list(raw, path, problems, lambda v: v if v in allowed else None, what=_("不是可选的值"))


def _value(name: str, custom_type: str, op: str, raw: Any, path: str, problems: _Problems) -> Any:  # noqa: C901
    if name in ("tag", "employee", "department"):
        return _list(raw, path, problems, _id, what=_("应为 ID（正整数）"))
    if name == "group":
        return _list(raw, path, problems, _id, empty=True, what=_("应为 ID（正整数）"))
    if name == "channel" or name in ("profile.member_level", "profile.join_store", "value_band", "bought"):
        return _list(raw, path, problems, _text, what=_("应为 1–128 字的文本"))
    if name == "relation":
        if raw not in RELATION_STATES:
            problems.add(path, _("应为 active、lost 或 none"))
            return None
        return raw
    if name == "profile.gender":
        return _choices(raw, path, problems, (0, 1, 2))
    if name == "rfm_class":
        return _choices(raw, path, problems, RFM_CLASSES)
    if name in ("rfm.r", "rfm.f", "rfm.m"):
        return _choices(raw, path, problems, range(6))
    if name == "stage":
        return _choices(raw, path, problems, STAGES)
    if name == "profile.points":
        return _range(op, raw, path, problems, _bounded(-(2**62), 2**62))
    if name == "value_score":
        return _range(op, raw, path, problems, _bounded(0, 100))
    if name in ("order_count", "event"):
        return _range(op, raw, path, problems, _bounded(0, 10**9))
    if name == "amount_spent":
        return _range(op, raw, path, problems, _cents)
    if op in ("within_days", "before_days"):
        return _int(raw, path, problems, low=0, high=MAX_DAYS)
    if op == "birthday_within_days":
        return _int(raw, path, problems, low=0, high=366)
    if op == "is_set":
        return _is_set(raw, path, problems)
    if op == "between" and (name in ("added_at", "last_order_at", "profile.birthday", "profile.member_joined_at")):
        return _between(raw, path, problems, _date)
    if custom_type:
        return _custom_value(custom_type, op, raw, path, problems)
    problems.add(path, _("值无效"))  # pragma: no cover - every field is handled above
    return None


def _custom_value(custom_type: str, op: str, raw: Any, path: str, problems: _Problems) -> Any:
    if custom_type == "text":
        if not isinstance(raw, str) or not raw or len(raw) > 255 or CONTROL_CHARS.search(raw):
            problems.add(path, _("应为 1–255 字的文本"))
            return None
        return raw
    if custom_type == "number":
        return _range(op, raw, path, problems, _number)
    if custom_type == "date":
        return _between(raw, path, problems, _date)
    # choice / multi
    return _list(raw, path, problems, _text, what=_("应为 1–128 字的文本"))


def conditions(node: Node) -> Iterable[Cond]:
    """Every condition of a tree, depth first."""
    if isinstance(node, Cond):
        yield node
    else:
        for item in node.items:
            yield from conditions(item)


def schema_example() -> dict[str, Any]:
    return {
        "op": "and",
        "items": [
            {"field": "tag", "op": "any", "value": [12, 13]},
            {
                "op": "or",
                "items": [
                    {"field": "rfm_class", "op": "in", "value": ["important_value", "important_keep"]},
                    {"field": "bought", "op": "category", "value": ["戒指"], "days": 90},
                ],
            },
            {"field": "event", "type": "coupon_claimed", "op": "gte", "value": 1, "days": 30, "not": True},
        ],
    }
