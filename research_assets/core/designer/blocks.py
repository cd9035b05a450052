"""The offline designer's building blocks: the choices on offer, the context of one design,
indicators with their fuzzy sets and network inputs."""

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from research_assets.core.design_steering import Steer
from research_assets.core.design_steering import round_sig as _round
from research_assets.core.designer.brief import _Brief
from research_assets.core.designer.volatility import bar_sigma, dataset_sigma, macd_line_scale
from research_assets.core.indicator_catalog import CATALOG

if TYPE_CHECKING:
    from research_assets.core.data import DatasetInfo

MAX_SYMBOLS = 4

HIDDEN_LAYERS = ([16], [32], [32, 16], [64, 32])
DROPOUTS = (0.0, 0.1, 0.2, 0.3)
LEARNING_RATES = (0.0003, 0.001, 0.003)
EPOCHS = (20, 30, 40, 60)

# Parameter choices per indicator; one tuple is one choice.
_PERIODS: dict[str, tuple[dict[str, float], ...]] = {
    "rsi": tuple({"period": p} for p in (7, 14, 21, 28)),
    "stoch": tuple(
        {"fastk_period": p, "slowk_period": 3, "slowd_period": 3} for p in (5, 9, 14, 21)
    ),
    "willr": tuple({"period": p} for p in (7, 14, 21)),
    "cci": tuple({"period": p} for p in (14, 20, 40)),
    "mfi": tuple({"period": p} for p in (7, 14, 21)),
    "adx": tuple({"period": p} for p in (7, 14, 28)),
    "atr": tuple({"period": p} for p in (7, 14, 28)),
    "roc": tuple({"period": p} for p in (5, 10, 20)),
    "sma": tuple({"period": p} for p in (10, 20, 50, 100, 200)),
    "ema": tuple({"period": p} for p in (10, 20, 50, 100)),
    "macd": (
        {"fast_period": 12, "slow_period": 26, "signal_period": 9},
        {"fast_period": 8, "slow_period": 17, "signal_period": 9},
        {"fast_period": 5, "slow_period": 35, "signal_period": 5},
        {"fast_period": 19, "slow_period": 39, "signal_period": 9},
    ),
    "bbands": tuple({"period": p, "nbdev": n} for p in (10, 20, 40) for n in (1.5, 2.0, 2.5)),
}
# Outputs a fuzzy set may read, per indicator (the first is the usual one). MACD reads its line,
# never the histogram alone (see the module docstring).
_OUTPUTS = {"macd": ("macd",), "bbands": ("percent_b", "width"), "stoch": ("k", "d")}
_LABELS = {
    2: ("low", "high"),
    3: ("low", "mid", "high"),
    4: ("very_low", "low", "high", "very_high"),
    5: ("very_low", "low", "mid", "high", "very_high"),
    6: ("very_low", "low", "mid_low", "mid_high", "high", "very_high"),
    7: ("extreme_low", "very_low", "low", "mid", "high", "very_high", "extreme_high"),
}


@dataclass
class _Context:
    rng: random.Random
    by_timeframe: dict[str, list[str]]  # available symbols per timeframe
    steer: Steer
    brief: _Brief
    # Draws added after the others (decisions), from their own stream seeded by the request's
    # seed, so that they leave every other choice of the same seed as it was.
    extra_rng: random.Random = field(default_factory=random.Random)
    # The available datasets by (symbol, timeframe), whose bars give the volatility.
    datasets: dict[tuple[str, str], "DatasetInfo"] = field(default_factory=dict)

    def sigma(
        self, symbols: Sequence[str], timeframe: str, date_range: dict[str, Any] | None = None
    ) -> tuple[float, bool]:
        """The per-bar volatility of ``symbols`` (their mean), and whether every symbol's was
        measured from its bars (else guessed from its name)."""
        start, end = (date_range or {}).get("start"), (date_range or {}).get("end")
        values, measured = [], True
        for s in symbols:
            info = self.datasets.get((s, timeframe))
            value = dataset_sigma(info, start, end) if info is not None else None
            if value is None:
                value, measured = bar_sigma([s], timeframe), False
            values.append(value)
        return sum(values) / max(1, len(values)), measured


def _is_volatility(kind: str, output: str) -> bool:
    return kind == "atr" or (kind == "bbands" and output == "width")


def _indicator_id(kind: str, params: dict[str, float]) -> str:
    if kind == "macd":
        return f"macd_{params['fast_period']}_{params['slow_period']}_{params['signal_period']}"
    if kind == "stoch":
        return f"stoch_{params['fastk_period']}"
    if kind == "bbands":
        return f"bbands_{params['period']}_{str(params['nbdev']).replace('.', 'p')}"
    return f"{kind}_{params['period']}"


def _main_period(params: dict[str, Any]) -> float:
    periods = [v for k, v in params.items() if k.endswith("period")]
    return float(max(periods)) if periods else 14.0


