"""Designers propose the next strategy spec from the research memory.

``OfflineDesigner`` is rule-based and needs no network; a Claude designer can sit behind the same
``Designer`` protocol. A designer sees only the research memory (no lockbox figures exist there)
and the list of available datasets.

How the offline designer works:

- **Seeded.** All choices come from ``random.Random(request.seed)``: the same seed and the same
  memory give the same spec.
- **Exploit or explore.** When memory holds completed researches, with probability
  ``EXPLOIT_PROBABILITY`` (less when recent rejections found no real edge) one of
  ``memory.best(3)`` (by excess Sharpe over buy & hold; weights 3:2:1) is mutated: an indicator
  period, a fuzzy set shifted or given one more membership, the network, the labels, a symbol of
  the same timeframe added or removed, an indicator added or removed, the epochs. Otherwise a
  fresh design is explored.
- **No repeats.** A spec whose ``fingerprint()`` is in memory (finished or still running) is
  never returned; a spec whose combination of indicator types, label source, symbols and
  timeframes was rejected (and never completed) is avoided. After ``MAX_ATTEMPTS`` failed
  mutations the designer explores; if that fails too, it changes the training seed, which always
  gives a new fingerprint.
- **Learning from rejections.** Reasons among the recent rejections steer the design (see
  ``design_steering.py``): ``too_few_trades`` asks for shorter horizons and smaller label
  thresholds, ``no_edge_over_benchmark`` for labels with a dead zone (stand aside rather than
  ride the market), ``no_edge_over_random``, ``not_significant``, ``no_accuracy_lift`` and
  ``loss_above_baseline`` for other inputs rather than tuning (explore more, add and remove
  indicators, prefer the types those researches used least), ``win_rate_too_low`` for fewer,
  steadier signals (longer horizons), ``drawdown_too_high`` for a volatility input (ATR or
  Bollinger width), ``sharpe_too_low`` for a trend-strength filter (ADX), and the seeds'
  absolute training checks for easier labels.
- **Labels that can pass the training gate.** Its default ``max_loss`` of 0.8 lies below ln 3
  (1.10, the loss of a guess on three even classes), so balanced up/flat/down labels rarely pass;
  two-class labels (forward returns with no dead zone, loss about ln 2 = 0.69) usually do, and a
  dominant flat class (large zigzag thresholds) passes training but then never trades and fails
  the win rate. Trials on the bundled data bore this out. So "easier" labels are forward returns
  with no dead zone, and "selective" ones the same over the longer horizons of the table (their
  win rates were higher); unsteered designs still explore zigzag labels and small dead zones.
- **Scaled to the market.** Label thresholds and the fuzzy sets of price-relative indicators are
  scaled by the per-bar volatility ``sigma``: a 0.5% move is large for hourly EUR/USD and noise
  for daily BTC. ``sigma`` is measured from the data (:func:`dataset_sigma`: the standard
  deviation of the bars' log returns before the lockbox, averaged over the spec's symbols), so
  it fits any market, whatever its name; only where a dataset's bars cannot be read is it
  guessed from the symbol's name (:func:`bar_sigma`: ``_SIGMA_1D`` by asset class, times
  ``sqrt(bar minutes / 1440)``). Zigzag thresholds are ``m * sigma * sqrt(lookahead)`` and
  forward-return dead zones ``d * sigma * sqrt(horizon)``, with lookaheads and horizons from
  ``HORIZONS`` per timeframe. With a guessed ``sigma`` 1.3 times too large, a zigzag label with
  ``m = 1`` is flat on most bars and the model never trades.
- **MACD reads its line.** A MACD input is the MACD line (the fast EMA minus the slow, over the
  close), whose sign is the crossover a trend follower trades; its histogram (the line minus its
  signal line) alone lost about half of a planted trend's Sharpe ratio in the research-quality
  benchmark (1.02 against 2.08), so the designer never picks it. The line's fuzzy sets span
  ``1.645 * sigma * sqrt(V)``, ``V`` the variance, in units of ``sigma**2``, of the two EMAs'
  difference on a random walk (:func:`macd_line_scale`): the 5th-95th percentiles of the line
  for every period choice.
- **How sure a position must be.** Half of the fresh designs set ``decisions.confidence_threshold``
  (no position unless the most probable class is at least that probable: 0.51-0.55 for two-class
  labels, barely above a coin flip, and 0.4-0.5 for three), drawn from a stream of their own so
  every other choice of a seed is as it was before; a mutation adds, changes or removes it, as
  steering asks. Higher thresholds left models with a real accuracy lift without a single trade:
  a model's probabilities are rarely far from the labels' frequencies.
- **Brief keywords.** A brief can name symbols (``BTCUSD``, ``bitcoin``...), timeframes
  (``1h``, ``daily``...), indicators (``rsi``, ``bollinger``...) and a style (``trend``,
  ``mean reversion``, ``volatility``). Named symbols, timeframes and indicators are used when
  available; exploitation only picks past researches compatible with them.
"""

import copy
import functools
import math
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from scipy.stats import median_abs_deviation

