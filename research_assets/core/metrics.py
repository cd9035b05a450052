"""Backtest statistics, their aggregate over datasets, and a JSON-safe form.

Names follow backtesting.py (``Return [%]``, ``Sharpe Ratio``...), with one deliberate
difference: ``Max. Drawdown [%]`` is a POSITIVE magnitude here (23.4 means the equity fell 23.4%
below its running peak), where backtesting.py reports -23.4. Gates compare it with a maximum.

Ratios whose denominator is zero are NaN when undefined (a flat equity curve has no Sharpe
ratio) and +inf when the numerator is positive (gains and no losses: infinite profit factor).
:func:`json_safe` turns both into None.

>>> idx = pd.date_range("2024-01-01", periods=5, freq="D", tz="UTC")
>>> equity = pd.Series([100.0, 110.0, 99.0, 120.0, 108.0], index=idx)
>>> bars = pd.DataFrame({"close": [10.0, 11.0, 10.0, 12.0, 11.0]}, index=idx)
>>> trades = pd.DataFrame({"pnl": [10.0, -11.0, 21.0]})
>>> s = compute_stats(equity, trades, bars, pd.Series([0, 1, 1, -1, 0], index=idx))
>>> round(s["Return [%]"], 6), round(s["Max. Drawdown [%]"], 6), s["# Trades"]
(8.0, 10.0, 3.0)
>>> round(s["Win Rate [%]"], 4), round(s["Profit Factor"], 4), s["Exposure Time [%]"]
(66.6667, 2.8182, 60.0)
>>> json_safe({"Win Rate [%]": float("nan"), "Profit Factor": float("inf"), "# Trades": 0.0})
{'Win Rate [%]': None, 'Profit Factor': None, '# Trades': 0.0}
"""

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = [
    "STAT_KEYS",
    "compute_stats",
    "json_safe",
    "periods_per_year",
    "stats_from_arrays",
    "summarize",
]

STAT_KEYS = (
    "Return [%]",
    "Buy & Hold Return [%]",
    "Sharpe Ratio",
    "Sortino Ratio",
    "Calmar Ratio",
    "Max. Drawdown [%]",
    "Win Rate [%]",
    "Profit Factor",
    "# Trades",
    "Exposure Time [%]",
)

_DAYS_PER_YEAR = 365.25
_ONE_DAY = pd.Timedelta(days=1)


def periods_per_year(index: pd.DatetimeIndex) -> float:
    """Bars per calendar year, estimated from the index's own span: (bars - 1) / years spanned.

    Daily stock data gives ~252 (no weekends or holidays), daily crypto ~365, hourly forex
    ~6200 (24 hours, 5 days a week). NaN for fewer than two bars or a zero span.

    >>> periods_per_year(pd.date_range("2020-01-01", "2024-01-01", freq="D"))
    365.25
    >>> round(periods_per_year(pd.bdate_range("2020-01-01", "2024-01-01")))
    261
    """
    if len(index) < 2:
        return math.nan
    days = (index[-1] - index[0]) / _ONE_DAY  # whatever the index's time unit
    if not days > 0:
        return math.nan
    return (len(index) - 1) / (days / _DAYS_PER_YEAR)


def compute_stats(
    equity: pd.Series, trades: pd.DataFrame, bars: pd.DataFrame, positions: pd.Series
) -> dict[str, float]:
    """The :data:`STAT_KEYS` statistics of one backtest, as plain floats.

    * ``Return [%]``: ``(final / initial - 1) * 100`` of the equity curve.
    * ``Buy & Hold Return [%]``: the same on ``bars["close"]``, no costs.
    * ``Sharpe Ratio``: mean / standard deviation (ddof 1) of the per-bar equity returns, times
      ``sqrt(periods_per_year)``; risk-free rate 0.
    * ``Sortino Ratio``: the same mean over the downside deviation ``sqrt(mean(min(r, 0)**2))``.
    * ``Calmar Ratio``: annualised (compound) return / max drawdown, both as fractions.
    * ``Max. Drawdown [%]``: largest fall below the running peak, a POSITIVE number.
    * ``Win Rate [%]``: closed trades with ``pnl > 0`` / closed trades; NaN without trades.
    * ``Profit Factor``: sum of winning pnl / -sum of losing pnl.
    * ``# Trades``: closed trades. ``Exposure Time [%]``: bars with a non-zero position / bars.
    """
    return stats_from_arrays(
        equity.to_numpy(dtype=np.float64),
        bars["close"].to_numpy(dtype=np.float64),
        trades["pnl"].to_numpy(dtype=np.float64) if len(trades) else np.empty(0),
        positions.to_numpy(dtype=np.float64),
        periods_per_year(equity.index) if isinstance(equity.index, pd.DatetimeIndex) else math.nan,
    )


