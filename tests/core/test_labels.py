"""Labels on hand-made price paths, and the vectorised zigzag against a plain loop."""

import numpy as np
import pandas as pd
import pytest

from research_assets.core import labels as labels_mod
from research_assets.core.labels import DOWN, FLAT, UP, make_labels
from research_assets.core.spec import ForwardReturnLabels, ZigzagLabels

nan = float("nan")


def closes(*prices: float) -> pd.DataFrame:
    idx = pd.date_range("2024-01-01", periods=len(prices), freq="h", tz="UTC", name="timestamp")
    return pd.DataFrame({"close": np.array(prices, dtype=float)}, index=idx)


def zigzag(threshold: float, lookahead: int) -> ZigzagLabels:
    return ZigzagLabels(source="zigzag", threshold=threshold, lookahead=lookahead)


def fwd(horizon: int, threshold: float) -> ForwardReturnLabels:
    return ForwardReturnLabels(source="forward_return", horizon=horizon, threshold=threshold)


def same(a, b) -> bool:
    return np.array_equal(np.asarray(a, dtype=float), np.asarray(b, dtype=float), equal_nan=True)


def test_zigzag_up_first_down_first_flat():
    # t0: +1%, +3% (up hit), then -3%: UP.  t1: +2%, -4% -> 0.019..., then down: DOWN.
    bars = closes(100, 101, 103, 97, 97.5, 97.6, 97.7)
    got = make_labels(bars, zigzag(0.025, 3))
    assert got.name == "label" and got.index.equals(bars.index)
    # t2: 103 -> 97 is -5.8%: DOWN. t3: 97 -> 97.7 is +0.7%: FLAT. Last 3 have no full horizon.
    assert same(got, [UP, DOWN, DOWN, FLAT, nan, nan, nan])


def test_zigzag_only_counts_moves_within_the_lookahead():
    bars = closes(100, 100.5, 100.2, 100.1, 110, 100, 100)
    assert same(make_labels(bars, zigzag(0.05, 3)), [FLAT, UP, UP, UP, nan, nan, nan])
    assert same(make_labels(bars, zigzag(0.05, 4)), [UP, UP, UP, nan, nan, nan, nan])


def test_zigzag_threshold_is_inclusive_and_relative_to_close_t():
    bars = closes(100, 102.5, 99, 99)
    # Exactly +2.5% counts as a move of 2.5%, despite float rounding of 102.5 / 100 - 1.
    assert make_labels(bars, zigzag(0.025, 2)).iloc[0] == UP
    assert make_labels(bars, zigzag(0.026, 2)).iloc[0] == FLAT
    assert make_labels(closes(100, 97.5, 101, 101), zigzag(0.025, 2)).iloc[0] == DOWN


def test_forward_return():
    bars = closes(100, 103, 102, 101, 98, 98)
    assert same(make_labels(bars, fwd(1, 0.01)), [UP, FLAT, FLAT, DOWN, FLAT, nan])
    assert same(make_labels(bars, fwd(2, 0.01)), [UP, DOWN, DOWN, DOWN, nan, nan])
    # threshold 0: an unchanged price is FLAT, any change is a direction.
    assert same(make_labels(bars, fwd(1, 0.0)), [UP, DOWN, DOWN, DOWN, FLAT, nan])


def test_series_shorter_than_the_horizon_is_all_nan():
    bars = closes(100, 101, 102)
    assert make_labels(bars, zigzag(0.01, 3)).isna().all()
    assert make_labels(bars, fwd(5, 0.0)).isna().all()


def _zigzag_loop(close: np.ndarray, thr: float, look: int) -> np.ndarray:
    out = np.full(len(close), np.nan)
    for t in range(len(close) - look):
        out[t] = FLAT
        for k in range(1, look + 1):
            r = close[t + k] / close[t] - 1.0
            if r >= thr - 1e-12:
                out[t] = UP
                break
            if r <= -thr + 1e-12:
                out[t] = DOWN
                break
    return out


def _random_closes(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return closes(*(100 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))))


@pytest.mark.parametrize("thr,look", [(0.005, 24), (0.01, 5), (0.002, 1), (0.03, 60)])
def test_zigzag_matches_a_plain_loop(thr, look, monkeypatch):
    bars = _random_closes(3000, seed=look)
    expected = _zigzag_loop(bars["close"].to_numpy(), thr, look)
    assert same(make_labels(bars, zigzag(thr, look)), expected)
    # Small chunks exercise the chunk boundaries.
    monkeypatch.setattr(labels_mod, "_CHUNK_CELLS", 7 * look)
    assert same(make_labels(bars, zigzag(thr, look)), expected)


def test_forward_return_matches_pandas():
    bars = _random_closes(2000)
    r = bars["close"].shift(-7) / bars["close"] - 1
    expected = np.select([r > 0.01, r < -0.01], [UP, DOWN], FLAT).astype(float)
    expected[r.isna().to_numpy()] = np.nan
    assert same(make_labels(bars, fwd(7, 0.01)), expected)
