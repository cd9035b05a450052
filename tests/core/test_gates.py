"""Quality gates: boundaries, reasons and their order, missing figures, descriptions in numbers
and environment overrides."""

import doctest
import math
from dataclasses import fields
from pathlib import Path

import pytest

from research_assets.core import gates
from research_assets.core.errors import ConfigError
from research_assets.core.gates import (
    GateThresholds,
    evaluate_backtest_gate,
    evaluate_training_gate,
)

DEFAULTS = GateThresholds()
# The defaults with the seeds' win-rate check on (off by default), for the tests of that check.
T = GateThresholds(min_win_rate=0.45)
# The seeds' thresholds, for the tests of their checks.
SEEDS = GateThresholds(min_accuracy=0.45, max_loss=0.8, min_loss_decrease=0.2)
GOOD_TRAINING = {
    "test_accuracy": 0.55,
    "test_loss": 0.6,
    "loss_decrease": 0.35,
    "accuracy_lift": 0.04,
    "loss_ratio": 0.93,
}
GOOD_BACKTEST = {
    "# Trades": 120.0,
    "Win Rate [%]": 52.0,
    "Max. Drawdown [%]": 18.0,
    "Sharpe Ratio": 0.9,
    "Excess Sharpe": 0.4,
    "p-value": 0.01,
    "Deflated Sharpe Ratio": 0.98,
}
BACKTEST_KEYS = {
    "trades": "# Trades",
    "win": "Win Rate [%]",
    "dd": "Max. Drawdown [%]",
    "sharpe": "Sharpe Ratio",
    "excess": "Excess Sharpe",
    "p": "p-value",
    "dsr": "Deflated Sharpe Ratio",
}
TRAINING_CHECKS = ["accuracy", "loss", "loss_decrease", "accuracy_lift", "loss_ratio"]
BACKTEST_CHECKS = [
    "trades",
    "win_rate",
    "max_drawdown",
    "sharpe",
    "excess_sharpe",
    "p_value",
    "deflated_sharpe",
]


def training(**kw: float | None) -> dict[str, float | None]:
    return {**GOOD_TRAINING, **kw}


def backtest(**kw: float | None) -> dict[str, float | None]:
    return {**GOOD_BACKTEST, **{BACKTEST_KEYS[k]: v for k, v in kw.items()}}


def test_docstring_examples():
    result = doctest.testmod(gates)
    assert result.attempted >= 5 and result.failed == 0


def test_defaults():
    # The seeds' six in their positions, the training gate's absolute three off (see the module
    # docstring and benchmarks/training_gate_calibration.py), then the new ones.
    # The seeds' win rate is off too (it measures the shape of trades, not skill).
    assert DEFAULTS == GateThresholds(
        0.0, 10.0, -1.0, 0.0, 0.4, -0.5, 0.005, 1.0, 30.0, 0.95, 0.05, 0.0
    )


def test_good_metrics_pass_both_gates():
    tr = evaluate_training_gate(GOOD_TRAINING, T)
    bt = evaluate_backtest_gate(GOOD_BACKTEST, T)
    assert tr.passed and tr.reason is None and tr.gate == "training_gate"
    assert bt.passed and bt.reason is None and bt.gate == "backtest_gate"
    assert [c.name for c in tr.checks] == TRAINING_CHECKS
    assert [c.name for c in bt.checks] == BACKTEST_CHECKS
    assert evaluate_training_gate(GOOD_TRAINING, SEEDS).passed


# -- training gate ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "passed", "reason"),
    [
        ({"test_accuracy": 0.45}, True, None),
        ({"test_accuracy": 0.4499}, False, "accuracy_below_threshold"),
        ({"test_loss": 0.8}, True, None),
        ({"test_loss": 0.8001}, False, "loss_too_high"),
        ({"loss_decrease": 0.2}, True, None),
        ({"loss_decrease": 0.1999}, False, "insufficient_loss_decrease"),
    ],
)
def test_seed_training_checks_stay_available(kw, passed, reason):
    result = evaluate_training_gate(training(**kw), SEEDS)
    assert result.passed is passed
    assert result.reason == reason


