"""Speed of the feature pipeline's vectorised parts: zigzag labels and every indicator.

These targets used to be wall-clock asserts inside unit tests, which flake on a loaded machine
(two cores, four pytest workers); they are measured here instead, best of several repeats:

* zigzag labels (threshold 0.005, lookahead 24) on 20,000 bars: target under 50 ms;
* every indicator of the catalogue at its default parameters on 100,000 bars: target under 1 s.

Usage::

    .venv/bin/python benchmarks/features_speed.py [--json] [--repeats N]

The last line of stdout is one JSON object; ``--json`` prints only that line.
"""

import argparse
import json

import numpy as np
import pandas as pd
from backtest_engines import best_time  # the sibling benchmark's timer (script directory)

from research_assets.core.indicator_catalog import CATALOG
from research_assets.core.indicators import compute_indicators
from research_assets.core.labels import make_labels
from research_assets.core.spec import IndicatorSpec, ZigzagLabels

ZIGZAG_BARS, ZIGZAG_TARGET_S = 20_000, 0.05
INDICATOR_BARS, INDICATOR_TARGET_S = 100_000, 1.0


def random_bars(n: int, seed: int = 0, vol: float = 0.004) -> pd.DataFrame:
    """A geometric random walk with consistent OHLC and positive volume."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, vol, n)))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, vol / 2, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, vol / 2, n)))
    idx = pd.date_range("2020-01-01", periods=n, freq="h", tz="UTC", name="timestamp")
    return pd.DataFrame(
        {
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": rng.uniform(100, 1000, n),
        },
        index=idx,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    bars = random_bars(ZIGZAG_BARS)
    labels = ZigzagLabels(source="zigzag", threshold=0.005, lookahead=24)
    make_labels(bars, labels)  # warm-up
    zigzag_s = best_time(lambda: make_labels(bars, labels), args.repeats)

    wide = random_bars(INDICATOR_BARS)
    every = {f"{name}_x": IndicatorSpec(type=name) for name in CATALOG}
    compute_indicators(wide.iloc[:100], every)  # warm imports
    indicators_s = best_time(lambda: compute_indicators(wide, every), args.repeats)

    result = {
        "zigzag_ms_20k_bars": round(zigzag_s * 1000, 2),
        "zigzag_within_target": zigzag_s < ZIGZAG_TARGET_S,
        "all_indicators_s_100k_bars": round(indicators_s, 3),
        "indicators_within_target": indicators_s < INDICATOR_TARGET_S,
    }
    if not args.json:
        print(
            f"zigzag labels, {ZIGZAG_BARS:,} bars: {zigzag_s * 1000:.1f} ms "
            f"(target < {ZIGZAG_TARGET_S * 1000:.0f} ms)"
        )
        print(
            f"{len(every)} indicators, {INDICATOR_BARS:,} bars: {indicators_s:.3f} s "
            f"(target < {INDICATOR_TARGET_S:.0f} s)"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
