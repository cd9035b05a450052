"""Speed and agreement of our backtest engine against backtesting.py and vectorbt.

Loads BTCUSD/1h (~20k bars) with ``load_bars``, derives SMA-crossover signals (long while the
fast SMA is above the slow one, else flat) and times, best of several repeats:

* ours: ``run_backtest`` in full, i.e. validation, simulation, the equity and position Series,
  the closed-trade table AND the statistics;
* backtesting.py: ``FractionalBacktest(...).run()`` (its own stats included, as it always is),
  with costs mapped so that its equity equals ours (see tests/core/test_backtest_crosscheck.py);
* vectorbt, if importable: ``Portfolio.from_signals`` on numpy arrays, ``.value()`` (the equity
  curve) and ``.trades.records_readable`` (the closed-trade table), after a warm-up call so numba
  compilation is not counted. Its statistics are NOT timed, which favours vectorbt; the summary
  also shows the equity-only time (from_signals + value()), the most favourable case for it.
  numpy arrays, because with a tz-aware index vectorbt spends most of its time converting
  timestamps.

It then reports the largest relative difference between our equity and backtesting.py's (bar by
bar; the last bar is left out when a position is still open there, because backtesting.py fills
that forced exit at the last open and we at the last close). The last line of stdout is one JSON
object; the other lines are a human summary.

Usage::

    .venv/bin/python benchmarks/backtest_engines.py [--json] [--repeats N]

``--json`` prints only the JSON line. vectorbt is optional (its fields are null without it);
it pulls in numba and scipy, so it is best installed in a separate environment and run as
``PYTHONPATH=. /path/to/venv/bin/python benchmarks/backtest_engines.py``.
"""

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

try:
    import research_assets  # noqa: F401
except ImportError:  # run as a script from a checkout that is not pip-installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from research_assets.core.backtest import run_backtest  # noqa: E402
from research_assets.core.data import load_bars  # noqa: E402

COMMISSION = 0.001
SLIPPAGE = 0.0005
CASH = 10_000.0
TARGET_VS_BACKTESTING_PY = 100.0
TARGET_VS_VECTORBT = 10.0
EQUITY_TOLERANCE = 1e-6


def sma_signals(close: pd.Series, fast: int = 10, slow: int = 30) -> np.ndarray:
    """1.0 while the fast SMA is above the slow SMA, else 0.0 (also while they warm up)."""
    above = close.rolling(fast).mean() > close.rolling(slow).mean()  # NaN compares False
    return above.to_numpy(dtype=np.float64)


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Fastest of ``repeats`` wall-clock timings of ``fn()``, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def backtesting_py_runner(bars: pd.DataFrame, signals: np.ndarray) -> Callable[[], pd.Series]:
    """A callable running backtesting.py on long-only ``signals`` with our cost model.

    Our costs per fill (price * (1 +- slippage), then commission) become backtesting.py's
    ``commission`` (charged on entry and exit) plus ``spread`` (entry only) so that every cash
    flow agrees; the order size fraction makes its all-in size equal ours. The derivation is in
    tests/core/test_backtest_crosscheck.py.
    """
    os.environ.setdefault("TQDM_DISABLE", "1")  # its progress bar: noise on stderr, and slower
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest

    class FollowSignals(Strategy):
        fraction = 0.5

        def init(self) -> None:
            pass

        def next(self) -> None:
            i = len(self.data) - 1
            target, before = signals[i], signals[i - 1]
            if target == before:
                return
            if before != 0:
                self.position.close()
            if target > 0:
                self.buy(size=self.fraction)

    s, c = SLIPPAGE, COMMISSION
    commission = s + c - s * c
    spread = (1 + s) * (1 + c) / (1 + commission) - 1
    fraction = (1 + spread + commission) / ((1 + s) * (1 + c))
    data = bars.rename(columns=str.capitalize)

    def run() -> pd.Series:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bt = FractionalBacktest(
                data,
                FollowSignals,
                cash=CASH,
                commission=commission,
                spread=spread,
                fractional_unit=1e-10,
                finalize_trades=True,
            )
            return bt.run(fraction=fraction)

    return run