@pytest.mark.parametrize(
    ("kw", "passed", "reason"),
    [
        ({"accuracy_lift": 0.005}, True, None),
        ({"accuracy_lift": 0.0049}, False, "no_accuracy_lift"),
        ({"accuracy_lift": 0.0}, False, "no_accuracy_lift"),  # one class predicted: the baseline
        ({"accuracy_lift": 1e-17}, False, "no_accuracy_lift"),  # the same, rounding aside
        ({"accuracy_lift": -0.2}, False, "no_accuracy_lift"),
        ({"loss_ratio": 1.0}, True, None),
        ({"loss_ratio": 1.0001}, False, "loss_above_baseline"),
    ],
)
def test_training_checks_against_the_labels_baseline(kw, passed, reason):
    result = evaluate_training_gate(training(**kw), T)
    assert result.passed is passed
    assert result.reason == reason


@pytest.mark.parametrize(
    "metrics",
    [  # whatever the number of classes, poor absolute figures do not fail by default...
        {
            "test_accuracy": 0.38,
            "test_loss": 1.05,
            "loss_decrease": 0.01,  # three classes
            "accuracy_lift": 0.03,
            "loss_ratio": 0.97,
        },
        {
            "test_accuracy": 0.53,
            "test_loss": 0.69,
            "loss_decrease": 0.0,  # two classes
            "accuracy_lift": 0.01,
            "loss_ratio": 0.995,
        },
    ],
)
def test_absolute_figures_do_not_decide_by_default(metrics):
    assert evaluate_training_gate(metrics, T).passed


def test_no_lift_over_the_majority_class_fails_whatever_the_accuracy():
    # ...and a high accuracy is no skill when the majority class is as frequent.
    result = evaluate_training_gate(training(test_accuracy=0.71, accuracy_lift=-0.03), T)
    assert result.reason == "no_accuracy_lift"
    assert result.description() == "accuracy lift -0.03 < 0.005 (no_accuracy_lift)"


def test_first_failure_is_the_reason_but_all_checks_are_reported():
    result = evaluate_training_gate(
        training(test_accuracy=0.3, test_loss=0.95, loss_decrease=0.5), SEEDS
    )
    assert result.reason == "accuracy_below_threshold"
    assert [c.passed for c in result.checks] == [False, False, True, True, True]
    assert "loss_too_high" in result.description()
    result = evaluate_training_gate(training(accuracy_lift=-0.1, loss_ratio=1.2), T)
    assert result.reason == "no_accuracy_lift"
    assert [c.passed for c in result.checks] == [True, True, True, False, False]
    assert result.description() == (
        "accuracy lift -0.1 < 0.005 (no_accuracy_lift); loss ratio 1.2 > 1 (loss_above_baseline)"
    )


@pytest.mark.parametrize(
    "key", ["test_accuracy", "test_loss", "loss_decrease", "accuracy_lift", "loss_ratio"]
)
@pytest.mark.parametrize("value", [None, math.nan, "missing", "text", True])
def test_missing_or_nan_training_metric_fails(key, value):
    metrics = dict(GOOD_TRAINING)
    if value == "missing":
        del metrics[key]
    else:
        metrics[key] = value
    result = evaluate_training_gate(metrics, T)
    assert not result.passed
    failed = [c for c in result.checks if not c.passed]
    assert len(failed) == 1 and failed[0].observed is None
    assert f"{failed[0].label} missing (needs" in result.description()


def test_metrics_without_the_baseline_figures_fail():
    # A model trained before the baseline figures existed cannot pass by their absence.
    old = {"test_accuracy": 0.55, "test_loss": 0.6, "loss_decrease": 0.35}
    result = evaluate_training_gate(old, T)
    assert result.reason == "no_accuracy_lift"
    assert [c.name for c in result.checks if not c.passed] == ["accuracy_lift", "loss_ratio"]


# -- backtest gate ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "passed", "reason"),
    [
        ({"trades": 30.0}, True, None),
        ({"trades": 29.0}, False, "too_few_trades"),
        ({"trades": 0.0}, False, "too_few_trades"),
        ({"win": 45.0}, True, None),
        ({"win": 44.99}, False, "win_rate_too_low"),
        ({"dd": 40.0}, True, None),
        ({"dd": 40.01}, False, "drawdown_too_high"),
        ({"sharpe": -0.5}, True, None),
        ({"sharpe": -0.5001}, False, "sharpe_too_low"),
        ({"excess": 0.0001}, True, None),
        ({"excess": 0.0}, False, "no_edge_over_benchmark"),  # strictly above
        ({"excess": -0.2}, False, "no_edge_over_benchmark"),
        ({"p": 0.05}, True, None),
        ({"p": 0.0501}, False, "no_edge_over_random"),
        ({"dsr": 0.95}, True, None),
        ({"dsr": 0.9499}, False, "not_significant"),
    ],
)
def test_backtest_boundaries(kw, passed, reason):
    result = evaluate_backtest_gate(backtest(**kw), T)
    assert result.passed is passed
    assert result.reason == reason