from research_assets.core.design_steering import (
    Steer,
    decisions,
    describe_decisions,
    describe_labels,
)
from research_assets.core.design_steering import labels as _labels
from research_assets.core.design_steering import round_sig as _round
from research_assets.core.errors import DataError, ResearchError, SpecError
from research_assets.core.indicator_catalog import CATALOG
from research_assets.core.memory import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    ResearchMemory,
    ResearchRecord,
)
from research_assets.core.spec import StrategySpec, check_safe_name

if TYPE_CHECKING:
    from research_assets.core.data import DatasetInfo

MAX_ATTEMPTS = 12
MAX_SYMBOLS = 4

# Typical daily standard deviation of returns by asset class; other bars scale by sqrt(time).
_SIGMA_1D = {"fx": 0.005, "crypto": 0.045, "stock": 0.02, "index": 0.013}
_MINUTES = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "4h": 240, "1d": 1440, "1w": 10080}
# Round-trip costs are a property of the market, not a design choice: one table per asset class.
_COSTS = {
    "fx": (0.0001, 0.00005),
    "crypto": (0.001, 0.0005),
    "stock": (0.0005, 0.0002),
    "index": (0.0003, 0.0001),
}
_FX = {"EUR", "USD", "GBP", "JPY", "CHF", "AUD", "CAD", "NZD", "SEK", "NOK"}
_CRYPTO = ("BTC", "ETH", "LTC", "XRP", "SOL", "ADA", "DOGE")
_INDEX = {"SP500", "SPX", "NASDAQ", "NDX", "DJI", "DJIA", "DAX", "FTSE", "NIKKEI", "RUT", "VIX"}

HIDDEN_LAYERS = ([16], [32], [32, 16], [64, 32])
DROPOUTS = (0.0, 0.1, 0.2, 0.3)
LEARNING_RATES = (0.0003, 0.001, 0.003)
EPOCHS = (20, 30, 40, 60)

_STYLES = {
    "trend": ("sma", "ema", "macd", "adx", "roc"),
    "mean_reversion": ("rsi", "stoch", "willr", "cci", "bbands", "mfi"),
    "volatility": ("atr", "bbands", "adx"),
}
_HYPOTHESES = {
    "trend": "Price keeps moving in the direction of an established trend long enough to trade.",
    "mean_reversion": "Stretched oscillator readings revert towards the middle within the horizon.",
    "volatility": "Volatility regimes tell when moves run and when to stand aside.",
}
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
_BRIEF_SYMBOLS = {
    "bitcoin": "BTC",
    "btc": "BTC",
    "euro": "EURUSD",
    "eur": "EURUSD",
    "apple": "AAPL",
    "microsoft": "MSFT",
    "google": "GOOG",
    "alphabet": "GOOG",
    "s&p": "SP500",
    "s&p 500": "SP500",
}
_BRIEF_TIMEFRAMES = {"hourly": "1h", "daily": "1d", "weekly": "1w", "intraday": "1h"}
_BRIEF_INDICATORS = {
    "bollinger": "bbands",
    "stochastic": "stoch",
    "williams": "willr",
    "moving average": "sma",
    "money flow": "mfi",
    "true range": "atr",
    "directional": "adx",
    "rate of change": "roc",
}
_BRIEF_STYLES = (
    ("mean reversion", "mean_reversion"),
    ("mean-reversion", "mean_reversion"),
    ("reversion", "mean_reversion"),
    ("oversold", "mean_reversion"),
    ("overbought", "mean_reversion"),
    ("volatility", "volatility"),
    ("breakout", "volatility"),
    ("trend", "trend"),
    ("momentum", "trend"),
)


# -- the interface -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DesignRequest:
    """What to design for: the research it becomes, the seed of all choices, an optional brief."""

    research_id: str
    seed: int
    brief: str | None = None


def _no_usage() -> dict[str, int | float]:
    return {"input_tokens": 0, "output_tokens": 0}


@dataclass(frozen=True)
class Design:
    """A designed spec, why it was chosen, who designed it and the tokens it cost."""

    spec: StrategySpec
    rationale: str
    designer: str = "offline"
    usage: dict[str, Any] = field(default_factory=_no_usage)


class Designer(Protocol):
    """Anything that designs the next spec from memory and the available datasets."""

    name: str

    def design(
        self, request: DesignRequest, memory: ResearchMemory, datasets: Sequence["DatasetInfo"]
    ) -> Design: ...


def available_datasets() -> list["DatasetInfo"]:
    """The datasets a designer may choose from (imported lazily: data loading is heavier)."""
    from research_assets.core.data import list_datasets

    return list_datasets()


# -- market context ----------------------------------------------------------------------------


def asset_class(symbol: str) -> str:
    """``fx``, ``crypto``, ``index`` or ``stock``, guessed from the symbol's name."""
    s = symbol.upper()
    if s.startswith(_CRYPTO):
        return "crypto"
    if len(s) == 6 and s[:3] in _FX and s[3:] in _FX:
        return "fx"
    if s in _INDEX:
        return "index"
    return "stock"


