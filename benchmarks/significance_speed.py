"""Speed of the significance statistics on a real series: 1,000 random-timing nulls on 20,000
bars (target: under 1 s), every benchmark statistic of one backtest, and the pooled figures of
a strategy on two datasets (BTCUSD/1h and EURUSD/1h, 26k timestamps together).

Loads BTCUSD/1h (20,111 bars), backtests SMA(10)/SMA(30) crossover signals, then times, best of
several repeats, ``random_timing_p_value`` with 1,000 nulls and ``benchmark_stats`` in full.

Usage::

    .venv/bin/python benchmarks/significance_speed.py [--json] [--repeats N]

The last line of stdout is one JSON object; ``--json`` prints only that line.
"""

import argparse
import json

import numpy as np
from backtest_engines import best_time, sma_signals  # the sibling benchmark (script directory)

from research_assets.core.backtest import run_backtest
from research_assets.core.data import load_bars
from research_assets.core.metrics import periods_per_year
from research_assets.core.significance import (
    PooledSeries,
    benchmark_stats,
    pooled_significance,
    random_timing_p_value,
)

NULLS, TARGET_S = 1000, 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    bars = load_bars("BTCUSD", "1h")
    result = run_backtest(bars, sma_signals(bars["close"], 10, 30))
    positions = result.positions.to_numpy()
    close = bars["close"].to_numpy()
    market = np.diff(close) / close[:-1]
    p_value = random_timing_p_value(positions[1:], market, nulls=NULLS)
    nulls_s = best_time(
        lambda: random_timing_p_value(positions[1:], market, nulls=NULLS), args.repeats
    )
    ppy = periods_per_year(bars.index)
    equity = result.equity.to_numpy()
    stats = benchmark_stats(equity, close, positions, ppy, trials=20, sharpe_variance=0.5)
    all_s = best_time(
        lambda: benchmark_stats(equity, close, positions, ppy, trials=20, sharpe_variance=0.5),
        args.repeats,
    )
    parts = []
    for symbol in ("BTCUSD", "EURUSD"):
        b = load_bars(symbol, "1h")
        r = run_backtest(b, sma_signals(b["close"], 10, 30))
        parts.append(
            PooledSeries(
                b.index, r.equity.to_numpy(), b["close"].to_numpy(), r.positions.to_numpy()
            )
        )
    pooled_s = best_time(
        lambda: pooled_significance(parts, trials=20, sharpe_variance=0.5), args.repeats
    )
    out = {
        "bars": len(bars),
        "trades": int(result.stats["# Trades"]),
        "nulls": NULLS,
        "random_timing_s": round(nulls_s, 4),
        "within_target": nulls_s < TARGET_S,
        "benchmark_stats_s": round(all_s, 4),
        "p_value": round(p_value, 4),
        "deflated_sharpe": round(stats["Deflated Sharpe Ratio"], 4),
        "pooled_two_datasets_s": round(pooled_s, 4),
    }
    if not args.json:
        print(
            f"{NULLS} random timings on {len(bars):,} bars ({out['trades']} trades): "
            f"{nulls_s * 1000:.1f} ms (target < {TARGET_S:.0f} s); p-value {p_value:.3f}"
        )
        print(f"every benchmark statistic of one backtest: {all_s * 1000:.1f} ms")
        print(
            f"pooled PSR, DSR and p-value ({NULLS} nulls) of two datasets: {pooled_s * 1000:.1f} ms"
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