def test_backtest_reasons_in_order():
    # Each failure hides the ones after it as THE reason (but not from the description).
    order = [
        ("trades", 3.0, "too_few_trades"),
        ("win", 30.0, "win_rate_too_low"),
        ("dd", 80.0, "drawdown_too_high"),
        ("sharpe", -2.0, "sharpe_too_low"),
        ("excess", -1.0, "no_edge_over_benchmark"),
        ("p", 0.5, "no_edge_over_random"),
        ("dsr", 0.2, "not_significant"),
    ]
    for i, (_, _, reason) in enumerate(order):
        result = evaluate_backtest_gate(backtest(**{k: v for k, v, _ in order[i:]}), T)
        assert result.reason == reason
        assert [c.passed for c in result.checks] == [j < i for j in range(len(order))]
        assert result.description().count("(") == len(order) - i


def test_too_few_trades_comes_first():
    # A strategy that held one position throughout: one trade, no timing to judge.
    result = evaluate_backtest_gate(backtest(trades=1.0, excess=0.0, p=1.0, dsr=0.3), T)
    assert result.reason == "too_few_trades"
    assert result.description().startswith("trades 1 < 30 (too_few_trades); ")


def test_description_in_numbers_with_human_names():
    result = evaluate_backtest_gate(
        backtest(trades=12.0, win=42.0, excess=-0.2, p=0.31, dsr=0.61), T
    )
    assert result.description() == (
        "trades 12 < 30 (too_few_trades); win rate 0.42 < 0.45 (win_rate_too_low); "
        "excess Sharpe -0.2 <= 0 (no_edge_over_benchmark); "
        "p-value 0.31 > 0.05 (no_edge_over_random); "
        "Deflated Sharpe 0.61 < 0.95 (not_significant)"
    )
    passed = evaluate_backtest_gate(GOOD_BACKTEST, T).description()
    assert passed == (
        "passed: trades 120 >= 30, win rate 0.52 >= 0.45, max drawdown 0.18 <= 0.4, "
        "Sharpe 0.9 >= -0.5, excess Sharpe 0.4 > 0, p-value 0.01 <= 0.05, "
        "Deflated Sharpe 0.98 >= 0.95"
    )


def test_many_trades_are_written_whole():
    text = evaluate_backtest_gate(backtest(trades=123456.0), T).description()
    assert "trades 123456 >= 30" in text


def test_percent_figures_are_scaled_to_fractions():
    result = evaluate_backtest_gate(backtest(win=52.0, dd=18.0), T)
    by_name = {c.name: c for c in result.checks}
    assert by_name["win_rate"].observed == pytest.approx(0.52)
    assert by_name["max_drawdown"].observed == pytest.approx(0.18)
    assert by_name["trades"].observed == 120.0 and by_name["p_value"].observed == 0.01


def test_negative_drawdown_is_read_as_a_magnitude():
    result = evaluate_backtest_gate(backtest(dd=-45.0), T)
    assert result.reason == "drawdown_too_high"


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("trades", "too_few_trades"),
        ("win", "win_rate_too_low"),
        ("dd", "drawdown_too_high"),
        ("sharpe", "sharpe_too_low"),
        ("excess", "no_edge_over_benchmark"),
        ("p", "no_edge_over_random"),
        ("dsr", "not_significant"),
    ],
)
@pytest.mark.parametrize("value", [None, math.nan, "missing"])
def test_missing_or_nan_backtest_figure_fails(key, reason, value):
    if value == "missing":
        summary = {k: v for k, v in GOOD_BACKTEST.items() if k != BACKTEST_KEYS[key]}
    else:
        summary = backtest(**{key: value})
    result = evaluate_backtest_gate(summary, T)
    assert result.reason == reason
    failed = [c for c in result.checks if not c.passed]
    assert len(failed) == 1 and failed[0].observed is None
    assert f"{failed[0].label} missing" in result.description()


