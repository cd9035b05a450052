"""Every backtest report carries the benchmark and significance figures, deflated by the
strategies tried on its datasets, and the same spec, data and seed give the same figures."""

import math
import statistics

import pytest

from research_assets.core import pipeline
from research_assets.core.memory import ResearchMemory, ResearchRecord
from research_assets.core.metrics import summarize
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
            stats["Return [%]"] - stats["Buy & Hold Return [%]"]
        )
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
                stats["Probabilistic Sharpe Ratio"]
            )
            assert crowded.stats[key]["Deflated Sharpe Ratio"] < stats["Deflated Sharpe Ratio"]


def test_a_trial_history_counts_this_strategy_in(model):
    report = pipeline.backtest(model, trials=pipeline.TrialHistory(3, (0.5, 1.5, -0.5)))
    this = report.summary["Sharpe Ratio"]
    assert report.trials.count == 4
    assert report.trials.sharpe_variance == pytest.approx(
        statistics.variance([0.5, 1.5, -0.5, this])
    )
    # the first strategy on its datasets: one trial, nothing to deflate by
    assert pipeline.backtest(model).trials == pipeline.Trials(1, 0.0)


def test_the_summary_speaks_for_the_least_significant_dataset():
    s = summarize(
        {
            "A/1d": {
                "p-value": 0.01,
                "Deflated Sharpe Ratio": 0.99,
                "Probabilistic Sharpe Ratio": 1.0,
                "Excess Return [%]": 10.0,
            },
            "B/1h": {
                "p-value": 0.30,
                "Deflated Sharpe Ratio": 0.60,
                "Probabilistic Sharpe Ratio": 0.7,
                "Excess Return [%]": -2.0,
            },
        }
    )
    assert s["p-value"] == 0.30 and s["Deflated Sharpe Ratio"] == 0.60
    assert s["Probabilistic Sharpe Ratio"] == 0.7 and s["Excess Return [%]"] == 4.0


def test_same_spec_data_and_seed_same_figures(model):
    first = pipeline.backtest(model, trials=pipeline.Trials(5, 0.3))
    again = pipeline.backtest(model, trials=pipeline.Trials(5, 0.3))
    assert repr(first.stats) == repr(again.stats)


def _record(rid, symbols, sharpe, status="completed", created_at=0.0):
    data = StrategySpec.from_yaml(EXAMPLE_YAML).to_dict()
    data["training_data"]["symbols"] = symbols
    spec = StrategySpec.from_dict(data)
    backtest = {} if sharpe is None else {"Sharpe Ratio": sharpe}
    return ResearchRecord(rid, status, created_at=created_at, spec=spec, backtest=backtest)


def test_trials_count_researches_on_overlapping_datasets_created_before():
    memory = ResearchMemory(
        [
            _record("a", ["EURUSD"], 1.0, created_at=1.0),
            _record("b", ["EURUSD", "BTCUSD"], 2.0, created_at=2.0),
            _record("c", ["BTCUSD"], 5.0, created_at=3.0),
            _record("d", ["EURUSD"], None, status="rejected", created_at=4.0),  # no backtest figure
            ResearchRecord("e", "failed", created_at=5.0),  # no spec: nothing known was tried
            _record("f", ["EURUSD"], 9.0, created_at=99.0),  # after this one
        ]
    )
    spec = _record("x", ["EURUSD"], None).spec
    history = pipeline.TrialHistory.from_memory(memory, spec, before=50.0)
    assert history == pipeline.TrialHistory(3, (2.0, 1.0))  # b, a and d; newest first
    assert history.with_this(3.0) == pipeline.Trials(4, statistics.variance([2.0, 1.0, 3.0]))
    assert pipeline.TrialHistory.from_memory(memory, spec).count == 4
    assert pipeline.TrialHistory.from_memory(ResearchMemory(), spec).with_this(
        1.0
    ) == pipeline.Trials(1, 0.0)