def _macd_scale(params: dict[str, Any]) -> float:
    """:func:`macd_line_scale` of a MACD's parameters (the catalog's defaults where unset)."""
    defaults = CATALOG["macd"].params
    fast, slow = (float(params.get(k, defaults[k].default)) for k in ("fast_period", "slow_period"))
    return macd_line_scale(fast, slow)


def _fuzzy_range(
    kind: str, output: str, params: dict[str, Any], sigma: float, rng: random.Random
) -> tuple[float, float]:
    """The span memberships cover: the catalog's typical range, narrowed for oscillators and
    scaled by volatility for price-relative outputs (clipped to the typical range)."""
    lo, hi = CATALOG[kind].typical_range.get(output, (0.0, 1.0))
    p = _main_period(params)
    # Widths in units of sigma, set so the 5th-95th percentiles on the bundled data (EURUSD 1h,
    # BTCUSD 1h/1d, stocks 1d) fall inside the span.
    spread: float | None = None
    if kind in ("sma", "ema"):
        spread = 0.85 * sigma * math.sqrt(p)
    elif kind == "roc":
        spread = 100 * 1.5 * sigma * math.sqrt(p)
    elif kind == "macd" and output == "hist":
        spread = 0.5 * sigma
    elif kind == "macd":  # the line or its signal line (an EMA of the line: a little narrower)
        spread = 1.645 * sigma * _macd_scale(params)
    if spread is not None:
        return max(lo, -spread), min(hi, spread)
    if kind == "atr":
        return 0.5 * sigma, min(hi, 2.5 * sigma)  # volatility is never near zero
    if kind == "bbands" and output == "width":
        top = min(hi, 0.9 * float(params["nbdev"]) * sigma * math.sqrt(p))
        return 0.2 * top, top
    # Bounded oscillators rarely reach their extremes, and less often the longer their period:
    # trim the range so that the outer sets are not empty.
    trim = rng.choice((0.1, 0.2, 0.3)) + (0.05 if p >= 21 else 0.0)
    return lo + trim * (hi - lo), hi - trim * (hi - lo)


def _memberships(lo: float, hi: float, n: int, shape: str) -> dict[str, dict[str, Any]]:
    """``n`` evenly spaced sets over [lo, hi]: triangles with open outer shoulders, or
    gaussians."""
    lo, hi = _round(lo, 2), _round(hi, 2)  # readable endpoints; the centres follow them
    step = (hi - lo) / (n - 1)
    centres = [_round(lo + i * step, 3) for i in range(n)]
    out: dict[str, dict[str, Any]] = {}
    for i, label in enumerate(_LABELS[n]):
        if shape == "gaussian":
            out[label] = {"type": "gaussian", "parameters": [centres[i], _round(step / 2, 3)]}
            continue
        left = centres[max(0, i - 1)]
        right = centres[min(n - 1, i + 1)]
        out[label] = {"type": "triangular", "parameters": [left, centres[i], right]}
    return out


def _new_fuzzy_set(
    kind: str, output: str, params: dict[str, Any], sigma: float, rng: random.Random
) -> dict[str, dict[str, Any]]:
    lo, hi = _fuzzy_range(kind, output, params, sigma, rng)
    n = rng.choice((2, 3, 3, 3, 5))
    shape = "gaussian" if rng.random() < 0.2 else "triangular"
    return _memberships(lo, hi, n, shape)


def _add_indicator(
    d: dict[str, Any], kind: str, rng: random.Random, sigma: float, output: str | None = None
) -> str:
    """Add an indicator with one fuzzy set and its network input; returns the indicator id."""
    params = dict(rng.choice(_PERIODS[kind]))
    ind_id = _indicator_id(kind, params)
    output = output or rng.choice(_OUTPUTS.get(kind, (CATALOG[kind].default_output,)))
    d["indicators"][ind_id] = {"type": kind, **params}
    ref = ind_id if output == CATALOG[kind].default_output else f"{ind_id}.{output}"
    set_id = ind_id if output == CATALOG[kind].default_output else f"{ind_id}_{output}"
    d["fuzzy_sets"][set_id] = {"indicator": ref, **_new_fuzzy_set(kind, output, params, sigma, rng)}
    d["nn_inputs"].append({"fuzzy_set": set_id})
    return ind_id


def _spec_sigma(d: dict[str, Any], ctx: _Context) -> float:
    td = d["training_data"]
    return ctx.sigma(td["symbols"], td["timeframes"][0], td.get("date_range"))[0]


def _has_volatility(d: dict[str, Any]) -> bool:
    for fs in d["fuzzy_sets"].values():
        ind_id, _, output = fs["indicator"].partition(".")
        kind = d["indicators"][ind_id]["type"]
        if _is_volatility(kind, output or CATALOG[kind].default_output):
            return True
    return False