def test_no_trades_fails_every_figure_it_leaves_undefined():
    # What summarize gives for a strategy that never traded.
    nothing = {
        "# Trades": 0.0,
        "Win Rate [%]": math.nan,
        "Max. Drawdown [%]": 0.0,
        "Sharpe Ratio": math.nan,
        "Excess Sharpe": math.nan,
        "p-value": math.nan,
        "Deflated Sharpe Ratio": math.nan,
    }
    result = evaluate_backtest_gate(nothing, T)
    assert result.reason == "too_few_trades"
    assert [c.name for c in result.checks if c.passed] == ["max_drawdown"]
    assert "win rate missing (needs >= 0.45)" in result.description()


def test_the_seeds_gates_alone_pass_market_exposure_and_the_new_checks_do_not():
    # The example: one trade held all along, Sharpe as good as buy & hold's.
    exposure = backtest(trades=1.0, win=100.0, sharpe=1.1, excess=0.0, p=1.0, dsr=0.7)
    seeds_only = GateThresholds(
        min_trades=0, min_excess_sharpe=-100, max_p_value=1, min_deflated_sharpe=0
    )
    assert evaluate_backtest_gate(exposure, seeds_only).passed
    assert not evaluate_backtest_gate(exposure, T).passed


def test_empty_inputs_fail_every_check():
    for result in (evaluate_training_gate({}, T), evaluate_backtest_gate({}, T)):
        assert not result.passed
        assert not any(c.passed for c in result.checks)


def test_description_of_a_seed_failure():
    result = evaluate_training_gate(training(test_accuracy=0.41), SEEDS)
    assert result.description() == "accuracy 0.41 < 0.45 (accuracy_below_threshold)"


def test_description_of_a_pass_lists_every_check():
    result = evaluate_training_gate(training(test_accuracy=0.52), SEEDS)
    text = result.description()
    assert text.startswith("passed: accuracy 0.52 >= 0.45, loss 0.6 <= 0.8")
    assert "loss decrease 0.35 >= 0.2, accuracy lift 0.04 >= 0.005, loss ratio 0.93 <= 1" in text


def test_metadata_is_flat_and_machine_friendly():
    result = evaluate_backtest_gate(backtest(sharpe=-1.0, p=0.2), T)
    meta = result.metadata()
    assert meta["passed"] is False
    assert meta["reason"] == "sharpe_too_low"
    assert meta["sharpe.observed"] == -1.0
    assert meta["sharpe.threshold"] == -0.5
    assert meta["win_rate.threshold"] == 0.45
    assert meta["p_value.observed"] == 0.2 and meta["p_value.passed"] is False
    assert meta["p_value.reason"] == "no_edge_over_random"
    assert meta["trades.threshold"] == 30.0
    assert meta["excess_sharpe.threshold"] == 0.0
    assert meta["deflated_sharpe.threshold"] == 0.95
    assert all(" " not in k for k in meta)
    assert all(not isinstance(v, dict | list | tuple) for v in meta.values())
    training_meta = evaluate_training_gate(GOOD_TRAINING, T).metadata()
    assert training_meta["accuracy_lift.observed"] == 0.04
    assert training_meta["loss_ratio.threshold"] == 1.0
    assert training_meta["loss_ratio.reason"] == "loss_above_baseline"


def test_metadata_of_missing_value_is_none():
    meta = evaluate_backtest_gate(backtest(win=math.nan, dsr=None), T).metadata()
    assert meta["win_rate.observed"] is None
    assert meta["deflated_sharpe.observed"] is None


# -- thresholds from the environment ----------------------------------------------------------

ALL_ENV = {
    "GATE_TRAINING_MIN_ACCURACY": "0.5",
    "GATE_TRAINING_MAX_LOSS": "1.2",
    "GATE_TRAINING_MIN_LOSS_DECREASE": "0.05",
    "GATE_BACKTEST_MIN_WIN_RATE": "0.3",
    "GATE_BACKTEST_MAX_DRAWDOWN": "0.25",
    "GATE_BACKTEST_MIN_SHARPE": "-1",
    "GATE_TRAINING_MIN_ACCURACY_LIFT": "0.02",
    "GATE_TRAINING_MAX_LOSS_RATIO": "0.99",
    "GATE_BACKTEST_MIN_TRADES": "50",
    "GATE_BACKTEST_MIN_DEFLATED_SHARPE": "0.9",
    "GATE_BACKTEST_MAX_P_VALUE": "0.1",
    "GATE_BACKTEST_MIN_EXCESS_SHARPE": "0.25",
}


