"""Vectorised backtest of target-position signals on OHLC bars.

Semantics
---------
* ``signals[t]`` is the target position decided at the CLOSE of bar ``t``: ``+1`` long with the
  whole account, ``-1`` short with the whole account, ``0`` flat, fractions in between. It is
  filled at the OPEN of bar ``t + 1``; a signal on the last bar is never filled.
* ``positions[t]`` is the target held during bar ``t`` (``signals[t - 1]``, ``0`` on bar 0).
* A fill trades only the difference between the current and the target holding. The target is
  met exactly after costs: right after a fill, ``units * open == target * equity`` where equity is
  marked at that open. So ``+1`` spends all cash including fees and ``-1`` shorts units worth the
  whole (post-fee) equity. Between fills the units are held, not rebalanced: the weight drifts.
* Costs per fill: slippage moves the fill price against us (buy at ``open * (1 + slippage)``,
  sell at ``open * (1 - slippage)``) and commission is ``commission * traded value`` at that
  price, on entries and exits alike.
* Equity is compounding (every fill sizes off the current equity, fractional units) and marked
  to market at each bar's close. Unused cash earns nothing and shorts pay no borrow fee.
* A position still open after the last bar is closed at the last CLOSE, with slippage and
  commission, and shows up as a closed trade; ``equity`` on the last bar is after that exit, so
  ``Return [%]`` is the sum of the trades' pnl. (backtesting.py's ``finalize_trades=True`` also
  closes it with costs, but fills that exit at the last bar's OPEN: see the cross-check test.)
* If equity reaches zero or less (a short squeezed), the account is closed: equity stays 0 and
  nothing more is traded, as in backtesting.py.

How it is vectorised: every quantity above is proportional to the equity at the previous fill,
so each fill multiplies that equity by a factor that only depends on the two targets and the two
fill-bar opens. One ``cumprod`` over the fills gives the equity at every fill, and repeating each
segment's cash and units over its bars gives the mark-to-market equity at every close. No Python
loop runs per bar or per trade.

>>> idx = pd.date_range("2024-01-01", periods=4, freq="D", tz="UTC", name="timestamp")
>>> bars = pd.DataFrame({"open": [100.0, 100.0, 110.0, 121.0],
...                      "close": [100.0, 105.0, 115.0, 121.0]}, index=idx)
>>> r = run_backtest(bars, [1, 1, 0, 0], commission=0.0, slippage=0.0, cash=1000.0)
>>> r.equity.round(6).tolist()   # long from the open of bar 1, out at the open of bar 3
[1000.0, 1050.0, 1150.0, 1210.0]
>>> r.positions.tolist()
[0.0, 1.0, 1.0, 0.0]
>>> r.trades[["direction", "entry_price", "exit_price", "pnl"]].round(6).to_dict("records")
[{'direction': 1, 'entry_price': 100.0, 'exit_price': 121.0, 'pnl': 210.0}]
"""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from research_assets.core.errors import ResearchError
from research_assets.core.metrics import periods_per_year, stats_from_arrays

__all__ = ["BacktestInputError", "BacktestResult", "TRADE_COLUMNS", "run_backtest"]

TRADE_COLUMNS = (
    "entry_time",
    "exit_time",
    "direction",
    "entry_price",
    "exit_price",
    "return_pct",
    "pnl",
)
MAX_COST = 0.1  # commission or slippage above 10% per fill is a units mistake (0.1 vs 10)


class BacktestInputError(ResearchError, ValueError):
    """Bars, signals or cost settings that the backtest cannot run on (says which and why)."""


@dataclass(frozen=True)
class BacktestResult:
    """What :func:`run_backtest` returns.

    ``trades`` has one row per closed trade (a run of bars with a position of one sign):
    ``entry_time``/``exit_time`` are the bars whose open filled the entry/exit (the last bar for
    the forced exit at its close), ``direction`` is +1 long or -1 short, prices include
    slippage, ``pnl`` is the change in account equity from just before the entry fill to just
    after the exit fill (costs included) and ``return_pct`` is that pnl in percent of the equity
    just before the entry.
    """

    equity: pd.Series
    positions: pd.Series
    trades: pd.DataFrame
    stats: dict[str, float]


@dataclass(frozen=True)
class _Simulation:
    equity: np.ndarray
    positions: np.ndarray
    entry_bar: np.ndarray
    exit_bar: np.ndarray
    direction: np.ndarray
    entry_price: np.ndarray
    exit_price: np.ndarray
    entry_equity: np.ndarray
    exit_equity: np.ndarray


