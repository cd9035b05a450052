"""Every backtest report carries the benchmark and significance figures, deflated by the
strategies tried on its datasets, and the same spec, data and seed give the same figures."""

import math

import pytest

from research_assets.core import pipeline
from research_assets.core.memory import ResearchMemory, ResearchRecord
from research_assets.core.significance import SIGNIFICANCE_KEYS
from research_assets.core.spec import EXAMPLE_YAML, StrategySpec


@pytest.fixture(scope="module")
def model():
    data = StrategySpec.from_yaml(EXAMPLE_YAML).to_dict()
    data["training"]["epochs"] = 4
    data["training"]["labels"] = {"source": "forward_return", "horizon": 12, "threshold": 0.0}
    data["backtest"] = {"commission": 0.0001, "slippage": 0.00005}
    return pipeline.train(StrategySpec.from_dict(data))


@pytest.mark.parametrize("period", pipeline.PERIODS)
def test_each_dataset_has_every_figure(model, period):
    report = pipeline.backtest(model, period=period)
    for stats in report.stats.values():
        assert set(SIGNIFICANCE_KEYS) <= set(stats)
        assert stats["Excess Return [%]"] == pytest.approx(
            stats["Return [%]"] - stats["Buy & Hold Return [%]"])
        if stats["# Trades"] > 0:
            assert 0 < stats["p-value"] <= 1
            assert 0 <= stats["Probabilistic Sharpe Ratio"] <= 1
    assert set(SIGNIFICANCE_KEYS) <= set(report.summary)


def test_more_trials_deflate_the_sharpe_ratio(model):
    alone = pipeline.backtest(model, trials=pipeline.Trials(1, 0.0))
    crowded = pipeline.backtest(model, trials=pipeline.Trials(200, 1.0))
    assert crowded.trials.count == 200
    for key, stats in alone.stats.items():
        if math.isfinite(stats["Deflated Sharpe Ratio"]):
            assert stats["Deflated Sharpe Ratio"] == pytest.approx(
                stats["Probabilistic Sharpe Ratio"])
            assert crowded.stats[key]["Deflated Sharpe Ratio"] < stats["Deflated Sharpe Ratio"]


def test_same_spec_data_and_seed_same_figures(model):
    first = pipeline.backtest(model, trials=pipeline.Trials(5, 0.3))
    again = pipeline.backtest(model, trials=pipeline.Trials(5, 0.3))
    assert repr(first.stats) == repr(again.stats)


def _record(rid, symbols, sharpe, status="completed"):
    data = StrategySpec.from_yaml(EXAMPLE_YAML).to_dict()
    data["training_data"]["symbols"] = symbols
    spec = StrategySpec.from_dict(data)
    backtest = {} if sharpe is None else {"Sharpe Ratio": sharpe}
    return ResearchRecord(rid, status, spec=spec, backtest=backtest)


def test_trials_count_researches_on_overlapping_datasets():
    memory = ResearchMemory([
        _record("a", ["EURUSD"], 1.0),
        _record("b", ["EURUSD", "BTCUSD"], 2.0),
        _record("c", ["BTCUSD"], 5.0),
        _record("d", ["EURUSD"], None, status="rejected"),  # tried, no backtest figure
        ResearchRecord("e", "failed"),  # no spec: nothing known was tried
    ])
    spec = _record("x", ["EURUSD"], None).spec
    trials = pipeline.Trials.from_memory(memory, spec)
    assert trials.count == 4  # a, b, d and this one
    assert trials.sharpe_variance == pytest.approx(0.5)  # variance of 1.0 and 2.0
    assert pipeline.Trials.from_memory(ResearchMemory(), spec) == pipeline.Trials(1, 0.0)