def test_every_threshold_has_its_variable():
    assert set(gates.env_names().values()) == set(ALL_ENV)
    assert gates.env_names()["min_excess_sharpe"] == "GATE_BACKTEST_MIN_EXCESS_SHARPE"


def test_from_env_overrides():
    t = GateThresholds.from_env(ALL_ENV)
    assert t == GateThresholds(0.5, 1.2, 0.05, 0.3, 0.25, -1.0, 0.02, 0.99, 50.0, 0.9, 0.1, 0.25)
    # the overrides change decisions
    assert not evaluate_training_gate(training(test_accuracy=0.48), t).passed
    assert evaluate_training_gate(training(accuracy_lift=0.01), t).reason == "no_accuracy_lift"
    assert evaluate_backtest_gate(backtest(win=35.0, p=0.08, dsr=0.92, trades=50.0), t).passed
    assert evaluate_backtest_gate(backtest(trades=49.0), t).reason == "too_few_trades"
    assert evaluate_backtest_gate(backtest(excess=0.25), t).reason == "no_edge_over_benchmark"


def test_gates_can_be_opened_from_the_environment():
    opened = GateThresholds.from_env(
        {
            "GATE_TRAINING_MIN_ACCURACY_LIFT": "-1",
            "GATE_TRAINING_MAX_LOSS_RATIO": "1000",
            "GATE_BACKTEST_MIN_TRADES": "0",
            "GATE_BACKTEST_MIN_DEFLATED_SHARPE": "0",
            "GATE_BACKTEST_MAX_P_VALUE": "1",
            "GATE_BACKTEST_MIN_EXCESS_SHARPE": "-100",
            "GATE_BACKTEST_MIN_WIN_RATE": "0",
            "GATE_BACKTEST_MAX_DRAWDOWN": "1",
            "GATE_BACKTEST_MIN_SHARPE": "-100",
        }
    )
    assert evaluate_training_gate(training(accuracy_lift=-0.5, loss_ratio=3.0), opened).passed
    assert evaluate_backtest_gate(
        backtest(trades=0.0, win=0.0, dd=100.0, sharpe=-5.0, excess=-5.0, p=1.0, dsr=0.0), opened
    ).passed


def test_from_env_empty_gives_defaults():
    assert GateThresholds.from_env({}) == DEFAULTS
    assert GateThresholds.from_env({"GATE_TRAINING_MAX_LOSS": "  "}) == DEFAULTS
    assert GateThresholds.from_env({"GATE_BACKTEST_MAX_P_VALUE": ""}) == DEFAULTS


def test_from_env_reads_os_environ(monkeypatch):
    monkeypatch.setenv("GATE_BACKTEST_MIN_SHARPE", "0.25")
    monkeypatch.setenv("GATE_BACKTEST_MIN_TRADES", "100")
    t = GateThresholds.from_env()
    assert t.min_sharpe == 0.25 and t.min_trades == 100.0


@pytest.mark.parametrize("name", sorted(ALL_ENV))
def test_from_env_not_a_number_names_the_variable(name):
    with pytest.raises(ConfigError, match=f"{name}='high' is not a number"):
        GateThresholds.from_env({name: "high"})


@pytest.mark.parametrize(
    ("name", "value", "hint"),
    [
        ("GATE_BACKTEST_MAX_DRAWDOWN", "40", "fraction between 0 and 1"),
        ("GATE_BACKTEST_MIN_WIN_RATE", "-0.1", "fraction between 0 and 1"),
        ("GATE_TRAINING_MAX_LOSS", "-1", "at least 0"),
        ("GATE_BACKTEST_MIN_SHARPE", "nan", "a finite number"),
        ("GATE_TRAINING_MIN_LOSS_DECREASE", "inf", "at most 1"),
        ("GATE_TRAINING_MIN_ACCURACY_LIFT", "1.5", "between -1 and 1"),
        ("GATE_TRAINING_MAX_LOSS_RATIO", "-0.5", "ratio of test loss to the labels' entropy"),
        ("GATE_TRAINING_MAX_LOSS_RATIO", "inf", "ratio of test loss"),
        ("GATE_BACKTEST_MIN_TRADES", "-5", "whole number of trades"),
        ("GATE_BACKTEST_MIN_DEFLATED_SHARPE", "95", "probability between 0 and 1 (0.05, not 5)"),
        ("GATE_BACKTEST_MAX_P_VALUE", "5", "probability between 0 and 1"),
        ("GATE_BACKTEST_MAX_P_VALUE", "-0.01", "probability between 0 and 1"),
        ("GATE_BACKTEST_MIN_EXCESS_SHARPE", "inf", "a finite number"),
        ("GATE_BACKTEST_MIN_EXCESS_SHARPE", "-inf", "a finite number"),
    ],
)
def test_from_env_out_of_range_names_the_variable_and_the_fix(name, value, hint):
    with pytest.raises(ConfigError, match=f"{name}=.* is out of range") as e:
        GateThresholds.from_env({name: value})
    message = str(e.value)
    assert hint in message
    assert "unset it to use the default" in message