def vectorbt_runner(
    bars: pd.DataFrame, signals: np.ndarray, with_trades: bool = True
) -> Callable[[], tuple[np.ndarray, pd.DataFrame | None]] | None:
    """A callable returning vectorbt's equity (and trades) for the same fills and costs, or None.

    With ``with_trades`` it also builds vectorbt's closed-trade table, as ``run_backtest`` does.
    """
    try:
        import vectorbt as vbt
    except ImportError:
        return None
    held = np.zeros(len(signals))
    held[1:] = signals[:-1]  # the position during each bar: filled at that bar's open
    before = np.zeros(len(signals))
    before[1:] = held[:-1]
    entries = (held > 0) & (before <= 0)
    exits = (held <= 0) & (before > 0)
    close = bars["close"].to_numpy()
    price = bars["open"].to_numpy()

    def run() -> tuple[np.ndarray, pd.DataFrame | None]:
        pf = vbt.Portfolio.from_signals(
            close=close,
            entries=entries,
            exits=exits,
            price=price,
            size=np.inf,
            fees=COMMISSION,
            slippage=SLIPPAGE,
            init_cash=CASH,
            freq="1h",
        )
        trades = pf.trades.records_readable if with_trades else None
        return np.asarray(pf.value(), dtype=np.float64).ravel(), trades

    return run


def max_rel_diff(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.max(np.abs(ours / theirs - 1.0)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--repeats", type=int, default=30, help="timings of our engine")
    parser.add_argument("--symbol", default="BTCUSD")
    parser.add_argument("--timeframe", default="1h")
    args = parser.parse_args(argv)

    bars = load_bars(args.symbol, args.timeframe)
    signals = sma_signals(bars["close"])
    n = len(bars)

    def ours() -> object:
        return run_backtest(bars, signals, commission=COMMISSION, slippage=SLIPPAGE, cash=CASH)

    result = run_backtest(bars, signals, commission=COMMISSION, slippage=SLIPPAGE, cash=CASH)
    t_ours = best_time(ours, args.repeats)

    bt_run = backtesting_py_runner(bars, signals)
    bt_stats = bt_run()
    t_bt = best_time(bt_run, max(2, args.repeats // 10))
    theirs = bt_stats["_equity_curve"]["Equity"].to_numpy()
    mine = result.equity.to_numpy()
    open_at_end = result.positions.iloc[-1] != 0
    compared = slice(0, n - 1) if open_at_end else slice(0, n)
    diff = max_rel_diff(mine[compared], theirs[compared])

    vbt_run = vectorbt_runner(bars, signals)
    t_vbt = t_vbt_equity = vbt_diff = None
    if vbt_run is not None:
        vbt_equity, _ = vbt_run()  # warm-up: numba compiles on the first call
        t_vbt = best_time(vbt_run, max(3, args.repeats // 3))
        vbt_diff = max_rel_diff(mine[compared], vbt_equity[compared])
        equity_only = vectorbt_runner(bars, signals, with_trades=False)
        assert equity_only is not None
        t_vbt_equity = best_time(equity_only, max(3, args.repeats // 3))

    report = {
        "bars": n,
        "engine_bars_per_s": n / t_ours,
        "backtesting_py_bars_per_s": n / t_bt,
        "vectorbt_bars_per_s": None if t_vbt is None else n / t_vbt,
        "ratio_vs_backtesting_py": t_bt / t_ours,
        "ratio_vs_vectorbt": None if t_vbt is None else t_vbt / t_ours,
        "max_rel_equity_diff": diff,
    }
    if not args.json:
        trades = len(result.trades)
        print(
            f"{args.symbol}/{args.timeframe}: {n} bars, SMA 10/30 long-only, {trades} trades, "
            f"commission {COMMISSION}, slippage {SLIPPAGE}"
        )
        print(
            f"ours (run_backtest incl. trades + stats): {t_ours * 1e3:8.3f} ms "
            f"({n / t_ours:,.0f} bars/s)"
        )
        print(
            f"backtesting.py FractionalBacktest.run:    {t_bt * 1e3:8.3f} ms "
            f"-> ours is {t_bt / t_ours:,.0f}x faster (target >= {TARGET_VS_BACKTESTING_PY:g}x)"
        )
        if t_vbt is None or t_vbt_equity is None:
            print("vectorbt: not installed (fields null)")
        else:
            print(
                f"vectorbt from_signals + value() + trades: {t_vbt * 1e3:8.3f} ms "
                f"-> ours is {t_vbt / t_ours:,.1f}x faster (target >= {TARGET_VS_VECTORBT:g}x); "
                f"equity max rel diff vs ours {vbt_diff:.2e}"
            )
            print(
                f"vectorbt from_signals + value() only:    {t_vbt_equity * 1e3:8.3f} ms "
                f"-> ours is {t_vbt_equity / t_ours:,.1f}x faster (equity only, not in the JSON)"
            )
        scope = "all bars except the last (position open at the end)" if open_at_end else "all bars"
        verdict = "OK" if diff <= EQUITY_TOLERANCE else "MISMATCH"
        print(
            f"equity vs backtesting.py over {scope}: max rel diff {diff:.2e} "
            f"(tolerance {EQUITY_TOLERANCE:g}) {verdict}"
        )
    print(json.dumps(report))
    return 0 if diff <= EQUITY_TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
