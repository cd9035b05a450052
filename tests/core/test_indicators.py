"""Indicator columns: names, normalisation, warm-up and no look-ahead."""

import numpy as np
import pandas as pd
import pytest
import talib

from research_assets.core.errors import SpecError
from research_assets.core.indicator_catalog import CATALOG
from research_assets.core.indicators import compute_indicators
from research_assets.core.spec import IndicatorSpec


def make_bars(n: int = 2000, seed: int = 0, vol: float = 0.004) -> pd.DataFrame:
    """Geometric random walk with consistent OHLC and positive volume."""
    rng = np.random.default_rng(seed)
    close = 1.1 * np.exp(np.cumsum(rng.normal(0, vol, n)))
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


ALL_DEFAULTS = {f"{name}_x": IndicatorSpec(type=name) for name in CATALOG}


def test_every_catalog_output_is_a_column_in_order():
    bars = make_bars()
    frame = compute_indicators(bars, ALL_DEFAULTS)
    expected = [f"{name}_x.{out}" for name, info in CATALOG.items() for out in info.outputs]
    assert list(frame.columns) == expected
    assert frame.index.equals(bars.index)
    assert all(frame.dtypes == np.float64)


def test_warm_up_is_nan_then_values_are_finite():
    bars = make_bars()
    frame = compute_indicators(bars, ALL_DEFAULTS)
    for name, info in CATALOG.items():
        ind = ALL_DEFAULTS[f"{name}_x"]
        lookback = info.lookback(ind.params)
        for out in info.outputs:
            col = frame[f"{name}_x.{out}"]
            assert np.isnan(col.iloc[0]), f"{name}.{out} should be NaN on the first bar"
            assert np.isfinite(col.iloc[lookback:]).all(), f"{name}.{out} has gaps after warm-up"


def test_bounded_oscillators_stay_in_range():
    frame = compute_indicators(make_bars(), ALL_DEFAULTS).dropna()
    for col in ("rsi_x.value", "stoch_x.k", "stoch_x.d", "adx_x.value", "mfi_x.value"):
        assert frame[col].between(0, 100).all(), col
    assert frame["willr_x.value"].between(-100, 0).all()
    assert frame["atr_x.value"].gt(0).all()


def test_sma_and_ema_are_distance_from_close():
    bars = make_bars()
    frame = compute_indicators(
        bars, {"s": IndicatorSpec(type="sma", period=20), "e": IndicatorSpec(type="ema", period=10)}
    )
    close = bars["close"]
    expected_sma = close / close.rolling(20).mean() - 1
    np.testing.assert_allclose(frame["s.value"], expected_sma, rtol=0, atol=1e-12)
    # TA-Lib seeds its EMA with an SMA, pandas with the first value: compare once converged.
    expected_ema = close / close.ewm(span=10, adjust=False).mean() - 1
    np.testing.assert_allclose(frame["e.value"].iloc[300:], expected_ema.iloc[300:], atol=1e-12)


def test_bbands_outputs_match_a_pandas_computation():
    bars = make_bars()
    frame = compute_indicators(bars, {"bb": IndicatorSpec(type="bbands", period=20, nbdev=2.5)})
    close = bars["close"]
    mid = close.rolling(20).mean()
    sd = close.rolling(20).std(ddof=0)
    upper, lower = mid + 2.5 * sd, mid - 2.5 * sd
    # Rolling sums in TA-Lib and pandas round differently.
    tol = {"rtol": 1e-7, "atol": 1e-9}
    np.testing.assert_allclose(frame["bb.percent_b"], (close - lower) / (upper - lower), **tol)
    np.testing.assert_allclose(frame["bb.width"], (upper - lower) / mid, **tol)
    np.testing.assert_allclose(frame["bb.upper"], upper / close - 1, **tol)
    np.testing.assert_allclose(frame["bb.middle"], mid / close - 1, **tol)
    np.testing.assert_allclose(frame["bb.lower"], lower / close - 1, **tol)


def test_macd_and_atr_are_divided_by_close():
    bars = make_bars()
    frame = compute_indicators(
        bars, {"m": IndicatorSpec(type="macd"), "a": IndicatorSpec(type="atr", period=7)}
    )
    c, h, lo = (bars[k].to_numpy() for k in ("close", "high", "low"))
    macd, signal, hist = talib.MACD(c, 12, 26, 9)
    np.testing.assert_allclose(frame["m.macd"], macd / c)
    np.testing.assert_allclose(frame["m.signal"], signal / c)
    np.testing.assert_allclose(frame["m.hist"], hist / c)
    np.testing.assert_allclose(frame["a.value"], talib.ATR(h, lo, c, 7) / c)


def test_values_do_not_depend_on_later_bars():
    bars = make_bars(1500)
    full = compute_indicators(bars, ALL_DEFAULTS)
    prefix = compute_indicators(bars.iloc[:900], ALL_DEFAULTS)
    pd.testing.assert_frame_equal(full.iloc[:900], prefix)


def test_flat_prices_give_finite_values():
    bars = make_bars(200)
    for col in ("open", "high", "low", "close"):
        bars[col] = 1.25
    frame = compute_indicators(bars, {"bb": IndicatorSpec(type="bbands")}).dropna()
    assert (frame["bb.percent_b"] == 0.5).all()
    assert (frame["bb.width"] == 0.0).all()


def test_short_and_empty_series():
    bars = make_bars(10)
    frame = compute_indicators(bars, {"s": IndicatorSpec(type="sma", period=50)})
    assert frame["s.value"].isna().all()
    empty = compute_indicators(bars.iloc[:0], ALL_DEFAULTS)
    assert len(empty) == 0 and len(empty.columns) == sum(len(i.outputs) for i in CATALOG.values())


def test_missing_column_is_a_clear_error():
    bars = make_bars(100).drop(columns=["volume"])
    with pytest.raises(SpecError, match="volume"):
        compute_indicators(bars, {"r": IndicatorSpec(type="rsi")})
