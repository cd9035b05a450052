"""`research metrics` measures the lab's own overfitting: out-of-sample against lockbox Sharpe
over completed researches, from the instance's records."""

import pytest

from research_assets.core.overfitting import MIN_RESEARCHES_FOR_WARNING, overfitting_report
from research_assets.state.metrics import compute_metrics, format_metrics
from research_assets.state.records import record_request
from tests.defs.test_research_index import S, add_run, materialize, metadata, report


def _completed(instance, spec, i, oos_sharpe, lockbox_sharpe, lockbox_return):
    pk = f"r-20260101-{i:06d}-over"
    record_request(instance, pk, seed=i, worker="cpu")
    add_run(instance, pk, S)
    materialize(instance, pk, "strategy_spec", metadata("strategy_spec", i, spec))
    materialize(instance, pk, "trained_model", metadata("trained_model", i, spec, True))
    figures = {
        "Sharpe Ratio": oos_sharpe,
        "Return [%]": 5.0,
        "# Trades": 40.0,
        "Max. Drawdown [%]": 3.0,
        "Win Rate [%]": 50.0,
    }
    materialize(
        instance,
        pk,
        "backtest_report",
        {**report("backtest", figures), "gate_passed": True, "gate_reason": ""},
    )
    materialize(instance, pk, "assessment", metadata("assessment", i, spec))
    materialize(
        instance,
        pk,
        "lockbox_report",
        report(
            "lockbox",
            {
                "Sharpe Ratio": lockbox_sharpe,
                "Return [%]": lockbox_return,
                "Buy & Hold Return [%]": 2.0,
                "# Trades": 12.0,
            },
        ),
    )


def test_a_lab_whose_best_out_of_sample_does_worst_on_the_lockbox_is_warned(instance, small_spec):
    n = MIN_RESEARCHES_FOR_WARNING
    for i in range(n):  # the better out of sample, the worse on the lockbox
        _completed(instance, small_spec, i, 0.2 * i, 1.0 - 0.2 * i, 4.0 if i < 3 else -1.0)
    o = compute_metrics(instance)["overfitting"]
    assert o["trials"] == n and o["completed_with_lockbox"] == n
    assert o["rank_corr_oos_lockbox"] == -1.0
    assert o["mean_sharpe_decay"] == pytest.approx(sum(0.4 * i - 1.0 for i in range(n)) / n)
    assert o["lockbox_beats_buy_and_hold"] == pytest.approx(3 / n)
    assert "rank correlation of -1.00" in o["warning"]
    text = format_metrics(compute_metrics(instance))
    assert f"{n} trials" in text and "warning" in text and "overfitting" in text


def test_no_warning_when_the_lockbox_agrees_or_too_few_researches(instance, small_spec):
    for i in range(4):
        _completed(instance, small_spec, i, 0.5 * i, 0.4 * i, 1.0)
    o = compute_metrics(instance)["overfitting"]
    assert o["rank_corr_oos_lockbox"] == 1.0 and o["warning"] is None
    few = overfitting_report([(float(i), -float(i), 0.0) for i in range(9)], trials=9)
    assert few["rank_corr_oos_lockbox"] == -1.0 and few["warning"] is None


def test_an_empty_lab_reports_nothing_to_compare(instance):
    o = compute_metrics(instance)["overfitting"]
    assert o == {
        "trials": 0,
        "completed_with_lockbox": 0,
        "rank_corr_oos_lockbox": None,
        "mean_sharpe_decay": None,
        "lockbox_beats_buy_and_hold": None,
        "warning": None,
    }
    assert "overfitting     0 trials" in format_metrics(compute_metrics(instance))


def test_incomplete_figures_are_left_out():
    nan = float("nan")
    o = overfitting_report([(1.0, nan, 1.0), (nan, 1.0, 1.0), (1.0, 2.0, nan)], trials=3)
    assert o["completed_with_lockbox"] == 1 and o["rank_corr_oos_lockbox"] is None
    assert o["mean_sharpe_decay"] == -1.0 and o["lockbox_beats_buy_and_hold"] is None
