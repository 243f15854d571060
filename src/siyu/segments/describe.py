"""What the console shows about segment definitions: the builder's field catalog (every condition
of the grammar in docs/cdp.md, with its operators and the kind of value input each takes) and
``describe(definition, scope)``, a definition in readable Chinese that names tags, employees,
departments, channels and groups by name (never by id).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from siyu.commerce import selectors as commerce_selectors
from siyu.core import pickers
from siyu.insights import selectors as insight_selectors
from siyu.profiles import selectors as profile_selectors

# the picker source of each field whose values are picked by name
PICKER_SOURCES = {
    "tag": "tags",
    "employee": "employees",
    "department": "departments",
    "channel": "channels",
    "group": "groups",
}
INT_PICKERS = {"tag", "employee", "department", "group"}  # row ids; a channel is its code's state

OP_LABELS = {
    "any": gettext_lazy("包含任一"),
    "all": gettext_lazy("包含全部"),
    "none": gettext_lazy("不包含"),
    "in": gettext_lazy("属于"),
    "eq": gettext_lazy("等于"),
    "contains": gettext_lazy("包含文字"),
    "is_set": gettext_lazy("已填写"),
    "gte": gettext_lazy("至少"),
    "lte": gettext_lazy("至多"),
    "between": gettext_lazy("介于"),
    "within_days": gettext_lazy("最近几天内"),
    "before_days": gettext_lazy("早于几天前"),
    "birthday_within_days": gettext_lazy("几天内过生日"),
    "sku": gettext_lazy("商品编码"),
    "category": gettext_lazy("品类"),
    "brand": gettext_lazy("品牌"),
}


def _op(op: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {"op": op, "label": str(OP_LABELS[op]), "kind": kind, **extra}


def _numeric_ops(integer: bool = False) -> list[dict[str, Any]]:
    return [_op("gte", "number", int=integer), _op("lte", "number", int=integer), _op("between", "range", int=integer)]


def _custom_field(f: dict[str, Any]) -> dict[str, Any]:
    t = f["type"]
    options = [[o, o] for o in f["options"]]
    if t == "number":
        ops = _numeric_ops()
    elif t == "date":
        ops = [_op("between", "dates"), _op("within_days", "days"), _op("is_set", "none")]
    elif t == "choice":
        ops = [_op("in", "choices", options=options)]
    elif t == "multi":
        ops = [_op(o, "choices", options=options) for o in ("any", "all", "none")]
    else:
        ops = [_op("eq", "text"), _op("contains", "text"), _op("is_set", "none")]
    return {"label": f["label"], "ops": ops}


def catalog() -> dict[str, Any]:
    """The builder's fields, grouped, as JSON-ready data (names already translated)."""

    def scores() -> list[list[Any]]:
        return [[i, str(i)] for i in range(6)]

    rfm = [list(c) for c in insight_selectors.rfm_class_choices()]
    stages = [list(c) for c in insight_selectors.stage_choices()]
    bands = [list(c) for c in insight_selectors.value_band_choices()]
    genders = [list(c) for c in profile_selectors.gender_choices()]
    relation = [["active", _("有员工跟进")], ["lost", _("已全部流失")], ["none", _("无企业微信好友")]]
    fields: dict[str, dict[str, Any]] = {
        "tag": {"label": _("标签"), "ops": [_op(o, "picker") for o in ("any", "all", "none")]},
        "employee": {"label": _("跟进员工"), "ops": [_op(o, "picker") for o in ("any", "none")]},
        "department": {"label": _("员工部门"), "ops": [_op(o, "picker") for o in ("any", "none")]},
        "channel": {"label": _("来源渠道"), "ops": [_op(o, "picker") for o in ("any", "none")]},
        "group": {"label": _("客户群"), "ops": [_op(o, "picker") for o in ("any", "none")]},
        "relation": {"label": _("好友状态"), "ops": [_op("eq", "choice", options=relation)]},
        "added_at": {"label": _("添加时间"), "ops": [_op("between", "dates"), _op("within_days", "days")]},
        "profile.member_level": {"label": _("会员等级"), "ops": [_op("in", "texts")]},
        "profile.join_store": {"label": _("入会门店"), "ops": [_op("in", "texts")]},
        "profile.gender": {"label": _("性别"), "ops": [_op("in", "choices", options=genders)]},
        "profile.points": {"label": _("积分"), "ops": _numeric_ops(integer=True)},
        "profile.birthday": {
            "label": _("生日"),
            "ops": [_op("birthday_within_days", "days"), _op("between", "dates"), _op("is_set", "none")],
        },
        "profile.member_joined_at": {
            "label": _("入会时间"),
            "ops": [_op("between", "dates"), _op("is_set", "none")],
        },
        "rfm_class": {"label": _("RFM 分类"), "ops": [_op("in", "choices", options=rfm)]},
        "rfm.r": {"label": _("R 分（最近购买）"), "ops": [_op("in", "choices", options=scores())]},
        "rfm.f": {"label": _("F 分（购买频次）"), "ops": [_op("in", "choices", options=scores())]},
        "rfm.m": {"label": _("M 分（消费金额）"), "ops": [_op("in", "choices", options=scores())]},
        "stage": {"label": _("生命周期阶段"), "ops": [_op("in", "choices", options=stages)]},
        "value_band": {"label": _("价值分层"), "ops": [_op("in", "choices", options=bands)]},
        "value_score": {"label": _("价值分"), "ops": _numeric_ops(integer=True)},
        "bought": {"label": _("购买过"), "ops": [_op(o, "texts") for o in ("category", "brand", "sku")], "days": True},
        "order_count": {"label": _("订单数"), "ops": _numeric_ops(integer=True), "days": True},
        "amount_spent": {"label": _("消费金额（元）"), "ops": _numeric_ops(), "days": True},
        "last_order_at": {
            "label": _("最近下单"),
            "ops": [_op("within_days", "days"), _op("before_days", "days"), _op("between", "dates")],
        },
        "event": {
            "label": _("行为事件"),
            "ops": [_op("gte", "number", int=True), _op("lte", "number", int=True), _op("eq", "number", int=True)],
            "days": True,
            "event_types": [list(c) for c in commerce_selectors.event_type_choices()],
        },
    }
    for key, src in PICKER_SOURCES.items():
        fields[key]["source"] = src
        fields[key]["int"] = key in INT_PICKERS
    groups = [
        {
            "label": _("企业微信"),
            "fields": ["tag", "employee", "department", "channel", "group", "relation", "added_at"],
        },
        {
            "label": _("会员资料"),
            "fields": [
                "profile.member_level",
                "profile.join_store",
                "profile.gender",
                "profile.points",
                "profile.birthday",
                "profile.member_joined_at",
            ],
        },
        {
            "label": _("RFM 与价值"),
            "fields": ["rfm_class", "rfm.r", "rfm.f", "rfm.m", "stage", "value_band", "value_score"],
        },
        {"label": _("订单与行为"), "fields": ["bought", "order_count", "amount_spent", "last_order_at", "event"]},
    ]
    custom = profile_selectors.custom_field_list()
    if custom:
        for f in custom:
            fields[f"custom.{f['key']}"] = _custom_field(f)
        groups.append({"label": _("自定义字段"), "fields": [f"custom.{f['key']}" for f in custom]})
    return {"groups": groups, "fields": fields}


