"""Time splits: order, gaps, the lockbox as the newest slice, and configuration."""

import itertools

import numpy as np
import pandas as pd
import pytest

from research_assets.core.errors import ConfigError, TrainingError
from research_assets.core.labels import make_labels
from research_assets.core.spec import ZigzagLabels
from research_assets.core.splits import (
    PERIODS,
    Periods,
    SplitConfig,
    split_datasets,
    split_periods,
)


def check_layout(p: Periods, n: int, horizon: int, folds: int) -> None:
    assert len(p.folds) == folds
    tests = [f.test for f in p.folds]
    assert tests[0].start == p.backtest.start and tests[-1].stop == p.backtest.stop
    for earlier, later in itertools.pairwise(tests):
        assert earlier.stop == later.start  # the test slices tile the out-of-sample period
    assert p.lockbox.stop == n and p.lockbox.start - p.backtest.stop == horizon
    for f in (*p.folds, p.final):
        assert f.train.start == 0  # an expanding window
        assert f.validation.start - f.train.stop == horizon  # the purge gaps
        assert f.test.start - f.validation.stop == horizon
        for x in (f.train, f.validation, f.test):
            assert x.step is None and x.stop > x.start
    # the final model trains on all the history before the lockbox
    assert p.final.validation.stop == p.backtest.stop


def test_default_split():
    p = split_periods(10_000, 24, SplitConfig())
    check_layout(p, 10_000, 24, folds=4)
    assert p.lockbox == slice(8500, 10_000)  # the newest 15%
    assert p.backtest.stop - p.backtest.start == 4000  # 4 x 0.20 capped to leave 0.30 + 0.15
    assert [f.test.stop - f.test.start for f in p.folds] == [1000] * 4
    assert all(f.validation.stop - f.validation.start == 1500 for f in p.folds)
    assert p.folds[0].train == slice(0, 10_000 - 1500 - 4000 - 1500 - 3 * 24)


def test_one_fold_is_one_split_as_before_walk_forward():
    p = split_periods(10_000, 24, SplitConfig(folds=1))
    check_layout(p, 10_000, 24, folds=1)
    (f,) = p.folds
    assert f.train == slice(0, 10_000 - 1500 - 2000 - 1500 - 3 * 24)
    assert f.validation == slice(f.train.stop + 24, f.train.stop + 24 + 1500)
    assert f.test == p.backtest == slice(f.validation.stop + 24, f.validation.stop + 24 + 2000)


@pytest.mark.parametrize("n", [1001, 1200, 5003, 48_000])
@pytest.mark.parametrize("horizon", [0, 1, 5, 24])
@pytest.mark.parametrize(
    "cfg",
    [
        SplitConfig(),
        SplitConfig(0.1, 0.1, 0.1),
        SplitConfig(0.2, 0.25, 0.25, folds=1),
        SplitConfig(folds=7),
    ],
)
def test_layout_for_many_sizes(n, horizon, cfg):
    p = split_periods(n, horizon, cfg)
    check_layout(p, n, horizon, cfg.folds)
    assert p.lockbox.stop - p.lockbox.start == round(n * cfg.lockbox)
    assert list(p.slices()) == list(PERIODS)


@pytest.mark.parametrize("folds", [1, 4])
def test_no_training_label_sees_into_a_test_slice(folds):
    """The purge: perturbing every bar from a test slice on changes no label of its model's
    train or validation rows (labels look ``horizon`` bars ahead)."""
    n, look = 3000, 30
    rng = np.random.default_rng(0)
    idx = pd.date_range("2020-01-01", periods=n, freq="h", tz="UTC")
    bars = pd.DataFrame({"close": 100 * np.exp(np.cumsum(rng.normal(0, 0.003, n)))}, index=idx)
    spec = ZigzagLabels(source="zigzag", threshold=0.005, lookahead=look)
    p = split_periods(n, look, SplitConfig(folds=folds))
    before = make_labels(bars, spec)
    for f in (*p.folds, p.final):
        gap_changed = False
        for factor in (5.0, 0.2):
            changed = bars.copy()
            changed.iloc[f.test.start :, 0] *= factor
            after = make_labels(changed, spec)
            for seen in (f.train, f.validation):
                pd.testing.assert_series_equal(before.iloc[seen], after.iloc[seen])
            gap = slice(f.test.start - look, f.test.start)
            gap_changed |= not before.iloc[gap].equals(after.iloc[gap])
        assert gap_changed  # the check has teeth: labels in the gap do see the test slice


def test_too_few_bars_names_the_period():
    with pytest.raises(TrainingError, match="validation period"):
        split_periods(300, 1, SplitConfig(0.1, 0.1, 0.1))
    with pytest.raises(TrainingError, match="train period.*shorter label horizon"):
        split_periods(1000, 150, SplitConfig())
    with pytest.raises(TrainingError, match="walk-forward test slice.*fewer walk-forward folds"):
        split_periods(900, 1, SplitConfig(folds=20))