def bar_sigma(symbols: Sequence[str], timeframe: str) -> float:
    """Typical standard deviation of one bar's return, averaged over the symbols, guessed from
    their names (the fallback where :func:`dataset_sigma` cannot measure it)."""
    daily = sum(_SIGMA_1D[asset_class(s)] for s in symbols) / max(1, len(symbols))
    return daily * math.sqrt(_MINUTES.get(timeframe, 1440) / 1440)


# Fewer log returns than this before the lockbox, and the name-based guess is used instead.
MIN_SIGMA_RETURNS = 50
# Returns beyond this many robust standard deviations (1.4826 x the median absolute deviation)
# are clipped before measuring: an unadjusted split or a bad tick must not set the scale, while
# the fat tails of real returns stay (they are rarely beyond 8).
_SIGMA_CLIP = 8.0


def _lockbox_fraction() -> float:
    from research_assets.core.splits import SplitConfig

    try:
        return SplitConfig.from_env().lockbox
    except ResearchError:  # a misconfigured split fails the research itself, with its message
        return SplitConfig().lockbox


def _as_date(value: object) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def dataset_sigma(
    info: "DatasetInfo", start: date | str | None = None, end: date | str | None = None
) -> float | None:
    """The standard deviation of one bar's log return, measured on ``info``'s bars.

    Only the bars before the lockbox count (the newest ``RESEARCH_LOCKBOX_FRACTION`` of the bars
    within ``start``..``end``, as a research splits them), so a design never reads the lockbox.
    Returns clipped at ``_SIGMA_CLIP`` robust standard deviations; rounded to three significant
    digits, so specs stay readable and their fingerprints stable. None where the bars cannot be
    read or hold fewer than ``MIN_SIGMA_RETURNS`` returns. Cached by file, modification time and
    size: a design measures each dataset once.
    """
    path = getattr(info, "path", None)
    if path is None:
        return None
    try:
        st = Path(path).stat()
        start, end = _as_date(start), _as_date(end)
    except (OSError, ValueError):
        return None
    return _measured_sigma(str(path), info.symbol, info.timeframe, st.st_mtime_ns, st.st_size,
                           _lockbox_fraction(), start, end)


@functools.lru_cache(maxsize=256)
def _measured_sigma(path: str, symbol: str, timeframe: str, mtime_ns: int, size: int,
                    lockbox: float, start: date | None, end: date | None) -> float | None:
    """See :func:`dataset_sigma`; ``mtime_ns`` and ``size`` are only part of the cache key."""
    from research_assets.core.data import load_bars

    try:
        close = load_bars(symbol, timeframe, Path(path).parent, start, end)["close"]
    except (ResearchError, KeyError):
        return None
    values = close.to_numpy(dtype=np.float64)
    values = values[: len(values) - round(len(values) * lockbox)]
    values = values[np.isfinite(values) & (values > 0)]
    r = np.diff(np.log(values))
    if len(r) < MIN_SIGMA_RETURNS:
        return None
    centre = float(np.median(r))
    robust = float(median_abs_deviation(r, scale="normal"))
    if robust > 0:
        r = np.clip(r, centre - _SIGMA_CLIP * robust, centre + _SIGMA_CLIP * robust)
    sigma = float(np.std(r))
    return _round(sigma, 3) if math.isfinite(sigma) and sigma > 0 else None


def macd_line_scale(fast: float, slow: float) -> float:
    """The standard deviation of the MACD line over the close, in units of the per-bar ``sigma``,
    on a random walk: the fast EMA's lag minus the slow one's is ``sum_j (a**j - b**j) r_(t-j)``
    with ``a``, ``b`` the slow and fast EMAs' decays, so its variance is
    ``sigma**2 * sum_j (a**j - b**j)**2``, three geometric series.

    >>> round(macd_line_scale(12, 26), 2), round(macd_line_scale(5, 35), 2)
    (1.14, 2.38)
    """
    b, a = 1 - 2 / (fast + 1), 1 - 2 / (slow + 1)
    var = a * a / (1 - a * a) - 2 * a * b / (1 - a * b) + b * b / (1 - b * b)
    return math.sqrt(max(var, 0.0))


def market_costs(symbols: Sequence[str]) -> dict[str, float]:
    """Backtest costs for trading ``symbols``: a property of the market, not a design choice.

    The dearest market among the symbols sets the costs, so none is flattered.
    """
    commission, slippage = max(_COSTS[asset_class(s)] for s in symbols)
    return {"commission": commission, "slippage": slippage}


_costs = market_costs  # the private name llm/designer.py imported first


def _is_volatility(kind: str, output: str) -> bool:
    return kind == "atr" or (kind == "bbands" and output == "width")


