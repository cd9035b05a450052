"""Backtest engine, statistics and equity plot: hand-computed cases and a loop reference."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from research_assets.core.backtest import (
    TRADE_COLUMNS,
    BacktestInputError,
    BacktestResult,
    run_backtest,
)
from research_assets.core.data import BUNDLED_DATA_DIR, load_bars
from research_assets.core.errors import ResearchError
from research_assets.core.metrics import (
    STAT_KEYS,
    compute_stats,
    json_safe,
    periods_per_year,
    summarize,
)
from research_assets.core.plots import equity_curve_png, png_markdown

C, S, CASH = 0.001, 0.0005, 10_000.0
OPEN = [100.0, 102.0, 104.0, 99.0, 101.0, 103.0]
CLOSE = [101.0, 103.0, 98.0, 100.0, 102.0, 105.0]


def make_bars(opens=OPEN, closes=CLOSE, freq="D") -> pd.DataFrame:
    index = pd.date_range("2024-01-01", periods=len(opens), freq=freq, tz="UTC", name="timestamp")
    opens, closes = np.asarray(opens, float), np.asarray(closes, float)
    return pd.DataFrame(
        {
            "open": opens,
            "high": np.maximum(opens, closes) + 1,
            "low": np.minimum(opens, closes) - 1,
            "close": closes,
            "volume": 1.0,
        },
        index=index,
    )


def run(signals, bars=None, **kw) -> BacktestResult:
    return run_backtest(
        make_bars() if bars is None else bars,
        np.asarray(signals, float),
        commission=kw.get("commission", C),
        slippage=kw.get("slippage", S),
        cash=kw.get("cash", CASH),
    )


def sma_signals(close: pd.Series, fast=10, slow=30, short=False) -> np.ndarray:
    above = (close.rolling(fast).mean() > close.rolling(slow).mean()).to_numpy()
    warm = close.rolling(slow).mean().isna().to_numpy()
    return np.where(warm, 0.0, np.where(above, 1.0, -1.0 if short else 0.0))


# --- hand-computed cases -------------------------------------------------------------------------


def test_one_long_trade_with_costs_gives_the_hand_computed_equity():
    r = run([1, 1, 0, 0, 0, 0])  # held during bars 1 and 2, sold at the open of bar 3
    buy = OPEN[1] * (1 + S)
    units = CASH / (buy * (1 + C))  # all cash, commission included
    sell = OPEN[3] * (1 - S)
    final = units * sell * (1 - C)
    expected = [CASH, units * CLOSE[1], units * CLOSE[2], final, final, final]
    np.testing.assert_allclose(r.equity.to_numpy(), expected, rtol=1e-12)
    assert r.positions.tolist() == [0, 1, 1, 0, 0, 0]
    assert list(r.trades.columns) == list(TRADE_COLUMNS)
    (trade,) = r.trades.to_dict("records")
    assert trade["entry_time"] == r.equity.index[1] and trade["exit_time"] == r.equity.index[3]
    assert trade["direction"] == 1
    assert trade["entry_price"] == pytest.approx(buy) and trade["exit_price"] == pytest.approx(sell)
    assert trade["pnl"] == pytest.approx(final - CASH)
    assert trade["return_pct"] == pytest.approx((final / CASH - 1) * 100)
    assert r.stats["Return [%]"] == pytest.approx((final / CASH - 1) * 100)
    assert r.stats["# Trades"] == 1 and r.stats["Exposure Time [%]"] == pytest.approx(200 / 6)


def test_one_short_trade_with_costs_gives_the_hand_computed_equity():
    r = run([-1, -1, 0, 0, 0, 0])
    sell = OPEN[1] * (1 - S)
    # Short units worth the whole post-fee equity at the fill's open:
    # cash_after = CASH + q * sell * (1 - C) and cash_after - q * OPEN[1] == q * OPEN[1].
    q = CASH / (2 * OPEN[1] - sell * (1 - C))
    cash_after = CASH + q * sell * (1 - C)
    assert cash_after - q * OPEN[1] == pytest.approx(q * OPEN[1])
    buy = OPEN[3] * (1 + S)
    final = cash_after - q * buy * (1 + C)
    expected = [CASH, cash_after - q * CLOSE[1], cash_after - q * CLOSE[2], final, final, final]
    np.testing.assert_allclose(r.equity.to_numpy(), expected, rtol=1e-12)
    (trade,) = r.trades.to_dict("records")
    assert trade["direction"] == -1
    assert trade["entry_price"] == pytest.approx(sell) and trade["exit_price"] == pytest.approx(buy)
    assert trade["pnl"] == pytest.approx(final - CASH)


def test_always_flat_keeps_the_cash_and_has_no_trades():
    r = run([0] * 6)
    assert (r.equity == CASH).all() and (r.positions == 0).all()
    assert r.trades.empty and list(r.trades.columns) == list(TRADE_COLUMNS)
    assert r.trades["entry_time"].dtype == r.equity.index.dtype  # typed even when empty
    s = r.stats
    assert s["Return [%]"] == 0 and s["Max. Drawdown [%]"] == 0 and s["# Trades"] == 0
    assert s["Exposure Time [%]"] == 0
    assert math.isnan(s["Win Rate [%]"]) and math.isnan(s["Profit Factor"])
    assert math.isnan(s["Sharpe Ratio"])  # a flat curve has no Sharpe ratio
    assert s["Buy & Hold Return [%]"] == pytest.approx((CLOSE[-1] / CLOSE[0] - 1) * 100)


def test_a_signal_on_the_last_bar_is_never_filled():
    r = run([0, 0, 0, 0, 0, 1])
    assert (r.equity == CASH).all() and r.trades.empty and (r.positions == 0).all()


def test_a_position_open_at_the_end_is_closed_at_the_last_close_with_costs():
    r = run([0, 0, 0, 1, 1, 1])  # bought at the open of bar 4, still held after bar 5
    units = CASH / (OPEN[4] * (1 + S) * (1 + C))
    exit_price = CLOSE[5] * (1 - S)
    final = units * exit_price * (1 - C)
    assert r.equity.iloc[4] == pytest.approx(units * CLOSE[4])
    assert r.equity.iloc[-1] == pytest.approx(final)  # after the exit, not merely marked
    assert r.positions.iloc[-1] == 1
    (trade,) = r.trades.to_dict("records")
    assert trade["exit_time"] == r.equity.index[-1]
    assert trade["exit_price"] == pytest.approx(exit_price)
    assert trade["pnl"] == pytest.approx(final - CASH)


def test_a_flip_is_a_close_followed_by_an_open():
    flip = run([1, -1, -1, 0, 0, 0])
    units = CASH / (OPEN[1] * (1 + S) * (1 + C))
    after_close = units * OPEN[2] * (1 - S) * (1 - C)
    q = after_close / (2 * OPEN[2] - OPEN[2] * (1 - S) * (1 - C))  # as in the short test
    cash_after = after_close + q * OPEN[2] * (1 - S) * (1 - C)
    assert flip.equity.iloc[2] == pytest.approx(cash_after - q * CLOSE[2], rel=1e-12)
    long, short = flip.trades.to_dict("records")
    assert (long["direction"], short["direction"]) == (1, -1)
    assert long["exit_time"] == short["entry_time"] == flip.equity.index[2]
    assert long["pnl"] == pytest.approx(after_close - CASH)
    assert long["pnl"] + short["pnl"] == pytest.approx(flip.equity.iloc[-1] - CASH)


def test_a_fraction_invests_that_share_of_the_post_fee_equity():
    r = run([0.5, 0.5, 0, 0, 0, 0])
    buy = OPEN[1] * (1 + S)
    # units * open == 0.5 * (cash left + units * open), cash left = CASH - units * buy * (1 + C)
    units = CASH / (OPEN[1] + buy * (1 + C))
    cash_left = CASH - units * buy * (1 + C)
    assert units * OPEN[1] == pytest.approx(0.5 * (cash_left + units * OPEN[1]))
    assert r.equity.iloc[1] == pytest.approx(cash_left + units * CLOSE[1], rel=1e-12)
    assert r.equity.iloc[3] == pytest.approx(
        cash_left + units * OPEN[3] * (1 - S) * (1 - C), rel=1e-12
    )


def test_resizing_trades_only_the_difference():
    # 0.5 then 1.0: the second fill buys with the remaining cash only, one trade in all.
    r = run([0.5, 1, 1, 0, 0, 0])
    units = CASH / (OPEN[1] + OPEN[1] * (1 + S) * (1 + C))
    cash_left = CASH - units * OPEN[1] * (1 + S) * (1 + C)
    units += cash_left / (OPEN[2] * (1 + S) * (1 + C))
    assert r.equity.iloc[2] == pytest.approx(units * CLOSE[2], rel=1e-12)
    assert len(r.trades) == 1


def test_a_wiped_out_short_stops_the_account_at_zero():
    bars = make_bars([100, 100, 150, 260, 300, 310], [100, 140, 250, 290, 305, 300])
    r = run([-1, -1, -1, -1, -1, -1], bars=bars)  # short ~100 units at 100; 250 at bar 2's close
    assert r.equity.iloc[1] > 0 and (r.equity.iloc[2:] == 0).all()
    assert (r.positions.iloc[3:] == 0).all()
    (trade,) = r.trades.to_dict("records")
    assert trade["exit_time"] == r.equity.index[2] and trade["exit_price"] == 250.0
    assert trade["pnl"] == pytest.approx(-CASH) and trade["return_pct"] == pytest.approx(-100)
    assert r.stats["Max. Drawdown [%]"] == pytest.approx(100)


# --- a per-bar loop reference, independent of the vectorised algebra -----------------------------


def reference_backtest(opens, closes, signals, commission, slippage, cash):
    """Plain cash-and-units bookkeeping, one bar at a time (flips as close + open)."""

    def trade_to(w, cash_now, units, price):
        # Units after a fill such that units * price == w * (cash + units * price) after costs.
        for side in (1.0, -1.0):
            fill = price * (1 + side * slippage)
            delta = (w * cash_now - units * price * (1 - w)) / (
                price * (1 - w) + w * fill * (1 + side * commission)
            )
            if delta * side >= 0:
                return cash_now - delta * fill * (1 + side * commission), units + delta
        raise AssertionError("no consistent side")

    n = len(closes)
    cash_now, units, held = cash, 0.0, 0.0
    equity, trades, entry_equity = np.empty(n), [], None
    for t in range(n):
        w = signals[t - 1] if t > 0 else 0.0
        if w != held:
            if held != 0 and np.sign(w) != np.sign(held):
                cash_now, units = trade_to(0.0, cash_now, units, opens[t])
                trades.append(cash_now - entry_equity)
            if w != 0 and np.sign(w) != np.sign(held):
                entry_equity = cash_now + units * opens[t]
            cash_now, units = trade_to(w, cash_now, units, opens[t])
            held = w
        equity[t] = cash_now + units * closes[t]
    if units:
        side = -np.sign(units)
        cash_now -= -units * closes[-1] * (1 + side * slippage) * (1 + side * commission)
        equity[-1] = cash_now
        trades.append(cash_now - entry_equity)
    return equity, np.array(trades)


@pytest.mark.parametrize("seed", range(6))
def test_matches_a_per_bar_loop_on_random_fractional_long_short_signals(seed):
    rng = np.random.default_rng(seed)
    n = 400
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    opens = closes * np.exp(rng.normal(0, 0.003, n))
    levels = np.array([-1, -0.5, -0.25, 0, 0, 0.3, 0.5, 1])
    signals = np.repeat(rng.choice(levels, n // 4), 4)  # runs, so some bars hold
    signals[rng.random(n) < 0.1] = 0.0
    bars = make_bars(opens, closes, freq="h")
    r = run_backtest(bars, signals, commission=0.002, slippage=0.001, cash=CASH)
    equity, pnl = reference_backtest(opens, closes, signals, 0.002, 0.001, CASH)
    np.testing.assert_allclose(r.equity.to_numpy(), equity, rtol=1e-10)
    np.testing.assert_allclose(r.trades["pnl"].to_numpy(), pnl, rtol=1e-8, atol=1e-8)


# --- input validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signals", "kwargs", "message"),
    [
        (np.zeros(5), {}, r"signals has 5 values but bars has 6 rows"),
        ([0, 0, np.nan, 0, 0, 0], {}, r"within \[-1, 1\]; value 2 \(2024-01-03.*\) is nan"),
        ([0, 1.5, 0, 0, 0, 0], {}, r"value 1 .* is 1.5"),
        ([0, 0, 0, -np.inf, 0, 0], {}, r"value 3 .* is -inf"),
        (np.zeros((6, 1)), {}, r"one-dimensional, got shape \(6, 1\)"),
        (["a"] * 6, {}, r"signals must be numbers"),
        (np.zeros(6), {"commission": -0.001}, r"commission=-0.001 must be a fraction"),
        (np.zeros(6), {"slippage": 0.5}, r"slippage=0.5 must be a fraction .* between 0 and 0.1"),
        (np.zeros(6), {"cash": 0.0}, r"cash=0.0 must be a positive finite amount"),
    ],
)
def test_bad_signals_and_settings_are_rejected_precisely(signals, kwargs, message):
    with pytest.raises(BacktestInputError, match=message) as info:
        run_backtest(make_bars(), signals, **kwargs)
    assert isinstance(info.value, ValueError) and isinstance(info.value, ResearchError)


def test_bad_bars_are_rejected_precisely():
    bars = make_bars()
    with pytest.raises(BacktestInputError, match=r"bars lacks column\(s\) open; it has"):
        run_backtest(bars.drop(columns="open"), np.zeros(6))
    with pytest.raises(BacktestInputError, match=r"DatetimeIndex, got RangeIndex"):
        run_backtest(bars.reset_index(drop=True), np.zeros(6))
    with pytest.raises(BacktestInputError, match=r"sorted by time"):
        run_backtest(bars.iloc[::-1], np.zeros(6))
    with pytest.raises(BacktestInputError, match=r"bars is empty"):
        run_backtest(bars.iloc[:0], np.zeros(0))
    broken = bars.copy()
    broken.loc[broken.index[2], "close"] = np.nan
    with pytest.raises(BacktestInputError, match=r"bars close must be positive and finite; row 2"):
        run_backtest(broken, np.zeros(6))
    with pytest.raises(BacktestInputError, match=r"signals index differs from bars index"):
        run_backtest(bars, pd.Series(np.zeros(6)))


def test_an_aligned_series_of_signals_is_accepted():
    bars = make_bars()
    signals = pd.Series([1.0, 1, 0, 0, 0, 0], index=bars.index)
    assert run_backtest(bars, signals).equity.equals(run_backtest(bars, signals.to_numpy()).equity)


# --- statistics ---------------------------------------------------------------------------------


def curve(values, freq="D"):
    index = pd.date_range("2024-01-01", periods=len(values), freq=freq, tz="UTC")
    return pd.Series(np.asarray(values, float), index=index)


def test_stats_on_a_known_curve():
    equity = curve([100, 120, 90, 95, 130, 117])
    bars = pd.DataFrame({"close": [10, 11, 12, 13, 14, 15.0]}, index=equity.index)
    trades = pd.DataFrame({"pnl": [30.0, -10.0, -5.0, 2.0]})
    positions = pd.Series([0, 1, 1, 0, -1, 0.5], index=equity.index)
    s = compute_stats(equity, trades, bars, positions)
    assert set(s) == set(STAT_KEYS) and all(type(v) is float for v in s.values())
    assert s["Return [%]"] == pytest.approx(17.0)
    assert s["Buy & Hold Return [%]"] == pytest.approx(50.0)
    assert s["Max. Drawdown [%]"] == pytest.approx(25.0)  # 120 -> 90, reported as a magnitude
    assert s["Win Rate [%]"] == pytest.approx(50.0)
    assert s["Profit Factor"] == pytest.approx(32.0 / 15.0)
    assert s["# Trades"] == 4.0 and s["Exposure Time [%]"] == pytest.approx(400 / 6)
    returns = equity.to_numpy()[1:] / equity.to_numpy()[:-1] - 1
    ppy = periods_per_year(equity.index)
    assert ppy == pytest.approx(365.25)
    assert s["Sharpe Ratio"] == pytest.approx(returns.mean() / returns.std(ddof=1) * ppy**0.5)
    downside = np.sqrt(np.mean(np.minimum(returns, 0) ** 2))
    assert s["Sortino Ratio"] == pytest.approx(returns.mean() / downside * ppy**0.5)
    annual = 1.17 ** (ppy / 5) - 1
    assert s["Calmar Ratio"] == pytest.approx(annual / 0.25)


def test_profit_factor_and_win_rate_edge_cases():
    equity = curve([100, 101, 102])
    bars = pd.DataFrame({"close": [1.0, 1, 1]}, index=equity.index)
    flat = pd.Series(0.0, index=equity.index)
    wins = compute_stats(equity, pd.DataFrame({"pnl": [1.0, 1.0]}), bars, flat)
    assert wins["Profit Factor"] == math.inf and wins["Win Rate [%]"] == 100.0
    assert wins["Max. Drawdown [%]"] == 0.0 and wins["Calmar Ratio"] == math.inf
    assert wins["Sortino Ratio"] == math.inf  # no down bar at all
    losses = compute_stats(equity, pd.DataFrame({"pnl": [-1.0]}), bars, flat)
    assert losses["Profit Factor"] == 0.0 and losses["Win Rate [%]"] == 0.0


def test_the_backtests_own_stats_equal_compute_stats_on_its_outputs():
    bars = load_bars("BTCUSD", "1d", directory=BUNDLED_DATA_DIR)
    r = run_backtest(bars, sma_signals(bars["close"], short=True))
    again = compute_stats(r.equity, r.trades, bars, r.positions)
    assert again == pytest.approx(r.stats, nan_ok=True)
    # every position is closed by the end, so the return is the sum of the trades' pnl
    assert r.trades["pnl"].sum() == pytest.approx(r.equity.iloc[-1] - r.equity.iloc[0])


@pytest.mark.parametrize(
    ("symbol", "timeframe", "low", "high"),
    [
        ("AAPL", "1d", 245, 258),
        ("SP500", "1d", 245, 258),
        ("BTCUSD", "1d", 355, 366),
        ("EURUSD", "1h", 6000, 6400),
        ("BTCUSD", "1h", 8700, 8790),
    ],
)
def test_periods_per_year_from_the_data_itself(symbol, timeframe, low, high):
    bars = load_bars(symbol, timeframe, directory=BUNDLED_DATA_DIR)
    assert low <= periods_per_year(bars.index) <= high


def test_periods_per_year_ignores_the_time_unit_and_needs_two_bars():
    index = pd.date_range("2020-01-01", "2024-01-01", freq="D", tz="UTC")
    assert periods_per_year(index.as_unit("s")) == periods_per_year(index.as_unit("ns")) == 365.25
    assert math.isnan(periods_per_year(index[:1]))


def test_summarize_pools_trades_and_takes_the_worst_drawdown():
    stats = {
        "A/1d": {
            "Return [%]": 10.0,
            "Sharpe Ratio": 1.0,
            "Max. Drawdown [%]": 12.0,
            "Win Rate [%]": 60.0,
            "# Trades": 10.0,
            "Profit Factor": math.inf,
            "Exposure Time [%]": 50.0,
        },
        "B/1h": {
            "Return [%]": -4.0,
            "Sharpe Ratio": 0.5,
            "Max. Drawdown [%]": 30.0,
            "Win Rate [%]": 40.0,
            "# Trades": 30.0,
            "Profit Factor": 1.5,
            "Exposure Time [%]": 70.0,
        },
        "C/1d": {
            "Return [%]": 0.0,
            "Sharpe Ratio": math.nan,
            "Max. Drawdown [%]": 0.0,
            "Win Rate [%]": math.nan,
            "# Trades": 0.0,
            "Profit Factor": math.nan,
            "Exposure Time [%]": 0.0,
        },
    }
    s = summarize(stats)
    assert s["# Trades"] == 40.0
    assert s["Win Rate [%]"] == pytest.approx(45.0)  # (6 + 12) / 40, not (60 + 40) / 2
    assert s["Max. Drawdown [%]"] == 30.0
    assert s["Sharpe Ratio"] == pytest.approx(0.75)  # NaN (flat dataset) left out
    assert s["Return [%]"] == pytest.approx(2.0)
    assert s["Profit Factor"] == pytest.approx(1.5)  # inf left out
    assert s["Exposure Time [%]"] == pytest.approx(40.0)
    assert list(s) == [k for k in STAT_KEYS if k in s]
    nothing = summarize({"C/1d": stats["C/1d"]})
    assert math.isnan(nothing["Win Rate [%]"]) and math.isnan(nothing["Sharpe Ratio"])
    assert summarize({}) == {}


def test_json_safe_turns_nan_and_inf_into_none():
    safe = json_safe(
        {"a": math.nan, "b": math.inf, "c": -math.inf, "d": np.float64(1.5), "e": None, "f": 3}
    )
    assert safe == {"a": None, "b": None, "c": None, "d": 1.5, "e": None, "f": 3.0}
    assert type(safe["d"]) is float
    json.dumps(safe, allow_nan=False)
    r = run([0] * 6)
    json.dumps(json_safe(r.stats), allow_nan=False)


# --- equity plot --------------------------------------------------------------------------------


def test_equity_png_is_small_deterministic_and_leaves_matplotlib_alone():
    import matplotlib

    backend = matplotlib.get_backend()
    bars = load_bars("BTCUSD", "1h", directory=BUNDLED_DATA_DIR)
    r = run_backtest(bars, sma_signals(bars["close"]))
    equities = {"BTCUSD/1h": r.equity, "flat": curve([5.0] * 50, freq="h")}
    png = equity_curve_png(equities, title="backtest")
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) < 80_000
    assert png == equity_curve_png(equities, title="backtest")
    assert equity_curve_png({}).startswith(b"\x89PNG")
    assert matplotlib.get_backend() == backend
    md = png_markdown(png, alt="backtest equity")
    assert md.startswith("![backtest equity](data:image/png;base64,iVBOR") and md.endswith(")")