def run_backtest(
    bars: pd.DataFrame,
    signals: pd.Series | np.ndarray,
    *,
    commission: float = 0.001,
    slippage: float = 0.0005,
    cash: float = 10_000.0,
) -> BacktestResult:
    """Backtest ``signals`` (target positions in [-1, 1], one per bar) on ``bars``.

    ``bars`` needs a DatetimeIndex and ``open`` and ``close`` columns. A ``signals`` Series must
    have the same index as ``bars``; an array or list is taken in bar order. See the module
    docstring for the fill, cost and finalisation rules. Raises :class:`BacktestInputError`.
    """
    opens, closes, target = _validated(bars, signals, commission, slippage, cash)
    sim = _simulate(opens, closes, target, float(commission), float(slippage), float(cash))
    index = bars.index
    equity = pd.Series(sim.equity, index=index, name="equity", copy=False)
    positions = pd.Series(sim.positions, index=index, name="position", copy=False)
    stamps = index.array  # DatetimeArray: take() keeps the time zone and skips Index overhead
    pnl = sim.exit_equity - sim.entry_equity
    trades = pd.DataFrame(
        {
            "entry_time": stamps.take(sim.entry_bar),
            "exit_time": stamps.take(sim.exit_bar),
            "direction": sim.direction,
            "entry_price": sim.entry_price,
            "exit_price": sim.exit_price,
            "return_pct": (sim.exit_equity / sim.entry_equity - 1.0) * 100.0,
            "pnl": pnl,
        },
        copy=False,
    )
    # Same figures as metrics.compute_stats(equity, trades, bars, positions), without pandas:
    # reading a column back from the fresh frame alone would cost more than the simulation.
    stats = stats_from_arrays(sim.equity, closes, pnl, sim.positions, periods_per_year(index))
    return BacktestResult(equity, positions, trades, stats)