def stats_from_arrays(
    eq: np.ndarray, close: np.ndarray, pnl: np.ndarray, positions: np.ndarray, ppy: float
) -> dict[str, float]:
    """:func:`compute_stats` on plain arrays (the backtest's hot path skips pandas)."""
    # In-place arithmetic below: this runs once per backtest and is part of its hot path.
    initial, final = float(eq[0]), float(eq[-1])
    prev = eq[:-1]
    if len(prev) and prev.min() > 0:
        returns = np.divide(eq[1:], prev)
    else:  # a ruined account (equity 0) has no further returns rather than 0/0
        returns = np.divide(eq[1:], prev, out=np.ones_like(prev), where=prev > 0)
    returns -= 1.0
    relative = np.maximum.accumulate(eq)
    np.divide(eq, relative, out=relative)
    drawdown = 1.0 - float(relative.min())

    sharpe = sortino = calmar = math.nan
    if len(returns) >= 2:
        mean = float(returns.mean())
        # Sums of squares, not `x @ x`: BLAS threads can spin for milliseconds on a busy machine.
        centred = returns - mean
        centred *= centred
        std = math.sqrt(float(centred.sum()) / (len(returns) - 1))
        down = np.minimum(returns, 0.0, out=centred)
        down *= down
        downside = math.sqrt(float(down.sum()) / len(returns))
        root = math.sqrt(ppy)
        sharpe = _ratio(mean, std) * root
        sortino = _ratio(mean, downside) * root
        years = (len(eq) - 1) / ppy
        annual = (final / initial) ** (1.0 / years) - 1.0 if final > 0 else -1.0
        calmar = _ratio(annual, drawdown)

    won = pnl > 0
    gross_profit = float(pnl[won].sum())
    gross_loss = -float(pnl[pnl < 0].sum())
    return {
        "Return [%]": (final / initial - 1.0) * 100.0,
        "Buy & Hold Return [%]": float(close[-1] / close[0] - 1.0) * 100.0,
        "Sharpe Ratio": sharpe,
        "Sortino Ratio": sortino,
        "Calmar Ratio": calmar,
        "Max. Drawdown [%]": drawdown * 100.0,
        "Win Rate [%]": float(won.sum()) / len(pnl) * 100.0 if len(pnl) else math.nan,
        "Profit Factor": _ratio(gross_profit, gross_loss),
        "# Trades": float(len(pnl)),
        "Exposure Time [%]": float(np.count_nonzero(positions != 0)) / len(positions) * 100.0,
    }