def test_default_in_the_message_is_written_as_a_user_would():
    with pytest.raises(ConfigError, match="the default 30$"):
        GateThresholds.from_env({"GATE_BACKTEST_MIN_TRADES": "-1"})
    with pytest.raises(ConfigError, match="the default 0.05$"):
        GateThresholds.from_env({"GATE_BACKTEST_MAX_P_VALUE": "5"})


def test_min_trades_must_be_whole():
    with pytest.raises(ConfigError, match="GATE_BACKTEST_MIN_TRADES=30.5 is not a whole number"):
        GateThresholds.from_env({"GATE_BACKTEST_MIN_TRADES": "30.5"})
    assert GateThresholds.from_env({"GATE_BACKTEST_MIN_TRADES": "30.0"}).min_trades == 30.0


def test_every_variable_reaches_the_run_workers_and_the_example_env():
    # Runs in Docker containers read the gates from the settings the run launcher forwards
    # (research_assets/settings.py; tests/deploy/test_run_settings.py checks the forwarding).
    from research_assets.settings import GATE_SETTINGS

    repo = Path(__file__).resolve().parents[2]
    example = {
        line.split("=", 1)[0]: line.split("=", 1)[1]
        for line in (repo / ".env.example").read_text().splitlines()
        if line.startswith("GATE_")
    }
    names = gates.env_names()
    assert set(names.values()) <= set(GATE_SETTINGS)
    assert set(example) == set(names.values())
    # the example shows the defaults
    assert GateThresholds.from_env(example) == DEFAULTS


def test_the_dagster_resource_sets_every_threshold(monkeypatch):
    # A field set on the resource wins over its variable, which wins over the default.
    from research_assets.defs.resources import QualityGatesResource

    assert set(QualityGatesResource.model_fields) == {f.name for f in fields(GateThresholds)}
    monkeypatch.setenv("GATE_BACKTEST_MAX_P_VALUE", "0.1")
    monkeypatch.setenv("GATE_BACKTEST_MIN_TRADES", "10")
    t = QualityGatesResource(min_trades=100, min_accuracy_lift=0.02).thresholds()
    assert (t.min_trades, t.min_accuracy_lift, t.max_p_value) == (100.0, 0.02, 0.1)
    assert t.min_deflated_sharpe == T.min_deflated_sharpe


def test_the_tests_open_gates_open_every_check():
    # tests/gate_support.py opens the gates for tests that provoke one check at a time: it must
    # know every threshold, and with it open, any present figure passes every check.
    from tests.gate_support import OPEN_GATES, OPEN_GATES_ENV, open_thresholds

    assert set(OPEN_GATES) == {f.name for f in fields(GateThresholds)}
    opened = open_thresholds()
    assert GateThresholds.from_env(OPEN_GATES_ENV) == opened
    worst_training = {
        "test_accuracy": 0.0,
        "test_loss": 50.0,
        "loss_decrease": -5.0,
        "accuracy_lift": -1.0,
        "loss_ratio": 100.0,
    }
    worst_backtest = {
        "# Trades": 0.0,
        "Win Rate [%]": 0.0,
        "Max. Drawdown [%]": 100.0,
        "Sharpe Ratio": -50.0,
        "Excess Sharpe": -50.0,
        "p-value": 1.0,
        "Deflated Sharpe Ratio": 0.0,
    }
    assert evaluate_training_gate(worst_training, opened).passed
    assert evaluate_backtest_gate(worst_backtest, opened).passed
    closed = open_thresholds(min_trades=30)
    assert evaluate_backtest_gate(worst_backtest, closed).reason == "too_few_trades"
