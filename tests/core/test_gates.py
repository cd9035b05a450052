"""Quality gates: boundaries, reasons, missing figures and environment overrides."""

import math

import pytest

from research_assets.core.errors import ConfigError
from research_assets.core.gates import (
    GateThresholds,
    evaluate_backtest_gate,
    evaluate_training_gate,
)

T = GateThresholds()
GOOD_TRAINING = {"test_accuracy": 0.55, "test_loss": 0.6, "loss_decrease": 0.35}
GOOD_BACKTEST = {"Win Rate [%]": 52.0, "Max. Drawdown [%]": 18.0, "Sharpe Ratio": 0.9}


def training(**kw: float) -> dict[str, float]:
    return {**GOOD_TRAINING, **kw}


def backtest(**kw: float | None) -> dict[str, float | None]:
    keys = {"win": "Win Rate [%]", "dd": "Max. Drawdown [%]", "sharpe": "Sharpe Ratio"}
    return {**GOOD_BACKTEST, **{keys[k]: v for k, v in kw.items()}}


def test_defaults():
    assert T == GateThresholds(0.45, 0.8, 0.2, 0.45, 0.4, -0.5)


def test_good_metrics_pass_both_gates():
    tr = evaluate_training_gate(GOOD_TRAINING, T)
    bt = evaluate_backtest_gate(GOOD_BACKTEST, T)
    assert tr.passed and tr.reason is None and tr.gate == "training_gate"
    assert bt.passed and bt.reason is None and bt.gate == "backtest_gate"
    assert [c.name for c in tr.checks] == ["accuracy", "loss", "loss_decrease"]
    assert [c.name for c in bt.checks] == ["win_rate", "max_drawdown", "sharpe"]


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
def test_training_boundaries(kw, passed, reason):
    result = evaluate_training_gate(training(**kw), T)
    assert result.passed is passed
    assert result.reason == reason


@pytest.mark.parametrize(
    ("kw", "passed", "reason"),
    [
        ({"win": 45.0}, True, None),
        ({"win": 44.99}, False, "win_rate_too_low"),
        ({"dd": 40.0}, True, None),
        ({"dd": 40.01}, False, "drawdown_too_high"),
        ({"sharpe": -0.5}, True, None),
        ({"sharpe": -0.5001}, False, "sharpe_too_low"),
    ],
)
def test_backtest_boundaries(kw, passed, reason):
    result = evaluate_backtest_gate(backtest(**kw), T)
    assert result.passed is passed
    assert result.reason == reason


def test_percent_figures_are_scaled_to_fractions():
    result = evaluate_backtest_gate(backtest(win=52.0, dd=18.0), T)
    by_name = {c.name: c for c in result.checks}
    assert by_name["win_rate"].observed == pytest.approx(0.52)
    assert by_name["max_drawdown"].observed == pytest.approx(0.18)


def test_negative_drawdown_is_read_as_a_magnitude():
    result = evaluate_backtest_gate(backtest(dd=-45.0), T)
    assert result.reason == "drawdown_too_high"


def test_first_failure_is_the_reason_but_all_checks_are_reported():
    result = evaluate_training_gate(
        {"test_accuracy": 0.3, "test_loss": 0.95, "loss_decrease": 0.5}, T
    )
    assert result.reason == "accuracy_below_threshold"
    assert [c.passed for c in result.checks] == [False, False, True]
    assert "loss_too_high" in result.description()
    result = evaluate_backtest_gate(backtest(dd=60.0, sharpe=-2.0), T)
    assert result.reason == "drawdown_too_high"
    assert [c.passed for c in result.checks] == [True, False, False]


@pytest.mark.parametrize("key", ["test_accuracy", "test_loss", "loss_decrease"])
@pytest.mark.parametrize("value", [None, math.nan, "missing"])
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


def test_no_trades_fails_win_rate():
    for win in (math.nan, None):
        result = evaluate_backtest_gate(backtest(win=win), T)
        assert result.reason == "win_rate_too_low"
        assert "win_rate missing" in result.description()