@dataclass(frozen=True)
class _Brief:
    """What a brief's keywords ask for (empty when no brief or no keyword matched)."""

    symbols: tuple[str, ...] = ()
    timeframes: tuple[str, ...] = ()
    indicators: tuple[str, ...] = ()
    style: str | None = None

    @classmethod
    def parse(cls, text: str | None, datasets: Sequence["DatasetInfo"]) -> "_Brief":
        if not text:
            return cls()
        low = text.lower()

        def has(word: str) -> bool:
            return re.search(rf"(?<![a-z0-9]){re.escape(word)}(?![a-z0-9])", low) is not None

        available = sorted({d.symbol for d in datasets})
        wanted: set[str] = {s for s in available if has(s.lower())}
        for alias, target in _BRIEF_SYMBOLS.items():
            if has(alias):
                wanted |= {s for s in available if s.upper().startswith(target)}
        timeframes = {d.timeframe for d in datasets if has(d.timeframe)}
        timeframes |= {tf for w, tf in _BRIEF_TIMEFRAMES.items() if has(w)}
        indicators = {k for k in CATALOG if has(k)}
        indicators |= {k for w, k in _BRIEF_INDICATORS.items() if has(w)}
        style = next((s for w, s in _BRIEF_STYLES if has(w)), None)
        return cls(
            tuple(sorted(wanted)), tuple(sorted(timeframes)), tuple(sorted(indicators)), style
        )

    def __bool__(self) -> bool:
        return bool(self.symbols or self.timeframes or self.indicators or self.style)

    def describe(self) -> str:
        parts = [", ".join(x) for x in (self.symbols, self.timeframes, self.indicators) if x]
        if self.style:
            parts.append(self.style.replace("_", " "))
        return "; ".join(parts)


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

    def sigma(self, symbols: Sequence[str], timeframe: str,
              date_range: dict[str, Any] | None = None) -> tuple[float, bool]:
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


def _combo(spec: StrategySpec) -> tuple[Any, ...]:
    """What a rejection condemns: indicator types, label source, symbols and timeframes."""
    return (
        tuple(sorted({i.type for i in spec.indicators.values()})),
        spec.training.labels.source,
        tuple(sorted(spec.training_data.symbols)),
        tuple(sorted(spec.training_data.timeframes)),
    )


# -- building blocks ---------------------------------------------------------------------------


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


# -- exploring ---------------------------------------------------------------------------------


def _explore(ctx: _Context) -> tuple[dict[str, Any], str]:
    rng, brief, steer = ctx.rng, ctx.brief, ctx.steer
    timeframes = sorted(ctx.by_timeframe)
    if brief.symbols:
        with_brief = [tf for tf in timeframes if set(brief.symbols) & set(ctx.by_timeframe[tf])]
        timeframes = with_brief or timeframes
    if brief.timeframes:
        timeframes = [tf for tf in timeframes if tf in brief.timeframes] or timeframes
    tf = rng.choice(timeframes)
    available = ctx.by_timeframe[tf]
    named = [s for s in brief.symbols if s in available]
    if named:
        symbols = named[:MAX_SYMBOLS]
    else:
        anchor = rng.choice(available)
        same = [s for s in available if s != anchor and asset_class(s) == asset_class(anchor)]
        extra = rng.choice((0, 0, 1, 2, 3)) if same else 0
        symbols = [anchor, *rng.sample(same, min(extra, len(same)))]
    sigma, measured = ctx.sigma(symbols, tf)

    style = brief.style or rng.choice(sorted(_STYLES))
    kinds: list[str] = [k for k in brief.indicators if k in CATALOG][:3]
    pool = list(_STYLES[style])
    if not any(k in pool for k in kinds):
        kinds.append(steer.pick_kind(rng, pool))
    n_total = max(len(kinds), rng.choice((2, 2, 3, 3, 4)))
    others = [k for k in sorted(CATALOG) if k not in kinds]
    while len(kinds) < n_total:
        # mostly from the style's pool, sometimes anything in the catalog
        choices = [k for k in pool if k not in kinds] if rng.random() < 0.6 else others
        choices = [k for k in choices if k not in kinds] or [k for k in others if k not in kinds]
        kinds.append(steer.pick_kind(rng, choices))

    d: dict[str, Any] = {
        "name": "draft",
        "training_data": {"symbols": symbols, "timeframes": [tf]},
        "indicators": {},
        "fuzzy_sets": {},
        "nn_inputs": [],
    }
    for kind in kinds:
        _add_indicator(d, kind, rng, sigma)
    added = []
    if steer.volatility and not _has_volatility(d):
        _add_indicator(d, "atr", rng, sigma)
        added.append("an ATR volatility input (drawdowns were rejected)")
    if steer.trend_filter and "adx" not in kinds:
        _add_indicator(d, "adx", rng, sigma)
        added.append("an ADX trend-strength filter (Sharpe was rejected)")
    d["model"] = {
        "type": "mlp",
        "architecture": {
            "hidden_layers": list(rng.choice(HIDDEN_LAYERS)),
            "activation": rng.choice(("relu", "relu", "tanh", "gelu")),
            "dropout": rng.choice(DROPOUTS),
        },
    }
    d["training"] = {
        "labels": _labels(rng, tf, sigma, steer.label_mode),
        "epochs": rng.choice(EPOCHS),
        "learning_rate": rng.choice(LEARNING_RATES),
        "batch_size": 256,
        "early_stopping": {"enabled": True, "patience": 8},
        "seed": 42,
    }
    section = decisions(ctx.extra_rng, d["training"]["labels"], steer.label_mode)
    if section:
        d["decisions"] = section
    d["backtest"] = _costs(symbols)
    types = ", ".join(sorted({v["type"] for v in d["indicators"].values()}))
    d["description"] = f"{style.replace('_', ' ')} design on {', '.join(symbols)} {tf}: {types}."
    d["hypothesis"] = _HYPOTHESES[style]
    labels = d["training"]["labels"]
    note = (
        f"Explores a fresh {style.replace('_', ' ')} design on {', '.join(symbols)} {tf} with "
        f"{types}; {describe_labels(labels)}, sized for a per-bar volatility of about "
        f"{sigma:.2%} ({_SIGMA_SOURCE[measured]}); {describe_decisions(section)}."
    )
    if added:
        note += " It adds " + " and ".join(added) + "."
    return d, note


