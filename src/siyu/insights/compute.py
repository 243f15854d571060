"""The metrics of many persons at once, with numpy: RFM scores and classes, lifecycle stage,
value score and band (the rules of docs/cdp.md, "Metrics").

Pure functions over arrays, no database: ``services`` reads the orders (commerce's selectors) and
the persons (profiles' selectors), calls ``compute`` and writes the rows. A full recompute derives
the scoring parameters (quintile cut points, average scores, percentile grids) from its own data
(``derive_params``); an incremental one reuses those of the last full run, so a person scores the
same whichever of the two computed them.

Definitions (also on the settings page):

- An order *counts* when it is paid or part-refunded and not refunded up to its whole amount; its
  amount is net of refunds. ``orders`` / ``amount``: counted orders paid within the window
  (``paid_at >= now - window_days``); ``orders_total`` / ``amount_total``: all time.
- Recency: whole days from the last counted order to ``now``.
- Scores 1–5 (0 without an order in the window). Quintile cut points ``c1..c4`` of each measure over
  the persons with an order in the window (numpy's linear interpolation), or the operator's
  thresholds. F and M: ``1 + #{c : c < value}`` (so ``value <= c1`` scores 1); R (fewer days is
  better): ``5 - #{c : c < days}`` (so ``days <= c1`` scores 5).
- Classes: a score is high when it is above (``>``) the average score of the scored persons.
- Stage, first match: lost (no order for ``lost_days``, or every WeCom relation lost) → dormant (no
  order for ``dormant_days``) → loyal (at least ``loyal_orders`` orders within ``loyal_days`` ending
  at the last order) → repeat (2+ orders in the window) → new (an order) → prospect.
- Value score (0–100): ``round(100 × (0.5·pM + 0.3·pF + 0.2·(1 - pR)))``, at least 1 for a scored
  person, 0 otherwise; ``pX`` is the mid-rank of the person's window amount, window orders and
  recency days among the 101 percentiles (0 %, 1 %, … 100 %) of the scored persons' values. Bands:
  the first band (highest ``min`` first) whose ``min`` the score reaches; none for a score of 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

DAY = 86_400
CLASS_KEYS = (
    # indexed by 4·R↑ + 2·F↑ + M↑
    "normal_retain",  # 000
    "important_retain",  # 001
    "normal_keep",  # 010
    "important_keep",  # 011
    "normal_develop",  # 100
    "important_develop",  # 101
    "normal_value",  # 110
    "important_value",  # 111
)
STAGE_KEYS = ("prospect", "new", "repeat", "loyal", "dormant", "lost")
PROSPECT, NEW, REPEAT, LOYAL, DORMANT, LOST = range(6)
WEIGHTS = {"m": 0.5, "f": 0.3, "r": 0.2}
GRID = np.linspace(0.0, 1.0, 101)

DEFAULT_BANDS: list[dict[str, Any]] = [
    {"key": "high", "label": "高价值", "min": 70},
    {"key": "medium", "label": "中价值", "min": 40},
    {"key": "low", "label": "低价值", "min": 1},
]


@dataclass(frozen=True)
class Rules:
    """The operator's settings, as the computation needs them."""

    window_days: int = 365
    scoring: str = "quantile"  # or "thresholds"
    thresholds: dict[str, list[float]] = field(default_factory=dict)  # r: days, f: orders, m: yuan
    loyal_orders: int = 4
    loyal_days: int = 30
    dormant_days: int = 180
    lost_days: int = 365
    bands: tuple[tuple[str, int], ...] = tuple((b["key"], b["min"]) for b in DEFAULT_BANDS)


@dataclass(frozen=True)
class Params:
    """What a full run learnt from its data, reused by the incremental runs after it."""

    cuts: dict[str, list[float]]  # r: days, f: orders, m: cents (4 each)
    averages: dict[str, float]  # average r, f, m score of the scored persons
    grids: dict[str, list[float]]  # 101 percentiles of recency days, window orders, window cents

    def to_json(self) -> dict[str, Any]:
        return {"cuts": self.cuts, "averages": self.averages, "grids": self.grids}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Params | None:
        try:
            return cls(
                cuts={k: [float(x) for x in data["cuts"][k]] for k in "rfm"},
                averages={k: float(data["averages"][k]) for k in "rfm"},
                grids={k: [float(x) for x in data["grids"][k]] for k in "rfm"},
            )
        except (KeyError, TypeError, ValueError):
            return None


@dataclass
class Result:
    """Per person (aligned with the ``persons`` given to ``compute``)."""

    orders: np.ndarray
    amount: np.ndarray  # cents
    orders_total: np.ndarray
    amount_total: np.ndarray  # cents
    first_ts: np.ndarray  # unix seconds, -1 for none
    last_ts: np.ndarray
    r: np.ndarray
    f: np.ndarray
    m: np.ndarray
    cls: np.ndarray  # index in CLASS_KEYS, -1 for none
    stage: np.ndarray  # index in STAGE_KEYS
    value: np.ndarray
    band: np.ndarray  # index in Rules.bands, -1 for none


@dataclass
class Aggregates:
    orders: np.ndarray
    amount: np.ndarray
    orders_total: np.ndarray
    amount_total: np.ndarray
    first_ts: np.ndarray
    last_ts: np.ndarray
    loyal_count: np.ndarray  # counted orders within loyal_days ending at the last one


