"""Time splits: order, gaps, the lockbox as the newest slice, and configuration."""

import numpy as np
import pandas as pd
import pytest

from research_assets.core.errors import ConfigError, TrainingError
from research_assets.core.labels import make_labels
from research_assets.core.spec import ZigzagLabels
from research_assets.core.splits import PERIODS, Periods, SplitConfig, split_periods


def check_layout(p: Periods, n: int, horizon: int) -> None:
    s = [p.train, p.validation, p.backtest, p.lockbox]
    assert s[0].start == 0 and s[-1].stop == n
    for earlier, later in zip(s, s[1:], strict=False):
        assert later.start - earlier.stop == horizon  # the gap
    for x in s:
        assert x.step is None and x.stop > x.start


def test_default_split():
    p = split_periods(10_000, 24, SplitConfig())
    check_layout(p, 10_000, 24)
    assert p.validation.stop - p.validation.start == 1500
    assert p.backtest.stop - p.backtest.start == 2000
    assert p.lockbox == slice(8500, 10_000)  # the newest 15%
    assert p.train == slice(0, 10_000 - 1500 - 2000 - 1500 - 3 * 24)


@pytest.mark.parametrize("n", [1001, 1200, 5003, 48_000])
@pytest.mark.parametrize("horizon", [0, 1, 5, 24])
@pytest.mark.parametrize(
    "cfg", [SplitConfig(), SplitConfig(0.1, 0.1, 0.1), SplitConfig(0.2, 0.25, 0.25)]
)
def test_layout_for_many_sizes(n, horizon, cfg):
    p = split_periods(n, horizon, cfg)
    check_layout(p, n, horizon)
    assert p.lockbox.stop - p.lockbox.start == round(n * cfg.lockbox)
    positions = [set(range(n)[s]) for s in p.slices().values()]
    assert sum(map(len, positions)) == len(set().union(*positions))  # never overlap
    assert list(p.slices()) == list(PERIODS)


def test_labels_of_a_period_never_see_the_next():
    n, look = 3000, 30
    rng = np.random.default_rng(0)
    idx = pd.date_range("2020-01-01", periods=n, freq="h", tz="UTC")
    bars = pd.DataFrame({"close": 100 * np.exp(np.cumsum(rng.normal(0, 0.003, n)))}, index=idx)
    spec = ZigzagLabels(source="zigzag", threshold=0.005, lookahead=look)
    p = split_periods(n, look, SplitConfig())
    before = make_labels(bars, spec)
    changed = bars.copy()
    for later in (p.validation, p.backtest, p.lockbox):
        changed.iloc[later, 0] *= 5.0
    after = make_labels(changed, spec)
    for earlier in (p.train, p.validation, p.backtest):
        pd.testing.assert_series_equal(before.iloc[earlier], after.iloc[earlier])


def test_too_few_bars_names_the_period():
    with pytest.raises(TrainingError, match="validation period"):
        split_periods(300, 1, SplitConfig(0.1, 0.1, 0.1))
    with pytest.raises(TrainingError, match="train period.*shorter label horizon"):
        split_periods(1000, 150, SplitConfig())


def test_bounds_are_iso_timestamps():
    idx = pd.date_range("2020-01-01", periods=1000, freq="h", tz="UTC", name="timestamp")
    p = split_periods(1000, 10, SplitConfig())
    b = p.bounds(idx)
    assert list(b) == list(PERIODS)
    assert b["train"] == (idx[0].isoformat(), idx[469].isoformat())
    assert b["lockbox"] == (idx[850].isoformat(), "2020-02-11T15:00:00+00:00")


def test_from_env_defaults_and_overrides():
    assert SplitConfig.from_env({}) == SplitConfig()
    cfg = SplitConfig.from_env(
        {"RESEARCH_VALIDATION_FRACTION": "0.1", "RESEARCH_LOCKBOX_FRACTION": " 0.2 "}
    )
    assert cfg == SplitConfig(validation=0.1, backtest=0.2, lockbox=0.2)
    assert cfg.train == pytest.approx(0.5)


@pytest.mark.parametrize(
    "env,match",
    [
        ({"RESEARCH_BACKTEST_FRACTION": "lots"}, "RESEARCH_BACKTEST_FRACTION"),
        ({"RESEARCH_LOCKBOX_FRACTION": "1.5"}, "RESEARCH_LOCKBOX_FRACTION"),
        ({"RESEARCH_VALIDATION_FRACTION": "0"}, "RESEARCH_VALIDATION_FRACTION"),
        (
            {"RESEARCH_BACKTEST_FRACTION": "0.4", "RESEARCH_LOCKBOX_FRACTION": "0.3"},
            "RESEARCH_BACKTEST_FRACTION=0.4",
        ),
    ],
)
def test_from_env_errors_name_the_variable(env, match):
    with pytest.raises(ConfigError, match=match):
        SplitConfig.from_env(env)


def test_direct_construction_is_checked():
    with pytest.raises(ConfigError, match="training"):
        SplitConfig(validation=0.3, backtest=0.3, lockbox=0.2)