_SIGMA_SOURCE = {True: "measured on the bars before the lockbox",
                 False: "guessed from the symbols' names"}


def _has_volatility(d: dict[str, Any]) -> bool:
    for fs in d["fuzzy_sets"].values():
        ind_id, _, output = fs["indicator"].partition(".")
        kind = d["indicators"][ind_id]["type"]
        if _is_volatility(kind, output or CATALOG[kind].default_output):
            return True
    return False


# -- mutating ----------------------------------------------------------------------------------

_Mutation = Callable[[dict[str, Any], _Context], str | None]


def _rename_indicator(d: dict[str, Any], old: str, new: str) -> None:
    """Rename an indicator and the fuzzy sets named after it, with every reference."""
    d["indicators"] = {(new if k == old else k): v for k, v in d["indicators"].items()}
    renamed: dict[str, str] = {}
    for set_id, fs in d["fuzzy_sets"].items():
        ind_id, dot, output = fs["indicator"].partition(".")
        if ind_id == old:
            fs["indicator"] = new + dot + output
            if set_id == old or set_id.startswith(old + "_"):
                renamed[set_id] = new + set_id[len(old) :]
    if set(renamed.values()) & (set(d["fuzzy_sets"]) - set(renamed)):
        return  # a set of that name exists already: keep the set ids
    d["fuzzy_sets"] = {renamed.get(k, k): v for k, v in d["fuzzy_sets"].items()}
    for item in d["nn_inputs"]:
        item["fuzzy_set"] = renamed.get(item["fuzzy_set"], item["fuzzy_set"])


def _rescale_sets(d: dict[str, Any], ind_id: str, output: str, factor: float) -> None:
    """Scale the fuzzy sets reading ``ind_id.output``, when a period change scales that output."""
    kind = d["indicators"][ind_id]["type"]
    for fs in d["fuzzy_sets"].values():
        ref_id, _, ref_output = fs["indicator"].partition(".")
        if ref_id != ind_id or (ref_output or CATALOG[kind].default_output) != output:
            continue
        for m in _set_params(fs):
            m["parameters"] = [_round(x * factor, 4) for x in m["parameters"]]


def _mutate_period(d: dict[str, Any], ctx: _Context) -> str | None:
    ids = [k for k, v in sorted(d["indicators"].items()) if v["type"] in _PERIODS]
    if not ids:
        return None
    ind_id = ctx.rng.choice(ids)
    spec = d["indicators"][ind_id]
    kind = spec["type"]
    old = {k: v for k, v in spec.items() if k != "type"}
    choices = [p for p in _PERIODS[kind] if any(old.get(k) != v for k, v in p.items())]
    new = dict(ctx.rng.choice(choices))
    d["indicators"][ind_id] = {"type": kind, **{**old, **new}}
    # these outputs grow with sqrt(period): keep their memberships on the same footing
    factor = math.sqrt(_main_period(new) / _main_period(old))
    if kind in ("sma", "ema", "roc"):
        _rescale_sets(d, ind_id, "value", factor)
    elif kind == "bbands":
        _rescale_sets(d, ind_id, "width", factor * float(new["nbdev"]) / float(old["nbdev"]))
    elif kind == "macd" and _macd_scale(old) > 0:  # the line's spread depends on both periods
        for output in ("macd", "signal"):
            _rescale_sets(d, ind_id, output, _macd_scale({**old, **new}) / _macd_scale(old))
    new_id = _indicator_id(kind, {**old, **new})
    if ind_id == _indicator_id(kind, {**old}) and new_id not in d["indicators"]:
        _rename_indicator(d, ind_id, new_id)  # keep ids honest: rsi_14 must not hold period 21
    changed = ", ".join(f"{k} {old.get(k)} -> {v}" for k, v in new.items() if old.get(k) != v)
    return f"{ind_id}: {changed}"


def _set_params(fs: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for k, v in fs.items() if k != "indicator"]


def _mutate_shift_fuzzy(d: dict[str, Any], ctx: _Context) -> str | None:
    set_id = ctx.rng.choice(sorted(d["fuzzy_sets"]))
    fs = d["fuzzy_sets"][set_id]
    lo, hi = _set_span(fs)
    if hi <= lo:
        return None
    frac = ctx.rng.choice((-0.15, -0.1, 0.1, 0.15))
    delta = frac * (hi - lo)
    for m in _set_params(fs):
        if m["type"] == "gaussian":
            m["parameters"] = [_round(m["parameters"][0] + delta, 4), m["parameters"][1]]
        else:
            m["parameters"] = [_round(x + delta, 4) for x in m["parameters"]]
    direction = "up" if frac > 0 else "down"
    return f"fuzzy set {set_id} shifted {direction} by {abs(frac):.0%} of its span"