def _validated(
    bars: pd.DataFrame, signals: object, commission: float, slippage: float, cash: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The open and close prices and the signals as float64 arrays, or a precise error."""
    if not isinstance(bars, pd.DataFrame):
        raise BacktestInputError(f"bars must be a pandas DataFrame, got {type(bars).__name__}")
    missing = [c for c in ("open", "close") if c not in bars.columns]
    if missing:
        raise BacktestInputError(
            f"bars lacks column(s) {', '.join(missing)}; it has {', '.join(map(str, bars.columns))}"
        )
    if len(bars) == 0:
        raise BacktestInputError("bars is empty: there is nothing to backtest")
    if not isinstance(bars.index, pd.DatetimeIndex):
        raise BacktestInputError(f"bars must have a DatetimeIndex, got {type(bars.index).__name__}")
    if not bars.index.is_monotonic_increasing:
        raise BacktestInputError("bars index must be sorted by time (ascending)")
    opens = bars["open"].to_numpy(dtype=np.float64)
    closes = bars["close"].to_numpy(dtype=np.float64)
    for name, prices in (("open", opens), ("close", closes)):
        if not (prices.min() > 0 and prices.max() < math.inf):  # also False for NaN
            i = int(np.argmax(~(np.isfinite(prices) & (prices > 0))))
            raise BacktestInputError(
                f"bars {name} must be positive and finite; row {i} ({bars.index[i]}) is {prices[i]}"
            )
    if isinstance(signals, pd.Series) and not signals.index.equals(bars.index):
        raise BacktestInputError(
            "signals index differs from bars index; align them (signals.reindex(bars.index)) "
            "or pass a numpy array in bar order"
        )
    try:
        target = np.asarray(signals, dtype=np.float64)
    except (TypeError, ValueError):
        raise BacktestInputError("signals must be numbers (target positions in [-1, 1])") from None
    if target.ndim != 1:
        raise BacktestInputError(f"signals must be one-dimensional, got shape {target.shape}")
    if len(target) != len(bars):
        raise BacktestInputError(
            f"signals has {len(target)} values but bars has {len(bars)} rows; give one per bar"
        )
    if len(target) and not (target.min() >= -1.0 and target.max() <= 1.0):  # False for NaN
        i = int(np.argmax(~(np.isfinite(target) & (np.abs(target) <= 1.0))))
        raise BacktestInputError(
            f"signals must be finite and within [-1, 1]; value {i} ({bars.index[i]}) is {target[i]}"
        )
    for name, value in (("commission", commission), ("slippage", slippage)):
        if not (isinstance(value, int | float) and 0.0 <= value <= MAX_COST):
            raise BacktestInputError(
                f"{name}={value!r} must be a fraction of traded value between 0 and {MAX_COST} "
                "(0.001 means 0.1%)"
            )
    if not (isinstance(cash, int | float) and math.isfinite(cash) and cash > 0):
        raise BacktestInputError(f"cash={cash!r} must be a positive finite amount")
    return opens, closes, target


def _simulate(
    opens: np.ndarray,
    closes: np.ndarray,
    target: np.ndarray,
    commission: float,
    slippage: float,
    cash: float,
) -> _Simulation:
    n = len(closes)
    pos = np.empty(n)
    pos[0] = 0.0
    pos[1:] = target[:-1]
    fills = np.flatnonzero(pos[1:] != pos[:-1]) + 1  # bars whose open trades (pos[0] is 0)
    u = pos[fills]  # target after fill k
    u_prev = np.zeros(len(fills))  # target before it: held since fill k - 1, or 0
    u_prev[1:] = u[:-1]

    # Cost of trading one unit of value at the open (mid), slippage and commission together.
    k_buy = slippage + commission * (1.0 + slippage)
    k_sell = slippage + commission * (1.0 - slippage)

    # Per fill k, in units of the equity right after fill k - 1 (E_{k-1}):
    ref = opens[fills]  # the fill's open: units * ref == u * E_k right after the fill
    ratio = np.ones(len(fills))
    ratio[1:] = ref[1:] / ref[:-1]
    held = u_prev * ratio  # value of the held units at this open
    value = 1.0 - u_prev + held  # account value at this open, before trading
    # E_k solves E_k = value - |u * E_k - held| * k_side; the side is whichever is consistent.
    # Both denominators are >= 1 - 0.21 since |u| <= 1 and costs are capped at MAX_COST.
    e_buy = (value + held * k_buy) / (1.0 + u * k_buy)
    e_sell = (value - held * k_sell) / (1.0 - u * k_sell)
    growth = np.where(u * e_buy > held, e_buy, e_sell)
    e_fill = cash * np.cumprod(growth)
    e_before = np.empty(len(fills))
    e_before[:1] = cash
    e_before[1:] = e_fill[:-1]

    # Mark to market: bar t in segment k is worth E_k * (1 - u_k) + (E_k * u_k / ref_k) * close_t.
    # np.repeat over segment lengths is several times faster than a gather by segment number.
    bounds = np.empty(len(fills) + 2, dtype=np.int64)
    bounds[0], bounds[1:-1], bounds[-1] = 0, fills, n
    lengths = np.diff(bounds)
    cash_part = np.repeat(np.concatenate(([cash], e_fill * (1.0 - u))), lengths)
    units = np.repeat(np.concatenate(([0.0], e_fill * u / ref)), lengths)
    pos_value = units * closes
    equity = cash_part + pos_value
    if pos[-1] != 0.0:  # forced exit at the last close
        equity[-1] -= abs(pos_value[-1]) * (k_sell if pos[-1] > 0 else k_buy)

    # Trades: a run of one sign opens where the sign starts and closes where it ends (a flip
    # does both at the same fill). Equity between the two legs of a flip: close all, then open.
    sign = np.sign(u)
    sign_prev = np.sign(u_prev)
    opened = (sign != 0) & (sign != sign_prev)
    closed = (sign_prev != 0) & (sign != sign_prev)
    between = e_before * (value - np.abs(held) * np.where(sign_prev > 0, k_sell, k_buy))
    entry_k = np.flatnonzero(opened)
    exit_k = np.flatnonzero(closed)
    entry_bar = fills[entry_k]
    direction = sign[entry_k].astype(np.int64)
    entry_equity = between[entry_k]
    exit_bar = fills[exit_k]
    exit_equity = between[exit_k]
    exit_price = opens[exit_bar] * (1.0 - slippage * direction[: len(exit_k)])
    if len(exit_k) < len(entry_k):  # still open after the last bar
        exit_bar = np.append(exit_bar, n - 1)
        exit_equity = np.append(exit_equity, equity[-1])
        exit_price = np.append(exit_price, closes[-1] * (1.0 - slippage * direction[-1]))
    entry_price = opens[entry_bar] * (1.0 + slippage * direction)

    sim = _Simulation(
        equity,
        pos,
        entry_bar,
        exit_bar,
        direction,
        entry_price,
        exit_price,
        entry_equity,
        exit_equity,
    )
    ruined_fill = (value <= 0) | (growth <= 0)
    # Without a short, cash and units are never negative, so equity stays positive.
    if ruined_fill.any() or (u.min(initial=0.0) < 0 and equity.min() <= 0):
        sim = _ruin(sim, opens, closes, fills[ruined_fill])
    return sim


def _ruin(
    sim: _Simulation, opens: np.ndarray, closes: np.ndarray, bad_fills: np.ndarray
) -> _Simulation:
    """Close the account at the first bar where its equity is not positive (rare: kept simple)."""
    at_close = np.flatnonzero(sim.equity <= 0)
    first_close = int(at_close[0]) if len(at_close) else len(closes)
    first_open = int(bad_fills[0]) if len(bad_fills) else len(closes)
    bar = min(first_close, first_open)
    on_open = first_open <= first_close  # wiped out at the open: nothing new is entered there
    equity = sim.equity.copy()
    equity[bar:] = 0.0
    pos = sim.positions.copy()
    pos[bar + 1 :] = 0.0
    keep = (sim.entry_bar < bar) | ((sim.entry_bar == bar) & (not on_open))
    exit_bar = sim.exit_bar[keep].copy()
    exit_price = sim.exit_price[keep].copy()
    exit_equity = sim.exit_equity[keep].copy()
    if len(exit_bar) and (exit_bar[-1] > bar or exit_equity[-1] <= 0):
        exit_bar[-1] = bar
        exit_price[-1] = opens[bar] if on_open else closes[bar]
        exit_equity[-1] = 0.0
    return _Simulation(
        equity,
        pos,
        sim.entry_bar[keep],
        exit_bar,
        sim.direction[keep],
        sim.entry_price[keep],
        exit_price,
        sim.entry_equity[keep],
        exit_equity,
    )
