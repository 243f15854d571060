"""The definition grammar: every problem reported with its path, in Chinese (the console's
language) and English; limits on depth and conditions."""

from __future__ import annotations

import pytest
from django.utils import translation

from siyu.segments.grammar import MAX_CONDITIONS, Cond, DefinitionError, Group, parse

FIELDS = {"note": "text", "height": "number", "anniv": "date", "size": "choice", "likes": "multi"}


def problems(definition) -> list[dict]:
    with pytest.raises(DefinitionError) as err:
        parse(definition, FIELDS)
    return err.value.problems


def test_the_documented_example_parses_into_a_tree():
    node = parse(
        {
            "op": "and",
            "items": [
                {"field": "tag", "op": "any", "value": [13, 12, 12]},
                {
                    "op": "or",
                    "items": [
                        {"field": "rfm_class", "op": "in", "value": ["important_value", "important_keep"]},
                        {"field": "bought", "op": "category", "value": ["戒指"], "days": 90},
                    ],
                },
                {"field": "event", "type": "coupon_claimed", "op": "gte", "value": 1, "days": 30, "not": True},
                {"field": "amount_spent", "op": "between", "value": [10, "99.99"]},
                {"field": "custom.likes", "op": "any", "value": ["红"]},
            ],
        },
        FIELDS,
    )
    assert isinstance(node, Group) and node.op == "and"
    tag, group, event, amount, custom = node.items
    assert tag == Cond(field="tag", op="any", value=(12, 13))
    assert isinstance(group, Group) and group.items[1].days == 90
    assert event.negate and event.type == "coupon_claimed" and event.days == 30
    assert amount.value == (1000, 9999)  # cents
    assert custom.custom_type == "multi"


@pytest.mark.parametrize(
    ("definition", "path"),
    [
        ("not an object", ""),
        ({"op": "xor", "items": []}, "op"),
        ({"op": "and", "items": {}}, "items"),
        ({"op": "and", "items": [{"field": "nope", "op": "in", "value": [1]}]}, "items.0.field"),
        ({"op": "and", "items": [{"field": "tag", "op": "in", "value": [1]}]}, "items.0.op"),
        ({"op": "and", "items": [{"field": "tag", "op": "any", "value": []}]}, "items.0.value"),
        ({"op": "and", "items": [{"field": "tag", "op": "any", "value": ["a"]}]}, "items.0.value.0"),
        ({"op": "and", "items": [{"field": "stage", "op": "in", "value": ["vip"]}]}, "items.0.value.0"),
        ({"op": "and", "items": [{"field": "rfm.r", "op": "in", "value": [6]}]}, "items.0.value.0"),
        ({"op": "and", "items": [{"field": "value_score", "op": "gte", "value": 101}]}, "items.0.value"),
        ({"op": "and", "items": [{"field": "order_count", "op": "between", "value": [5, 1]}]}, "items.0.value"),
        ({"op": "and", "items": [{"field": "amount_spent", "op": "gte", "value": -1}]}, "items.0.value"),
        (
            {"op": "and", "items": [{"field": "added_at", "op": "between", "value": ["2026-13-01", "2026-01-01"]}]},
            "items.0.value.0",
        ),
        (
            {"op": "and", "items": [{"field": "added_at", "op": "between", "value": ["0001-01-01", "2026-01-01"]}]},
            "items.0.value.0",
        ),
        ({"op": "and", "items": [{"field": "event", "op": "gte", "value": 1}]}, "items.0.type"),
        ({"op": "and", "items": [{"field": "event", "type": "Bad Type", "op": "gte", "value": 1}]}, "items.0.type"),
        ({"op": "and", "items": [{"field": "tag", "op": "any", "value": [1], "days": 3}]}, "items.0.days"),
        ({"op": "and", "items": [{"field": "bought", "op": "sku", "value": ["a"], "days": 0}]}, "items.0.days"),
        ({"op": "and", "items": [{"field": "tag", "op": "any", "value": [1], "not": "yes"}]}, "items.0.not"),
        ({"op": "and", "items": [{"field": "tag", "op": "any", "value": [1], "extra": 1}]}, "items.0"),
        ({"op": "and", "items": [{"field": "custom.nope", "op": "eq", "value": "x"}]}, "items.0.field"),
        ({"op": "and", "items": [{"field": "custom.height", "op": "contains", "value": "x"}]}, "items.0.op"),
        ({"op": "and", "items": [{"field": "channel", "op": "any", "value": ["a\x00b"]}]}, "items.0.value.0"),
        ({"op": "and", "items": [{"field": "relation", "op": "eq", "value": "gone"}]}, "items.0.value"),
    ],
)
def test_each_problem_names_its_path(definition, path):
    got = problems(definition)
    assert path in [p["path"] for p in got], got
    assert all(p["message"] for p in got)


def test_every_problem_is_listed_at_once():
    got = problems(
        {
            "op": "and",
            "items": [
                {"field": "tag", "op": "any", "value": []},
                {"field": "stage", "op": "in", "value": ["x"]},
                {"op": "or", "items": [{"field": "nope", "op": "in", "value": []}]},
            ],
        }
    )
    assert {p["path"] for p in got} == {"items.0.value", "items.1.value.0", "items.2.items.0.field"}


def test_depth_and_condition_limits():
    cond = {"field": "tag", "op": "any", "value": [1]}
    node: dict = {"op": "and", "items": [cond]}
    for _ in range(4):
        node = {"op": "or", "items": [node]}
    parse(node, FIELDS)  # 5 levels: fine
    deeper = {"op": "and", "items": [node]}
    assert any("5" in p["message"] for p in problems(deeper))
    parse({"op": "and", "items": [cond] * MAX_CONDITIONS}, FIELDS)
    assert any(
        str(MAX_CONDITIONS) in p["message"] for p in problems({"op": "and", "items": [cond] * (MAX_CONDITIONS + 1)})
    )


def test_messages_are_chinese_and_translated():
    definition = {"op": "and", "items": [{"field": "nope", "op": "in", "value": [1]}]}
    with translation.override("zh-hans"):
        zh = problems(definition)[0]["message"]
    with translation.override("en"):
        en = problems(definition)[0]["message"]
    assert "未知" in zh
    assert "Unknown" in en, en