def _informative_points(m: dict[str, Any]) -> list[float]:
    """Points where a membership changes; an open shoulder's outer points are not (a left
    shoulder ``[-1, -1, -0.005, 0]`` is about -0.005 to 0, not -1)."""
    p = [float(x) for x in m["parameters"]]
    if m["type"] == "gaussian":
        return [p[0] - p[1], p[0] + p[1]]
    a, b, c, d = (p[0], p[1], p[1], p[2]) if m["type"] == "triangular" else p
    points = ([a, b] if a < b else []) + ([c, d] if c < d else [])
    return points or [b, c]


def _set_span(fs: dict[str, Any]) -> tuple[float, float]:
    points = [x for m in _set_params(fs) for x in _informative_points(m)]
    return min(points), max(points)


def _mutate_add_membership(d: dict[str, Any], ctx: _Context) -> str | None:
    ids = [k for k, fs in sorted(d["fuzzy_sets"].items()) if len(_set_params(fs)) < 7]
    if not ids:
        return None
    set_id = ctx.rng.choice(ids)
    fs = d["fuzzy_sets"][set_id]
    lo, hi = _set_span(fs)
    n = len(_set_params(fs))
    if hi <= lo:
        return None
    n_new = max(2, n + 1)
    shape = "gaussian" if all(m["type"] == "gaussian" for m in _set_params(fs)) else "triangular"
    d["fuzzy_sets"][set_id] = {"indicator": fs["indicator"], **_memberships(lo, hi, n_new, shape)}
    return f"fuzzy set {set_id} refined from {n} to {n_new} memberships"


def _mutate_network(d: dict[str, Any], ctx: _Context) -> str | None:
    arch = d["model"]["architecture"]
    what = ctx.rng.choice(("hidden_layers", "dropout", "learning_rate"))
    if what == "hidden_layers":
        old = arch.get("hidden_layers")
        arch["hidden_layers"] = list(ctx.rng.choice([h for h in HIDDEN_LAYERS if h != old]))
        return f"hidden layers {old} -> {arch['hidden_layers']}"
    if what == "dropout":
        old = arch.get("dropout")
        arch["dropout"] = ctx.rng.choice([x for x in DROPOUTS if x != old])
        return f"dropout {old} -> {arch['dropout']}"
    old = d["training"].get("learning_rate")
    d["training"]["learning_rate"] = ctx.rng.choice([x for x in LEARNING_RATES if x != old])
    return f"learning rate {old} -> {d['training']['learning_rate']}"


def _mutate_labels(d: dict[str, Any], ctx: _Context) -> str | None:
    old = d["training"]["labels"]
    tf = d["training_data"]["timeframes"][0]
    sigma = _spec_sigma(d, ctx)
    mode = ctx.steer.label_mode
    if ctx.rng.random() < 0.4:
        source = "forward_return" if old["source"] == "zigzag" else "zigzag"
    else:
        source = old["source"]
    new = _labels(ctx.rng, tf, sigma, mode, source)
    if new == old:
        return None
    d["training"]["labels"] = new
    return f"labels {describe_labels(old)} -> {describe_labels(new)}"


def _mutate_decisions(d: dict[str, Any], ctx: _Context) -> str | None:
    old = (d.get("decisions") or {}).get("confidence_threshold") or None
    section = decisions(ctx.extra_rng, d["training"]["labels"], ctx.steer.label_mode, old)
    new = section["confidence_threshold"] if section else None
    if new == old:
        return None
    d.pop("decisions", None)
    if section:
        d["decisions"] = section
    return f"confidence threshold {old or 'none'} -> {new or 'none'}"


def _mutate_symbols(d: dict[str, Any], ctx: _Context) -> str | None:
    symbols: list[str] = d["training_data"]["symbols"]
    timeframes = d["training_data"]["timeframes"]
    # only symbols available on every timeframe of the spec
    common = set.intersection(*(set(ctx.by_timeframe.get(tf, ())) for tf in timeframes))
    candidates = sorted(common - set(symbols))
    same = [s for s in candidates if asset_class(s) == asset_class(symbols[0])]
    if candidates and len(symbols) < MAX_SYMBOLS and (len(symbols) == 1 or ctx.rng.random() < 0.6):
        added = ctx.rng.choice(same or candidates)
        symbols.append(added)
        d["backtest"] = _costs(symbols)
        return f"added {added}"
    if len(symbols) > 1:
        removable = [s for s in symbols if s not in ctx.brief.symbols] or symbols
        removed = ctx.rng.choice(removable)
        symbols.remove(removed)
        d["backtest"] = _costs(symbols)
        return f"removed {removed}"
    return None


