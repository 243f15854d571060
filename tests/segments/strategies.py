"""Hypothesis strategies: random segment definitions over a test world (every field and op of
the grammar, nested and/or/not)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import strategies as st

from tests.segments import world as W

DAY = W.NOW.date()


def _dates() -> st.SearchStrategy[list[str]]:
    return st.tuples(st.integers(0, 420), st.integers(0, 200)).map(
        lambda t: [(DAY - timedelta(days=t[0])).isoformat(), (DAY - timedelta(days=max(0, t[0] - t[1]))).isoformat()]
    )


def _range(low: int, high: int, ops: tuple[str, ...] = ("gte", "lte", "between")) -> st.SearchStrategy[Any]:
    return st.sampled_from(ops).flatmap(
        lambda op: st.tuples(
            st.just(op),
            st.tuples(st.integers(low, high), st.integers(low, high)).map(lambda t: sorted(t))
            if op == "between"
            else st.integers(low, high),
        )
    )


def _cond(w: W.World) -> st.SearchStrategy[dict[str, Any]]:
    ids = lambda pool, extra: st.lists(st.sampled_from(pool + extra), min_size=1, max_size=3)  # noqa: E731
    days = st.one_of(st.none(), st.sampled_from([1, 7, 30, 90, 200, 365]))

    def with_days(d: dict[str, Any], n: int | None) -> dict[str, Any]:
        if n is not None:
            d["days"] = n
        return d

    choices = [
        st.builds(
            lambda op, v: {"field": "tag", "op": op, "value": v},
            st.sampled_from(["any", "all", "none"]),
            ids(w.tags, [999999]),
        ),
        st.builds(
            lambda op, v: {"field": "employee", "op": op, "value": v},
            st.sampled_from(["any", "none"]),
            ids(w.employees, [999999]),
        ),
        st.builds(
            lambda op, v: {"field": "department", "op": op, "value": v},
            st.sampled_from(["any", "none"]),
            ids(w.departments, [999]),
        ),
        st.builds(
            lambda op, v: {"field": "channel", "op": op, "value": v},
            st.sampled_from(["any", "none"]),
            ids(["s1", "s2", "s3"], ["zz"]),
        ),
        st.builds(
            lambda op, v: {"field": "group", "op": op, "value": v},
            st.sampled_from(["any", "none"]),
            st.lists(st.sampled_from(w.groups), max_size=2),
        ),
        st.builds(lambda v: {"field": "relation", "op": "eq", "value": v}, st.sampled_from(["active", "lost", "none"])),
        st.one_of(
            st.builds(lambda v: {"field": "added_at", "op": "within_days", "value": v}, st.integers(0, 400)),
            st.builds(lambda v: {"field": "added_at", "op": "between", "value": v}, _dates()),
        ),
        st.builds(
            lambda f, v: {"field": f, "op": "in", "value": v}, st.just("profile.member_level"), ids(W.LEVELS[:2], ["x"])
        ),
        st.builds(lambda v: {"field": "profile.join_store", "op": "in", "value": v}, ids(W.STORES[:2], ["x"])),
        st.builds(lambda v: {"field": "profile.gender", "op": "in", "value": v}, ids([0, 1, 2], [])),
        _range(0, 1000).map(lambda t: {"field": "profile.points", "op": t[0], "value": t[1]}),
        st.one_of(
            st.builds(
                lambda v: {"field": "profile.birthday", "op": "birthday_within_days", "value": v}, st.integers(0, 30)
            ),
            st.builds(lambda v: {"field": "profile.birthday", "op": "is_set", "value": v}, st.booleans()),
            st.builds(lambda: {"field": "profile.birthday", "op": "between", "value": ["1985-01-01", "1995-12-31"]}),
            st.builds(lambda v: {"field": "profile.member_joined_at", "op": "between", "value": v}, _dates()),
            st.builds(lambda v: {"field": "profile.member_joined_at", "op": "is_set", "value": v}, st.booleans()),
        ),
        st.builds(lambda v: {"field": "rfm_class", "op": "in", "value": v}, ids([c for c in W.RFM if c], [])),
        st.builds(
            lambda f, v: {"field": f, "op": "in", "value": v},
            st.sampled_from(["rfm.r", "rfm.f", "rfm.m"]),
            ids([0, 1, 2, 3, 4, 5], []),
        ),
        st.builds(lambda v: {"field": "stage", "op": "in", "value": v}, ids(W.STAGES, [])),
        st.builds(lambda v: {"field": "value_band", "op": "in", "value": v}, ids(W.BANDS[:3], ["nope"])),
        _range(0, 100).map(lambda t: {"field": "value_score", "op": t[0], "value": t[1]}),
        st.builds(
            lambda op, v, n: with_days({"field": "bought", "op": op, "value": v}, n),
            st.sampled_from(["sku", "category", "brand"]),
            ids(W.SKUS + W.CATEGORIES + W.BRANDS, []),
            days,
        ),
        st.builds(lambda t, n: with_days({"field": "order_count", "op": t[0], "value": t[1]}, n), _range(0, 4), days),
        st.builds(
            lambda t, n: with_days({"field": "amount_spent", "op": t[0], "value": t[1]}, n), _range(0, 800), days
        ),
        st.one_of(
            st.builds(
                lambda op, v: {"field": "last_order_at", "op": op, "value": v},
                st.sampled_from(["within_days", "before_days"]),
                st.integers(0, 400),
            ),
            st.builds(lambda v: {"field": "last_order_at", "op": "between", "value": v}, _dates()),
        ),
        st.builds(
            lambda t, code, n: with_days({"field": "event", "type": code, "op": t[0], "value": t[1]}, n),
            _range(0, 3, ("gte", "lte", "eq")),
            st.sampled_from([*W.EVENT_CODES, "never_seen"]),
            days,
        ),
        st.one_of(
            st.builds(
                lambda op, v: {"field": "custom.note", "op": op, "value": v},
                st.sampled_from(["eq", "contains"]),
                st.sampled_from(["vip", "VIP 客户", "普通"]),
            ),
            st.builds(lambda v: {"field": "custom.note", "op": "is_set", "value": v}, st.booleans()),
            _range(140, 190).map(lambda t: {"field": "custom.height", "op": t[0], "value": t[1]}),
            st.builds(lambda v: {"field": "custom.anniv", "op": "within_days", "value": v}, st.integers(0, 60)),
            st.builds(lambda v: {"field": "custom.size", "op": "in", "value": v}, ids(W.SIZES, [])),
            st.builds(
                lambda op, v: {"field": "custom.likes", "op": op, "value": v},
                st.sampled_from(["any", "all", "none"]),
                ids(W.LIKES, []),
            ),
        ),
    ]
    return st.one_of(choices).flatmap(lambda d: st.booleans().map(lambda neg: {**d, "not": True} if neg else d))


def definitions(w: W.World) -> st.SearchStrategy[dict[str, Any]]:
    leaf = _cond(w)

    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.builds(
            lambda op, items, neg: {"op": op, "items": items, **({"not": True} if neg else {})},
            st.sampled_from(["and", "or"]),
            st.lists(children, min_size=0, max_size=3),
            st.booleans(),
        )

    tree = st.recursive(leaf, extend, max_leaves=6)
    return st.one_of(leaf, extend(tree))
