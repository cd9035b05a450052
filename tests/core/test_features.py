"""Membership functions and fuzzy feature frames."""

import math

import numpy as np
import pandas as pd
import pytest

from research_assets.core.errors import SpecError
from research_assets.core.features import feature_columns, fuzzy_features, membership
from research_assets.core.indicators import compute_indicators
from research_assets.core.spec import EXAMPLE_YAML, Membership, StrategySpec


def mf(kind: str, *params: float) -> Membership:
    return Membership(type=kind, parameters=list(params))


def values(m: Membership, *xs: float) -> list[float]:
    return membership(np.array(xs, dtype=float), m).tolist()


def test_triangular():
    m = mf("triangular", 0, 20, 40)
    assert values(m, -5, 0, 10, 20, 30, 40, 50) == [0, 0, 0.5, 1, 0.5, 0, 0]


def test_trapezoidal():
    m = mf("trapezoidal", 0, 10, 20, 40)
    assert values(m, -1, 0, 5, 10, 15, 20, 30, 40, 41) == [0, 0, 0.5, 1, 1, 1, 0.5, 0, 0]


def test_left_shoulder_is_open_below():
    m = mf("trapezoidal", -1, -1, -0.005, 0)
    assert values(m, -50, -1, -0.5, -0.005, -0.0025, 0, 0.3) == [1, 1, 1, 1, 0.5, 0, 0]


def test_right_shoulder_is_open_above():
    m = mf("trapezoidal", 0, 0.005, 1, 1)
    assert values(m, -0.1, 0, 0.0025, 0.005, 0.5, 1, 7) == [0, 0, 0.5, 1, 1, 1, 1]


def test_triangular_shoulders():
    assert values(mf("triangular", 0, 0, 10), -5, 0, 5, 10, 11) == [1, 1, 0.5, 0, 0]
    assert values(mf("triangular", 0, 10, 10), -1, 0, 5, 10, 99) == [0, 0, 0.5, 1, 1]


def test_gaussian():
    out = values(mf("gaussian", 50, 10), 50, 40, 60, 80)
    assert out[0] == 1.0
    assert out[1] == pytest.approx(math.exp(-0.5)) and out[2] == pytest.approx(math.exp(-0.5))
    assert out[3] == pytest.approx(math.exp(-4.5))


@pytest.mark.parametrize(
    "m",
    [
        mf("triangular", 0, 20, 40),
        mf("trapezoidal", -1, -1, -0.005, 0),
        mf("trapezoidal", 0, 0.005, 1, 1),
        mf("gaussian", 0, 0.3),
    ],
)
def test_range_and_nan(m):
    x = np.random.default_rng(1).normal(0, 30, 1000)
    x[::7] = np.nan
    out = membership(x, m)
    assert np.isnan(out[::7]).all()
    finite = out[~np.isnan(x)]
    assert np.isfinite(finite).all() and (finite >= 0).all() and (finite <= 1).all()


def _bars(n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    idx = pd.date_range("2021-01-01", periods=n, freq="h", tz="UTC", name="timestamp")
    return pd.DataFrame(
        {"open": close, "high": close * 1.002, "low": close * 0.998, "close": close, "volume": 1.0},
        index=idx,
    )


def test_fuzzy_features_of_the_example_spec():
    spec = StrategySpec.from_yaml(EXAMPLE_YAML)
    ind = compute_indicators(_bars(), spec.indicators)
    X = fuzzy_features(spec, ind)
    assert list(X.columns) == [
        "rsi_zone.oversold",
        "rsi_zone.neutral",
        "rsi_zone.overbought",
        "trend.below",
        "trend.above",
    ]
    assert list(X.columns) == feature_columns(spec)
    assert X.index.equals(ind.index)
    neutral = spec.fuzzy_sets["rsi_zone"].memberships["neutral"]
    np.testing.assert_array_equal(
        X["rsi_zone.neutral"], membership(ind["rsi_14.value"].to_numpy(), neutral)
    )
    # Warm-up of the 50-bar average is NaN in its sets only.
    assert X["trend.below"].iloc[:49].isna().all() and X["trend.below"].iloc[49:].notna().all()
    assert X["rsi_zone.oversold"].iloc[14:].notna().all()


def test_fuzzy_features_follow_nn_inputs_order():
    data = StrategySpec.from_yaml(EXAMPLE_YAML).to_dict()
    data["nn_inputs"] = [{"fuzzy_set": "trend"}]
    spec = StrategySpec.from_dict(data)
    X = fuzzy_features(spec, compute_indicators(_bars(), spec.indicators))
    assert list(X.columns) == ["trend.below", "trend.above"]


def test_missing_indicator_column_is_a_clear_error():
    spec = StrategySpec.from_yaml(EXAMPLE_YAML)
    ind = compute_indicators(_bars(), spec.indicators).drop(columns=["sma_50.value"])
    with pytest.raises(SpecError, match="sma_50.value"):
        fuzzy_features(spec, ind)