def _mutate_add_indicator(d: dict[str, Any], ctx: _Context) -> str | None:
    if len(d["indicators"]) >= 6 or len(d["fuzzy_sets"]) >= 29:
        return None
    present = {v["type"] for v in d["indicators"].values()}
    options: list[tuple[str, str | None]] = []
    if ctx.steer.volatility and not _has_volatility(d):
        options = [(k, o) for k, o in (("atr", "value"), ("bbands", "width")) if k not in present]
    elif ctx.steer.trend_filter and "adx" not in present:
        options = [("adx", "value")]
    options = options or [(k, None) for k in sorted(CATALOG) if k not in present]
    if not options:
        return None
    kind, output = ctx.rng.choice(options)
    ind_id = _add_indicator(d, kind, ctx.rng, _spec_sigma(d, ctx), output)
    return f"added {ind_id}"


def _mutate_remove_indicator(d: dict[str, Any], ctx: _Context) -> str | None:
    if len(d["indicators"]) < 2:
        return None
    protected = set(ctx.brief.indicators)
    ids = [k for k, v in sorted(d["indicators"].items()) if v["type"] not in protected]
    if not ids:
        return None
    ind_id = ctx.rng.choice(ids)
    gone = {s for s, fs in d["fuzzy_sets"].items() if fs["indicator"].partition(".")[0] == ind_id}
    inputs = [i for i in d["nn_inputs"] if i["fuzzy_set"] not in gone]
    if not inputs:
        return None
    del d["indicators"][ind_id]
    d["fuzzy_sets"] = {k: v for k, v in d["fuzzy_sets"].items() if k not in gone}
    d["nn_inputs"] = inputs
    return f"removed {ind_id}"


def _mutate_epochs(d: dict[str, Any], ctx: _Context) -> str | None:
    old = d["training"].get("epochs")
    d["training"]["epochs"] = ctx.rng.choice([e for e in EPOCHS if e != old])
    return f"epochs {old} -> {d['training']['epochs']}"


_MUTATIONS: tuple[tuple[_Mutation, float], ...] = (
    (_mutate_period, 3.0),
    (_mutate_shift_fuzzy, 2.0),
    (_mutate_add_membership, 1.0),
    (_mutate_network, 2.0),
    (_mutate_labels, 2.0),
    (_mutate_decisions, 1.0),
    (_mutate_symbols, 1.5),
    (_mutate_add_indicator, 1.0),
    (_mutate_remove_indicator, 1.0),
    (_mutate_epochs, 0.5),
)


def _mutation_weights(ctx: _Context) -> list[float]:
    weights = []
    for fn, w in _MUTATIONS:
        if fn in (_mutate_labels, _mutate_decisions) and ctx.steer.labels_steered:
            w *= 3  # the labels, and how sure a position must be, are what they point at
        if fn is _mutate_add_indicator and (ctx.steer.volatility or ctx.steer.trend_filter):
            w *= 3
        if ctx.steer.no_edge:  # other inputs rather than tuning these
            if fn in (_mutate_add_indicator, _mutate_remove_indicator):
                w *= 3
            elif fn in (_mutate_period, _mutate_shift_fuzzy, _mutate_add_membership,
                        _mutate_network, _mutate_epochs):
                w *= 0.5
        weights.append(w)
    return weights


def _mutate(record: ResearchRecord, ctx: _Context) -> tuple[dict[str, Any], list[str]] | None:
    assert record.spec is not None
    d = copy.deepcopy(record.spec.to_dict())
    if not _restrict_to_available(d, ctx):
        return None
    changes: list[str] = []
    n = 2 if ctx.rng.random() < 0.3 else 1
    weights = _mutation_weights(ctx)
    for _ in range(n * 3):  # some mutations do not apply to every spec
        fn = ctx.rng.choices([m for m, _ in _MUTATIONS], weights=weights)[0]
        change = fn(d, ctx)
        if change:
            changes.append(change)
        if len(changes) >= n:
            break
    if not changes:
        return None
    d["hypothesis"] = (
        f"A variation of {record.spec.name} ({'; '.join(changes)}) does better than its "
        f"{_skill(record)}."
    )[:2000]
    return d, changes


def _skill(record: ResearchRecord) -> str:
    """``Sharpe 1.20 (excess +0.40 over buy & hold)``: what the record is ranked by."""
    excess = record.excess_sharpe
    over = f" (excess {excess:+.2f} over buy & hold)" if excess is not None else ""
    return f"Sharpe {record.sharpe:.2f}{over}"


def _restrict_to_available(d: dict[str, Any], ctx: _Context) -> bool:
    """Keep only symbols and timeframes that have data; False when nothing is left."""
    td = d["training_data"]
    timeframes = [tf for tf in td["timeframes"] if tf in ctx.by_timeframe]
    for tf in timeframes:
        symbols = [s for s in td["symbols"] if s in ctx.by_timeframe[tf]]
        if symbols:
            # every symbol must have data on every timeframe kept
            keep = [t for t in timeframes if all(s in ctx.by_timeframe[t] for s in symbols)]
            td["symbols"], td["timeframes"] = symbols, keep
            return True
    return False


# -- the designer ------------------------------------------------------------------------------