def test_bounds_are_iso_timestamps():
    idx = pd.date_range("2020-01-01", periods=1000, freq="h", tz="UTC", name="timestamp")
    p = split_periods(1000, 10, SplitConfig())
    b = p.bounds(idx)
    assert list(b) == list(PERIODS)
    assert b["backtest"] == (idx[440].isoformat(), idx[839].isoformat())
    assert b["lockbox"] == (idx[850].isoformat(), "2020-02-11T15:00:00+00:00")
    assert p.folds[0].bounds(idx) == {
        "train": (idx[0].isoformat(), idx[269].isoformat()),
        "validation": (idx[280].isoformat(), idx[429].isoformat()),
        "test": (idx[440].isoformat(), idx[539].isoformat()),
    }


def test_from_env_defaults_and_overrides():
    assert SplitConfig.from_env({}) == SplitConfig()
    cfg = SplitConfig.from_env(
        {"RESEARCH_VALIDATION_FRACTION": "0.1", "RESEARCH_LOCKBOX_FRACTION": " 0.2 "}
    )
    assert cfg == SplitConfig(validation=0.1, backtest=0.2, lockbox=0.2)
    assert cfg.train == pytest.approx(0.5)
    assert SplitConfig.from_env({"RESEARCH_WALK_FORWARD_FOLDS": "1"}).folds == 1


@pytest.mark.parametrize(
    "env,match",
    [
        ({"RESEARCH_BACKTEST_FRACTION": "lots"}, "RESEARCH_BACKTEST_FRACTION"),
        ({"RESEARCH_LOCKBOX_FRACTION": "1.5"}, "RESEARCH_LOCKBOX_FRACTION"),
        ({"RESEARCH_VALIDATION_FRACTION": "0"}, "RESEARCH_VALIDATION_FRACTION"),
        ({"RESEARCH_WALK_FORWARD_FOLDS": "0"}, "RESEARCH_WALK_FORWARD_FOLDS=0 is out of range"),
        ({"RESEARCH_WALK_FORWARD_FOLDS": "four"}, "RESEARCH_WALK_FORWARD_FOLDS='four'"),
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
    with pytest.raises(ConfigError, match="walk-forward folds"):
        SplitConfig(folds=0)


def _index(start: str, periods: int, freq: str) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=periods, freq=freq, tz="UTC")


def test_one_dataset_is_split_as_alone():
    idx = _index("2020-01-01", 3000, "h")
    assert split_datasets({"A/1h": idx}, 12, SplitConfig()) == {
        "A/1h": split_periods(3000, 12, SplitConfig())
    }


@pytest.mark.parametrize("folds", [1, 4])
@pytest.mark.parametrize(
    "second",
    [
        ("2020-01-01", 3000, "h"),
        ("2020-01-03", 2900, "h"),
        ("2020-01-01", 125, "D"),
        ("2020-01-01 00:30", 3000, "h"),
    ],
)
def test_datasets_are_cut_at_the_same_moments(folds, second):
    """No dataset's training or validation label reaches a moment any dataset of the spec is
    tested or locked away on: they share one calendar of cuts, each with its own purge gap."""
    horizon = 5
    indexes = {"A/1h": _index("2020-01-01", 3000, "h"), "B": _index(*second)}
    periods = split_datasets(indexes, horizon, SplitConfig(folds=folds))

    def closes(idx, row):
        """When bar ``row`` closes: the next bar's open (the last bar: a bar length later)."""
        return idx[row + 1] if row + 1 < len(idx) else idx[row] + (idx[1] - idx[0])

    for k in range(folds):
        test_start = min(indexes[key][p.folds[k].test.start] for key, p in periods.items())
        for key, p in periods.items():
            f, idx = p.folds[k], indexes[key]
            last_seen = max(f.train.stop, f.validation.stop) - 1 + horizon  # its label's end
            assert closes(idx, last_seen) <= test_start, (k, key)
    lock_start = min(indexes[key][p.lockbox.start] for key, p in periods.items())
    for key, p in periods.items():
        idx = indexes[key]
        assert closes(idx, p.final.validation.stop - 1 + horizon) <= lock_start, key
        assert closes(idx, p.folds[-1].test.stop - 1 + horizon) <= lock_start, key
        assert p.lockbox.stop == len(idx)
    # same-calendar datasets get identical cuts
    if second[2] == "h" and second[0] == "2020-01-01":
        assert periods["A/1h"] == periods["B"]


def test_a_dataset_too_coarse_to_share_the_cuts_is_named():
    indexes = {"A/1h": _index("2020-01-01", 3000, "h"), "B/1w": _index("2020-01-01", 18, "W")}
    with pytest.raises(TrainingError, match="B/1w: its bars leave"):
        split_datasets(indexes, 5, SplitConfig())