def aggregate(n: int, idx: np.ndarray, ts: np.ndarray, cents: np.ndarray, now: float, rules: Rules) -> Aggregates:
    """Per-person sums over the counted orders: ``idx`` is each order's person index (0..n-1)."""
    since = now - rules.window_days * DAY
    inw = ts >= since
    orders_total = np.bincount(idx, minlength=n).astype(np.int64)
    amount_total = np.bincount(idx, weights=cents, minlength=n).round().astype(np.int64)
    orders = np.bincount(idx[inw], minlength=n).astype(np.int64)
    amount = np.bincount(idx[inw], weights=cents[inw], minlength=n).round().astype(np.int64)
    last = np.full(n, -1, dtype=np.int64)
    np.maximum.at(last, idx, ts)
    first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, idx, ts)
    first[orders_total == 0] = -1
    near = ts >= last[idx] - rules.loyal_days * DAY
    loyal_count = np.bincount(idx[near], minlength=n).astype(np.int64)
    return Aggregates(orders, amount, orders_total, amount_total, first, last, loyal_count)


def recency_days(last_ts: np.ndarray, now: float) -> np.ndarray:
    return np.floor((now - last_ts) / DAY).astype(np.int64)


def _score_up(values: np.ndarray, cuts: list[float]) -> np.ndarray:
    return 1 + np.searchsorted(np.asarray(cuts, dtype=np.float64), values, side="left")


def _score_down(values: np.ndarray, cuts: list[float]) -> np.ndarray:
    return 5 - np.searchsorted(np.asarray(cuts, dtype=np.float64), values, side="left")


def _mid_rank(values: np.ndarray, grid: list[float]) -> np.ndarray:
    g = np.asarray(grid, dtype=np.float64)
    lo = np.searchsorted(g, values, side="left")
    hi = np.searchsorted(g, values, side="right")
    return np.asarray((lo + hi) / (2.0 * len(g)))


def rule_cuts(rules: Rules) -> dict[str, list[float]] | None:
    """The operator's thresholds as cut points (M in cents), or None when scoring by quintiles."""
    if rules.scoring != "thresholds":
        return None
    t = rules.thresholds
    return {"r": [float(x) for x in t["r"]], "f": [float(x) for x in t["f"]], "m": [float(x) * 100 for x in t["m"]]}


def derive_params(agg: Aggregates, now: float, rules: Rules) -> Params:
    """Cut points, averages and grids from a full run's aggregates."""
    scored = agg.orders > 0
    rec = recency_days(agg.last_ts[scored], now).astype(np.float64)
    f = agg.orders[scored].astype(np.float64)
    m = agg.amount[scored].astype(np.float64)
    if not len(f):
        zeros = [0.0] * 4
        return Params(
            {"r": zeros, "f": zeros, "m": zeros}, {"r": 0.0, "f": 0.0, "m": 0.0}, {k: [0.0] * 101 for k in "rfm"}
        )
    q = [0.2, 0.4, 0.6, 0.8]
    cuts = rule_cuts(rules) or {
        "r": [float(x) for x in np.quantile(rec, q)],
        "f": [float(x) for x in np.quantile(f, q)],
        "m": [float(x) for x in np.quantile(m, q)],
    }
    averages = {
        "r": float(_score_down(rec, cuts["r"]).mean()),
        "f": float(_score_up(f, cuts["f"]).mean()),
        "m": float(_score_up(m, cuts["m"]).mean()),
    }
    grids = {
        "r": [float(x) for x in np.quantile(rec, GRID)],
        "f": [float(x) for x in np.quantile(f, GRID)],
        "m": [float(x) for x in np.quantile(m, GRID)],
    }
    return Params(cuts, averages, grids)


def score(agg: Aggregates, relation_lost: np.ndarray, now: float, rules: Rules, params: Params) -> Result:
    """Scores, classes, stages, values and bands of the persons of ``agg``."""
    n = len(agg.orders)
    scored = agg.orders > 0
    has_order = agg.orders_total > 0
    rec = np.where(has_order, recency_days(agg.last_ts, now), 0)
    cuts = rule_cuts(rules) or params.cuts
    r = np.where(scored, _score_down(rec.astype(np.float64), cuts["r"]), 0)
    f = np.where(scored, _score_up(agg.orders.astype(np.float64), cuts["f"]), 0)
    m = np.where(scored, _score_up(agg.amount.astype(np.float64), cuts["m"]), 0)
    av = params.averages
    cls = np.where(scored, 4 * (r > av["r"]) + 2 * (f > av["f"]) + (m > av["m"]), -1)

    stage = np.full(n, PROSPECT, dtype=np.int64)
    stage[has_order] = NEW
    stage[agg.orders >= 2] = REPEAT
    stage[has_order & (agg.loyal_count >= rules.loyal_orders)] = LOYAL
    stage[has_order & (rec >= rules.dormant_days)] = DORMANT
    stage[(has_order & (rec >= rules.lost_days)) | relation_lost] = LOST

    g = params.grids
    blend = (
        WEIGHTS["m"] * _mid_rank(agg.amount.astype(np.float64), g["m"])
        + WEIGHTS["f"] * _mid_rank(agg.orders.astype(np.float64), g["f"])
        + WEIGHTS["r"] * (1.0 - _mid_rank(rec.astype(np.float64), g["r"]))
    )
    value = np.where(scored, np.clip(np.floor(100.0 * blend + 0.5), 1, 100), 0).astype(np.int64)
    band = np.full(n, -1, dtype=np.int64)
    for i, (_key, low) in reversed(list(enumerate(rules.bands))):
        band[(value >= max(1, low))] = i
    return Result(
        agg.orders,
        agg.amount,
        agg.orders_total,
        agg.amount_total,
        agg.first_ts,
        agg.last_ts,
        r.astype(np.int64),
        f.astype(np.int64),
        m.astype(np.int64),
        cls.astype(np.int64),
        stage,
        value,
        band,
    )