def _finish(d: dict[str, Any]) -> StrategySpec:
    """Validate, then name the spec after its content: ``<base>_<short fingerprint>``."""
    d = dict(d, name="draft")
    spec = StrategySpec.from_dict(d)
    types = sorted({i.type for i in spec.indicators.values()})
    symbols = spec.training_data.symbols
    where = symbols[0].lower() if len(symbols) == 1 else f"{len(symbols)}sym"
    base = "_".join([*types[:3], where, spec.training_data.timeframes[0]])[:50]
    name = check_safe_name(f"{base}_{spec.fingerprint()[:6]}", "strategy name")
    return StrategySpec.from_dict(dict(d, name=name))


class OfflineDesigner:
    """A seeded, rule-based designer: exploits the best past researches, explores the rest."""

    name = "offline"

    def design(
        self, request: DesignRequest, memory: ResearchMemory, datasets: Sequence["DatasetInfo"]
    ) -> Design:
        by_timeframe: dict[str, list[str]] = {}
        for ds in sorted(datasets, key=lambda x: (x.timeframe, x.symbol)):
            if ds.timeframe in _MINUTES and ds.symbol not in by_timeframe.get(ds.timeframe, []):
                by_timeframe.setdefault(ds.timeframe, []).append(ds.symbol)
        if not by_timeframe:
            raise DataError(
                "no market data is available to design a strategy on: add Parquet or CSV files "
                "named <SYMBOL>_<TIMEFRAME> to the market data folder"
            )
        rng = random.Random(request.seed)
        ctx = _Context(
            rng, by_timeframe, Steer.from_memory(memory), _Brief.parse(request.brief, datasets),
            random.Random(f"decisions/{request.seed}"),
            {(ds.symbol, ds.timeframe): ds for ds in datasets},
        )
        seen = memory.fingerprints((*FINAL_STATUSES, *ACTIVE_STATUSES))
        completed = {_combo(r.spec) for r in memory.completed() if r.spec is not None}
        blocked = {_combo(r.spec) for r in memory.rejected() if r.spec is not None} - completed

        def fresh(spec: StrategySpec) -> bool:
            return spec.fingerprint() not in seen and _combo(spec) not in blocked

        notes: list[str] = []
        candidates = self._exploitable(memory, ctx.brief)
        exploit = ctx.steer.exploit_probability
        if candidates and rng.random() < exploit:
            record = rng.choices(candidates, weights=[3, 2, 1][: len(candidates)])[0]
            rank = candidates.index(record) + 1
            for _ in range(MAX_ATTEMPTS):
                result = _mutate(record, ctx)
                if result is None:
                    continue
                spec = self._try(result[0])
                if spec is not None and fresh(spec):
                    assert record.spec is not None
                    notes.append(
                        f"Exploits {record.spec.name} (research {record.research_id}, "
                        f"backtest-period {_skill(record)}, number {rank} of the "
                        f"{len(candidates)} best completed researches), changing "
                        f"{'; '.join(result[1])}."
                    )
                    return self._design(spec, notes, ctx)
            notes.append(
                f"Mutations of {record.research_id} kept repeating past designs, so it explores."
            )
        elif candidates:
            notes.append(
                f"Explores instead of exploiting the {len(candidates)} best completed "
                f"researches (about {1 - exploit:.0%} of designs explore)."
            )
        else:
            notes.append("No completed research to build on yet, so it explores.")

        last: StrategySpec | None = None
        for _ in range(MAX_ATTEMPTS * 2):
            d, note = _explore(ctx)
            spec = self._try(d)
            if spec is None:
                continue
            last = spec
            if fresh(spec):
                notes.insert(0, note)
                return self._design(spec, notes, ctx)
        if last is None:  # pragma: no cover - the explorer only builds valid specs
            raise SpecError("the offline designer could not build a valid spec")
        # every nearby design was tried: the same idea with another training seed is still new
        d = last.to_dict()
        for _ in range(1000):
            d["training"]["seed"] = rng.randrange(2**31 - 1)
            spec = _finish(d)
            if spec.fingerprint() not in seen:
                notes.append("Every nearby design was tried, so it repeats one with a new seed.")
                return self._design(spec, notes, ctx)
        raise SpecError(
            "the offline designer found no new design; clear old researches"
        )  # pragma: no cover

    @staticmethod
    def _exploitable(memory: ResearchMemory, brief: _Brief) -> list[ResearchRecord]:
        """The best completed researches, keeping those compatible with the brief."""
        out = []
        for r in memory.best(3):
            assert r.spec is not None
            td = r.spec.training_data
            types = {i.type for i in r.spec.indicators.values()}
            if brief.symbols and not set(brief.symbols) & set(td.symbols):
                continue
            if brief.timeframes and not set(brief.timeframes) & set(td.timeframes):
                continue
            if brief.indicators and not set(brief.indicators) & types:
                continue
            out.append(r)
        return out

    @staticmethod
    def _try(d: dict[str, Any]) -> StrategySpec | None:
        try:
            return _finish(d)
        except SpecError:
            return None  # a mutation went out of bounds: try another

    def _design(self, spec: StrategySpec, notes: list[str], ctx: _Context) -> Design:
        extra = [ctx.steer.describe()]
        if ctx.brief:
            extra.append(f"The brief asked for {ctx.brief.describe()}.")
        rationale = " ".join(x for x in [*notes, *extra] if x)
        return Design(spec=spec, rationale=rationale, designer=self.name, usage=_no_usage())