# --- describe -------------------------------------------------------------------------------------
def picker_values(definition: Any) -> dict[str, list[str]]:
    """Every picked value of a definition by picker source (to name them, or check their scope)."""
    out: dict[str, list[str]] = {}

    def walk(node: Any, depth: int = 0) -> None:
        if not isinstance(node, dict) or depth > 20:
            return
        if isinstance(node.get("items"), list):
            for child in node["items"]:
                walk(child, depth + 1)
            return
        src = PICKER_SOURCES.get(str(node.get("field")))
        if src and isinstance(node.get("value"), list):
            bucket = out.setdefault(src, [])
            bucket.extend(str(v) for v in node["value"] if str(v) not in bucket)

    walk(definition)
    return out


def picker_labels(definition: Any, scope: Any) -> dict[str, dict[str, pickers.Item]]:
    """{source: {value: Item}} for the values the viewer may see (the builder's chips, describe)."""
    out: dict[str, dict[str, pickers.Item]] = {}
    for src, values in picker_values(definition).items():
        valid = [v for v in values if pickers.source(src).value_re.match(v)]
        out[src] = pickers.source(src).resolve(valid, scope) if valid else {}
    return out


def _list(values: list[str]) -> str:
    return "、".join(values) if values else _("（未选择）")


class _Describer:
    def __init__(self, scope: Any, definition: Any) -> None:
        self.cat = catalog()
        self.names = picker_labels(definition, scope)
        self.event_types = dict(self.cat["fields"]["event"]["event_types"])

    def node(self, node: Any, top: bool = False) -> str:
        if not isinstance(node, dict):
            return _("（无效条件）")
        if isinstance(node.get("items"), list):
            parts = [self.node(c) for c in node["items"]]
            joiner = _(" 或 ") if node.get("op") == "or" else _(" 且 ")
            text = joiner.join(parts) if parts else _("全部客户")
            if not top and len(parts) > 1:
                text = f"（{text}）"
            if top and len(parts) > 1 and node.get("not"):
                text = f"（{text}）"
        else:
            text = self.condition(node)
        return _("非") + text if node.get("not") else text

    def condition(self, c: dict[str, Any]) -> str:
        field = str(c.get("field") or "")
        spec = self.cat["fields"].get(field)
        if spec is None:
            return _("（未知条件）")
        op = str(c.get("op") or "")
        ops = {o["op"]: o for o in spec["ops"]}
        o = ops.get(op)
        if o is None:
            return f"{spec['label']} {_('（未知运算）')}"
        value = self.value(field, spec, o, c.get("value"))
        text = f"{spec['label']} {o['label']} {value}".strip()
        if field == "event":
            code = str(c.get("type") or "")
            text = f"{self.event_types.get(code, code)} {o['label']} {value} {_('次')}"
        days = c.get("days")
        if spec.get("days") and isinstance(days, int) and not isinstance(days, bool):
            text = _("近 %(n)s 天") % {"n": days} + " " + text
        return text

    def value(self, field: str, spec: dict[str, Any], o: dict[str, Any], value: Any) -> str:
        kind = o["kind"]
        if kind == "picker":
            src = spec["source"]
            names = self.names.get(src, {})
            values = [str(v) for v in value] if isinstance(value, list) else []
            if field == "group" and not values:
                return _("任一客户群")
            return _list([names[v]["label"] if v in names else _("未知或无权查看") for v in values])
        if kind in ("choices", "choice"):
            labels = {str(k): str(v) for k, v in o.get("options", [])}
            values = [str(v) for v in value] if isinstance(value, list) else [str(value)]
            return _list([labels.get(v, v) for v in values])
        if kind == "texts":
            return _list([str(v) for v in value] if isinstance(value, list) else [str(value)])
        if kind == "range" or kind == "dates":
            lo, hi = [*value, None, None][:2] if isinstance(value, list) else (None, None)
            return _("%(lo)s 至 %(hi)s") % {"lo": lo if lo not in (None, "") else "…", "hi": hi if hi else "…"}
        if kind == "days":
            return _("%(n)s 天") % {"n": value}
        if kind == "none":
            return ""
        return str(value)


def describe(definition: Any, scope: Any) -> str:
    """The definition as one line of Chinese: names, never ids (a value out of the viewer's scope
    reads 未知或无权查看)."""
    if not isinstance(definition, dict) or not definition:
        return _("全部客户")
    return _Describer(scope, definition).node(definition, top=True)
