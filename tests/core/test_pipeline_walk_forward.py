"""The out-of-sample period is walk-forward: each fold's network trades its own test slice, the
slices are backtested as one period, the lockbox is traded by the final network, and the same
spec, data and seed give the same report."""

import pandas as pd
import pytest

from research_assets.core import pipeline
from research_assets.core.backtest import run_backtest
from research_assets.core.errors import DataError
from research_assets.core.spec import EXAMPLE_YAML, StrategySpec
from research_assets.core.splits import SplitConfig
from research_assets.core.training import predict_positions, walk_forward_positions

KEY = "EURUSD/1h"


def quick_spec() -> StrategySpec:
    data = StrategySpec.from_yaml(EXAMPLE_YAML).to_dict()
    data["training"]["epochs"] = 4
    data["training"]["labels"] = {"source": "forward_return", "horizon": 12, "threshold": 0.0}
    data["backtest"] = {"commission": 0.0001, "slippage": 0.00005}
    return StrategySpec.from_dict(data)


@pytest.fixture(scope="module")
def model():
    return pipeline.train(quick_spec(), split=SplitConfig(folds=4))


def test_the_backtest_period_is_the_folds_test_slices(model):
    report = pipeline.backtest(model, period="backtest")
    folds = model.fold_periods[KEY]
    assert report.bounds[KEY] == (folds[0]["test"][0], folds[-1]["test"][1])
    assert [row["fold"] for row in report.folds[KEY]] == [1, 2, 3, 4]
    assert [(r["start"], r["end"]) for r in report.folds[KEY]] == [f["test"] for f in folds]
    # the equity is one continuous backtest of the spliced positions
    bars = pipeline.load_spec_bars(model.spec)[KEY]
    window = bars.loc[pd.Timestamp(folds[0]["test"][0]) : pd.Timestamp(folds[-1]["test"][1])]
    positions = walk_forward_positions(model, KEY, bars).loc[window.index]
    expected = run_backtest(window, positions, commission=0.0001, slippage=0.00005)
    assert report.stats[KEY]["# Trades"] == expected.stats["# Trades"]
    assert report.stats[KEY]["Return [%]"] == pytest.approx(expected.stats["Return [%]"])
    # and each fold's row is its own slice's backtest
    for row in report.folds[KEY]:
        part = bars.loc[pd.Timestamp(row["start"]) : pd.Timestamp(row["end"])]
        alone = run_backtest(part, positions.loc[part.index], commission=0.0001, slippage=0.00005)
        assert row["# Trades"] == alone.stats["# Trades"]


def test_the_lockbox_is_traded_by_the_final_network(model):
    report = pipeline.backtest(model, period="lockbox")
    bars = pipeline.load_spec_bars(model.spec)[KEY]
    start, end = model.periods[KEY]["lockbox"]
    window = bars.loc[pd.Timestamp(start) : pd.Timestamp(end)]
    expected = run_backtest(
        window,
        predict_positions(model, bars).loc[window.index],
        commission=0.0001,
        slippage=0.00005,
    )
    assert report.stats[KEY]["Return [%]"] == pytest.approx(expected.stats["Return [%]"])
    assert report.folds == {}
    # the final network trained on all the history before the lockbox, past the last fold
    final = model.final_periods[KEY]
    assert final["test"] == (start, end)
    assert final["validation"][1] == model.fold_periods[KEY][-1]["test"][1]


def test_same_spec_data_and_seed_same_report(model):
    again = pipeline.train(quick_spec(), split=SplitConfig(folds=4))
    assert again.metrics == model.metrics and again.fold_metrics == model.fold_metrics
    for period in pipeline.PERIODS:
        a, b = pipeline.backtest(model, period=period), pipeline.backtest(again, period=period)
        pd.testing.assert_frame_equal(pd.DataFrame(a.stats), pd.DataFrame(b.stats))
        assert a.folds == b.folds


def test_one_fold_backtests_one_split(model):
    one = pipeline.train(quick_spec(), split=SplitConfig(folds=1))
    report = pipeline.backtest(one, period="backtest")
    assert len(report.folds[KEY]) == 1
    assert report.bounds[KEY] == one.fold_periods[KEY][0]["test"]
    # four folds test on more bars than one: the out-of-sample period grew
    assert model.metrics.test_samples > one.metrics.test_samples


def test_a_specs_datasets_are_researched_over_the_dates_they_all_cover():
    data = quick_spec().to_dict()
    data["training_data"] = {"symbols": ["AAPL", "GOOG"], "timeframes": ["1d"]}
    bars = pipeline.load_spec_bars(StrategySpec.from_dict(data))
    aapl, goog = bars["AAPL/1d"], bars["GOOG/1d"]
    assert aapl.index[0] == goog.index[0] and aapl.index[-1] == goog.index[-1]
    model = pipeline.train(StrategySpec.from_dict(data), split=SplitConfig(folds=4))
    assert model.periods["AAPL/1d"] == model.periods["GOOG/1d"]  # one calendar of cuts
    assert model.fold_periods["AAPL/1d"] == model.fold_periods["GOOG/1d"]


def test_datasets_without_common_dates_are_refused_with_their_spans():
    data = quick_spec().to_dict()
    data["training_data"] = {"symbols": ["AAPL", "BTCUSD"], "timeframes": ["1d"]}
    with pytest.raises(DataError, match=r"cover no common dates \(AAPL/1d 2000-.*BTCUSD/1d 201"):
        pipeline.load_spec_bars(StrategySpec.from_dict(data))