def test_nan_sharpe_fails():
    assert evaluate_backtest_gate(backtest(sharpe=math.nan), T).reason == "sharpe_too_low"
    no_sharpe = {k: v for k, v in GOOD_BACKTEST.items() if k != "Sharpe Ratio"}
    assert evaluate_backtest_gate(no_sharpe, T).reason == "sharpe_too_low"


def test_nan_drawdown_fails():
    assert evaluate_backtest_gate(backtest(dd=math.nan), T).reason == "drawdown_too_high"


def test_empty_inputs_fail_every_check():
    for result in (evaluate_training_gate({}, T), evaluate_backtest_gate({}, T)):
        assert not result.passed
        assert not any(c.passed for c in result.checks)


def test_description_of_a_failure():
    result = evaluate_training_gate(training(test_accuracy=0.41), T)
    assert result.description() == "accuracy 0.41 < 0.45 (accuracy_below_threshold)"


def test_description_of_a_pass_lists_every_check():
    result = evaluate_training_gate(training(test_accuracy=0.52), T)
    text = result.description()
    assert text.startswith("passed: accuracy 0.52 >= 0.45, loss 0.6 <= 0.8")
    assert "loss_decrease 0.35 >= 0.2" in text


def test_metadata_is_flat():
    result = evaluate_backtest_gate(backtest(sharpe=-1.0), T)
    meta = result.metadata()
    assert meta["passed"] is False
    assert meta["reason"] == "sharpe_too_low"
    assert meta["sharpe.observed"] == -1.0
    assert meta["sharpe.threshold"] == -0.5
    assert meta["win_rate.threshold"] == 0.45
    assert all(not isinstance(v, dict | list | tuple) for v in meta.values())


def test_metadata_of_missing_value_is_none():
    meta = evaluate_backtest_gate(backtest(win=math.nan), T).metadata()
    assert meta["win_rate.observed"] is None


def test_from_env_overrides():
    env = {
        "GATE_TRAINING_MIN_ACCURACY": "0.5",
        "GATE_TRAINING_MAX_LOSS": "1.2",
        "GATE_TRAINING_MIN_LOSS_DECREASE": "0.05",
        "GATE_BACKTEST_MIN_WIN_RATE": "0.3",
        "GATE_BACKTEST_MAX_DRAWDOWN": "0.25",
        "GATE_BACKTEST_MIN_SHARPE": "-1",
    }
    t = GateThresholds.from_env(env)
    assert t == GateThresholds(0.5, 1.2, 0.05, 0.3, 0.25, -1.0)
    # the overrides change decisions
    assert not evaluate_training_gate(training(test_accuracy=0.48), t).passed
    assert evaluate_backtest_gate(backtest(win=35.0), t).passed


def test_from_env_empty_gives_defaults():
    assert GateThresholds.from_env({}) == T
    assert GateThresholds.from_env({"GATE_TRAINING_MAX_LOSS": "  "}) == T


def test_from_env_reads_os_environ(monkeypatch):
    monkeypatch.setenv("GATE_BACKTEST_MIN_SHARPE", "0.25")
    assert GateThresholds.from_env().min_sharpe == 0.25


def test_from_env_not_a_number_names_the_variable():
    with pytest.raises(ConfigError, match="GATE_TRAINING_MIN_ACCURACY='high' is not a number"):
        GateThresholds.from_env({"GATE_TRAINING_MIN_ACCURACY": "high"})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GATE_BACKTEST_MAX_DRAWDOWN", "40"),
        ("GATE_BACKTEST_MIN_WIN_RATE", "-0.1"),
        ("GATE_TRAINING_MAX_LOSS", "-1"),
        ("GATE_BACKTEST_MIN_SHARPE", "nan"),
        ("GATE_TRAINING_MIN_LOSS_DECREASE", "inf"),
    ],
)
def test_from_env_out_of_range_names_the_variable(name, value):
    with pytest.raises(ConfigError, match=f"{name}=.* is out of range") as e:
        GateThresholds.from_env({name: value})
    assert "unset it" in str(e.value)


def test_drawdown_in_percent_hints_at_fractions():
    with pytest.raises(ConfigError, match="fraction between 0 and 1"):
        GateThresholds.from_env({"GATE_BACKTEST_MAX_DRAWDOWN": "40"})