def _ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``; +-inf over a zero denominator, NaN for 0/0 (undefined)."""
    if denominator > 0:
        return numerator / denominator
    if numerator == 0 or math.isnan(numerator):
        return math.nan
    return math.copysign(math.inf, numerator)


def summarize(stats_by_dataset: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """One figure per statistic over a strategy's datasets (what the backtest gate reads).

    * ``# Trades``: the total.
    * ``Win Rate [%]``: pooled over all trades, i.e. weighted by each dataset's trade count
      (a dataset with 2 trades does not count as much as one with 200); NaN without trades.
    * ``Max. Drawdown [%]``: the worst (largest) dataset, a positive magnitude.
    * ``p-value``: the largest, and ``Probabilistic`` / ``Deflated Sharpe Ratio``: the smallest:
      the least significant dataset (a mean of p-values is no p-value). A backtest report
      replaces these three with those of the datasets pooled into one portfolio
      (``significance.pooled_significance``), which is what the backtest gate judges.
    * Every other key (``Return [%]``, ``Sharpe Ratio``, ``Sortino Ratio``, ``Calmar Ratio``,
      ``Profit Factor``, ``Buy & Hold Return [%]``, ``Exposure Time [%]``, and ``Excess Sharpe``,
      ``Buy & Hold Sharpe Ratio``, ``Excess Return [%]``...): the plain mean over
      the datasets where it is finite. NaN (undefined: flat equity, no losing trade...) and inf
      are left out so that one degenerate dataset neither hides nor swamps the others; NaN if
      no dataset has a finite value. ``Excess Sharpe`` is averaged exactly as ``Sharpe
      Ratio`` is: where every dataset has both, the mean excess is the mean Sharpe minus the mean
      buy & hold Sharpe, and a dataset that never traded (no Sharpe ratio) counts in neither.

    >>> s = summarize({
    ...     "A/1d": {"# Trades": 10.0, "Win Rate [%]": 60.0, "Max. Drawdown [%]": 12.0,
    ...              "Sharpe Ratio": 1.0, "Profit Factor": float("inf")},
    ...     "B/1h": {"# Trades": 30.0, "Win Rate [%]": 40.0, "Max. Drawdown [%]": 25.0,
    ...              "Sharpe Ratio": 0.5, "Profit Factor": 1.5},
    ... })
    >>> s["# Trades"], s["Win Rate [%]"], s["Max. Drawdown [%]"], s["Sharpe Ratio"]
    (40.0, 45.0, 25.0, 0.75)
    >>> s["Profit Factor"]  # the infinite one is left out
    1.5
    >>> s = summarize({
    ...     "A/1d": {"Sharpe Ratio": 1.0, "Buy & Hold Sharpe Ratio": 0.4, "Excess Sharpe": 0.6},
    ...     "B/1h": {"Sharpe Ratio": 0.2, "Buy & Hold Sharpe Ratio": 0.6, "Excess Sharpe": -0.4},
    ...     "C/1h": {"Sharpe Ratio": float("nan"), "Buy & Hold Sharpe Ratio": 0.9,
    ...              "Excess Sharpe": float("nan")},  # never traded: no Sharpe, no excess
    ... })
    >>> round(s["Sharpe Ratio"], 9), round(s["Excess Sharpe"], 9)
    (0.6, 0.1)
    """
    datasets = list(stats_by_dataset.values())
    keys = [k for k in STAT_KEYS if any(k in s for s in datasets)]
    keys += sorted({k for s in datasets for k in s} - set(keys))
    out: dict[str, float] = {}
    for key in keys:
        values = [float(s[key]) for s in datasets if s.get(key) is not None]
        finite = [v for v in values if math.isfinite(v)]
        if key == "# Trades":
            out[key] = float(sum(finite))
        elif key == "Win Rate [%]":
            pairs = [
                (float(s[key]), float(s.get("# Trades") or 0.0))
                for s in datasets
                if s.get(key) is not None and math.isfinite(float(s[key]))
            ]
            count = sum(n for _, n in pairs)
            out[key] = sum(w * n for w, n in pairs) / count if count > 0 else math.nan
        elif key in ("Max. Drawdown [%]", "p-value"):
            out[key] = max(finite) if finite else math.nan
        elif key in ("Probabilistic Sharpe Ratio", "Deflated Sharpe Ratio"):
            out[key] = min(finite) if finite else math.nan
        else:
            out[key] = sum(finite) / len(finite) if finite else math.nan
    return out


def json_safe(stats: Mapping[str, float | None]) -> dict[str, float | None]:
    """``stats`` with NaN and +-inf (and None) as None and numbers as plain floats, for JSON."""
    out: dict[str, float | None] = {}
    for key, value in stats.items():
        number = None if value is None else float(value)
        out[key] = number if number is not None and math.isfinite(number) else None
    return out
