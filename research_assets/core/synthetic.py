"""Seeded synthetic markets: where the right answer is known, so the lab can be graded.

Three kinds of series, each a set of OHLCV bars in the layout of the bundled data (a
``timestamp`` column and float ``open, high, low, close, volume``; what :func:`load_bars` reads):

- ``noise``: a geometric random walk with no drift. Nothing can be predicted; every strategy's
  true Sharpe ratio is 0 (less its costs).
- ``drift``: the same walk with a constant upward drift (buy & hold's Sharpe ratio is about
  ``drift_sharpe``). Still nothing can be predicted: a strategy can only earn the drift by being
  long, which is market exposure, not timing skill. Nothing should beat buy & hold.
- ``signal``: a planted, learnable trend. The per-bar drift switches between ``+m`` and ``-m``
  (a two-state Markov chain, a regime lasting ``regime_bars`` bars on average, ``m`` =
  ``regime_drift * sigma``) under the same noise. Across the whole series the drift averages to
  about 0, so buy & hold earns nothing and a strategy's gains come from timing alone. A regime
  shows in the recent trend (a close above a rising average), so the catalog's trend indicators
  (``ema``, ``sma``, ``macd``, ``roc``) turned into fuzzy features, forward-return labels and an
  MLP can learn it; a 10/40 EMA crossover, long above and short below, trades it at an
  annualised Sharpe ratio of about 1.9 before costs on daily bars (the defaults, measured over
  seeds: :func:`planted_rule_check`), so a lab that corrects for dozens of trials can still
  detect it. The oracle (the true regime, known a bar late) reaches about 3.9.

Defaults are scaled like a daily stock (1.5% daily volatility, business days, ~261 bars a year).
The designers measure a dataset's volatility from its bars, so their label thresholds and fuzzy
sets fit these series as they fit the bundled stocks.

Prices: ``close`` is ``start_price * exp(cumsum(returns))``; each bar opens at the previous
close (the backtest fills a signal at the next open, so it trades at the close the signal saw);
``high`` and ``low`` extend the open-close range by half-normal wicks; ``volume`` is lognormal
and rises with the size of the bar's move. Seeds: :func:`synthetic_bars` draws from
``numpy.random.default_rng([seed, stream])``, so the same arguments give the same bars on every
machine; :func:`write_market_data` gives symbol ``i`` the stream ``i``.

>>> bars = synthetic_bars("signal", seed=3, bars=500)
>>> list(bars.columns), bars.index.name, str(bars.index.tz), len(bars)
(['open', 'high', 'low', 'close', 'volume'], 'timestamp', 'UTC', 500)
>>> bool((synthetic_bars("signal", seed=3, bars=500) == bars).all().all())
True
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from research_assets.core.backtest import run_backtest
from research_assets.core.errors import DataError
from research_assets.core.spec import TIMEFRAMES, check_safe_name

__all__ = [
    "DEFAULT_SYMBOLS",
    "KINDS",
    "SyntheticMarket",
    "ema_crossover_positions",
    "planted_rule_check",
    "synthetic_bars",
    "synthetic_returns",
    "write_market_data",
]

KINDS = ("noise", "drift", "signal")
# Four symbols of one timeframe: the offline designer pools up to four of one asset class.
DEFAULT_SYMBOLS = ("SYNA", "SYNB", "SYNC", "SYND")
_BAR_FREQ = {
    "1m": "min",
    "5m": "5min",
    "15m": "15min",
    "30m": "30min",
    "1h": "h",
    "4h": "4h",
    "1d": "B",
    "1w": "W-FRI",
}
_START = "2000-01-03"


@dataclass(frozen=True)
class SyntheticMarket:
    """The parameters of a synthetic series. ``sigma`` is the per-bar volatility of log returns;
    ``drift_sharpe`` the annualised Sharpe ratio of buy & hold in the ``drift`` kind;
    ``regime_drift`` the ``signal`` kind's per-bar drift in units of ``sigma``, and
    ``regime_bars`` the mean length of one of its regimes."""

    bars: int = 4000
    timeframe: str = "1d"
    sigma: float = 0.015
    drift_sharpe: float = 0.8
    regime_drift: float = 0.25
    regime_bars: float = 60.0
    start_price: float = 100.0
    start: str = _START

    def __post_init__(self) -> None:
        if self.timeframe not in TIMEFRAMES:
            raise DataError(f"timeframe {self.timeframe!r} is not one of {', '.join(TIMEFRAMES)}")
        if self.bars < 2:
            raise DataError(f"a synthetic series needs at least 2 bars, got {self.bars}")
        if not (0 < self.sigma < 0.5):
            raise DataError(f"sigma (per-bar volatility) must be in (0, 0.5), got {self.sigma}")
        if not self.regime_bars >= 1:
            raise DataError(f"regime_bars must be at least 1, got {self.regime_bars}")

    @property
    def bars_per_year(self) -> float:
        """Bars per calendar year of this timeframe (business days for ``1d``)."""
        minutes = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "4h": 240}
        if self.timeframe == "1d":
            return 261.0
        if self.timeframe == "1w":
            return 52.18
        return 365.25 * 1440 / minutes[self.timeframe]


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise DataError(f"synthetic kind {kind!r} is not one of {', '.join(KINDS)}")
    return kind


def synthetic_returns(
    kind: str, rng: np.random.Generator, market: SyntheticMarket = SyntheticMarket()
) -> tuple[np.ndarray, np.ndarray]:
    """Per-bar log returns of ``kind`` and the true per-bar drift of the price behind each of
    them (the regime for ``signal``; a constant for the others). Bar 0's return is 0: it is
    the start."""
    _check_kind(kind)
    n = market.bars
    if kind == "signal":
        switch = rng.random(n) < 1.0 / market.regime_bars
        first = 1.0 if rng.random() < 0.5 else -1.0
        regime = np.where(np.cumsum(switch) % 2 == 0, first, -first)
        drift = regime * market.regime_drift * market.sigma
    elif kind == "drift":
        drift = np.full(n, market.drift_sharpe / math.sqrt(market.bars_per_year) * market.sigma)
    else:
        drift = np.zeros(n)
    # -sigma^2/2: the price itself (not its log) has the drift above, so that noise is a
    # martingale (buy & hold expects to earn nothing) and drift's buy & hold Sharpe is as set.
    returns = drift - 0.5 * market.sigma**2 + market.sigma * rng.standard_normal(n)
    returns[0] = 0.0
    return returns, drift


def synthetic_bars(
    kind: str,
    seed: int,
    market: SyntheticMarket | None = None,
    *,
    bars: int | None = None,
    stream: int = 0,
) -> pd.DataFrame:
    """OHLCV bars of one synthetic series, as :func:`load_bars` returns them (a UTC
    DatetimeIndex named ``timestamp``). ``bars`` overrides ``market.bars``; ``stream`` tells
    symbols of one seed apart."""
    market = market or SyntheticMarket()
    if bars is not None:
        market = SyntheticMarket(**{**market.__dict__, "bars": bars})
    rng = np.random.default_rng([int(seed), int(stream)])
    returns, _ = synthetic_returns(kind, rng, market)
    close = market.start_price * np.exp(np.cumsum(returns))
    open_ = np.empty_like(close)
    open_[0] = close[0]
    open_[1:] = close[:-1]
    wick = market.sigma * 0.5
    high = np.maximum(open_, close) * np.exp(np.abs(rng.standard_normal(len(close))) * wick)
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.standard_normal(len(close))) * wick)
    move = np.abs(returns) / market.sigma
    volume = np.round(1e6 * np.exp(0.3 * rng.standard_normal(len(close)) + 0.2 * move), 0)
    index = pd.date_range(
        market.start,
        periods=len(close),
        freq=_BAR_FREQ[market.timeframe],
        tz="UTC",
        name="timestamp",
    ).as_unit("ns")  # as load_bars gives
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume},
        index=index,
    )


def write_market_data(
    directory: str | Path,
    kind: str,
    seed: int = 0,
    *,
    symbols: Sequence[str] = DEFAULT_SYMBOLS,
    market: SyntheticMarket | None = None,
) -> list[Path]:
    """Write one Parquet file per symbol, ``SYMBOL_TIMEFRAME.parquet``, into ``directory``
    (created if needed), in the bundled files' layout: a directory usable as
    ``MARKET_DATA_DIR``. Symbol ``i`` is :func:`synthetic_bars` with ``stream=i``. Returns
    the paths written."""
    _check_kind(kind)
    market = market or SyntheticMarket()
    if not symbols:
        raise DataError("give at least one symbol to write")
    for symbol in symbols:
        try:
            check_safe_name(symbol, "symbol")
        except ValueError as exc:
            raise DataError(str(exc)) from None
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, symbol in enumerate(symbols):
        bars = synthetic_bars(kind, seed, market, stream=i)
        path = out / f"{symbol}_{market.timeframe}.parquet"
        bars.reset_index().to_parquet(path, index=False)
        paths.append(path)
    return paths


# -- measuring the planted signal --------------------------------------------------------------


def _ema(x: np.ndarray, period: int) -> np.ndarray:
    """Exponential moving average seeded with the first value (alpha = 2 / (period + 1))."""
    alpha = 2.0 / (period + 1.0)
    out = np.empty_like(x)
    acc = x[0]
    for i, v in enumerate(x):  # a few thousand bars: a loop is fast enough and plainly right
        acc = alpha * v + (1.0 - alpha) * acc
        out[i] = acc
    return out


def ema_crossover_positions(
    close: np.ndarray | pd.Series, fast: int = 10, slow: int = 40
) -> np.ndarray:
    """Target positions of the planted rule: +1 while the ``fast`` EMA of the close is above the
    ``slow`` one, -1 below (decided at each close, filled at the next open by the backtest);
    flat for the first ``slow`` bars."""
    c = np.asarray(close, dtype=np.float64)
    pos = np.sign(_ema(c, fast) - _ema(c, slow))
    pos[:slow] = 0.0
    return pos


def planted_rule_check(
    bars: pd.DataFrame,
    *,
    fast: int = 10,
    slow: int = 40,
    commission: float = 0.0,
    slippage: float = 0.0,
    start: float = 0.0,
) -> dict[str, float]:
    """The EMA-crossover rule and buy & hold backtested (``core.backtest``) on ``bars`` from
    fraction ``start`` of them onwards (e.g. 0.85: the last 15%, where the lockbox lies):
    ``rule_sharpe``, ``buy_and_hold_sharpe``, ``excess_sharpe`` (their difference),
    ``rule_trades`` and the returns in percent. Costs are 0 by default (before costs)."""
    positions = ema_crossover_positions(bars["close"].to_numpy(), fast, slow)
    first = int(len(bars) * start)
    window = bars.iloc[first:]
    rule = run_backtest(window, positions[first:], commission=commission, slippage=slippage)
    hold = run_backtest(window, np.ones(len(window)), commission=0.0, slippage=0.0)
    rule_sharpe = rule.stats["Sharpe Ratio"]
    hold_sharpe = hold.stats["Sharpe Ratio"]
    return {
        "rule_sharpe": rule_sharpe,
        "buy_and_hold_sharpe": hold_sharpe,
        "excess_sharpe": rule_sharpe - hold_sharpe,
        "rule_return_pct": rule.stats["Return [%]"],
        "buy_and_hold_return_pct": hold.stats["Return [%]"],
        "rule_trades": rule.stats["# Trades"],
    }
