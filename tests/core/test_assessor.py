"""The rule-based assessor: verdict boundaries and specific, number-bearing notes."""

import math

import pytest
from pydantic import ValidationError

from research_assets.core.assessor import Assessment, assess
from research_assets.core.spec import EXAMPLE_YAML, StrategySpec

SPEC = StrategySpec.from_yaml(EXAMPLE_YAML)
TRAINING = {"test_accuracy": 0.53, "test_loss": 0.7, "loss_decrease": 0.4, "f1": 0.5}
BASE = {
    "Return [%]": 25.0,
    "Buy & Hold Return [%]": 10.0,
    "Sharpe Ratio": 1.5,
    "Sortino Ratio": 2.0,
    "Calmar Ratio": 1.2,
    "Max. Drawdown [%]": 12.0,
    "Win Rate [%]": 52.0,
    "Profit Factor": 1.3,
    "# Trades": 80,
    "Exposure Time [%]": 40.0,
}
KEYS = {
    "ret": "Return [%]",
    "bh": "Buy & Hold Return [%]",
    "sharpe": "Sharpe Ratio",
    "sortino": "Sortino Ratio",
    "dd": "Max. Drawdown [%]",
    "win": "Win Rate [%]",
    "pf": "Profit Factor",
    "trades": "# Trades",
    "exposure": "Exposure Time [%]",
}


def stats(**kw: float) -> dict[str, float]:
    return {**BASE, **{KEYS[k]: v for k, v in kw.items()}}


def run(training=None, by_dataset=None, spec=SPEC, **kw: float) -> Assessment:
    agg = stats(**kw)
    return assess(spec, training or TRAINING, agg, by_dataset or {"EURUSD/1h": agg})


def spec_with(**changes) -> StrategySpec:
    data = SPEC.to_dict()
    for path, value in changes.items():
        node = data
        *parents, leaf = path.split("__")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return StrategySpec.from_dict(data)


def test_promising_when_all_three_hold():
    assert run().verdict == "promising"


@pytest.mark.parametrize(
    ("kw", "verdict"),
    [
        ({"sharpe": 1.0}, "neutral"),
        ({"sharpe": 1.0001}, "promising"),
        ({"trades": 50}, "neutral"),
        ({"trades": 51}, "promising"),
        ({"dd": 20.0}, "neutral"),
        ({"dd": 19.99}, "promising"),
        ({"sharpe": 0.0}, "neutral"),
        ({"sharpe": -0.01}, "poor"),
        ({"sharpe": math.nan}, "poor"),
        ({"trades": 10}, "neutral"),
        ({"trades": 9}, "poor"),
    ],
)
def test_verdict_boundaries(kw, verdict):
    assert run(**kw).verdict == verdict


def test_drawdown_sign_convention_does_not_matter():
    assert run(dd=-12.0).verdict == "promising"
    assert run(dd=-25.0).verdict == "neutral"


def test_poor_when_trailing_buy_and_hold_by_a_wide_margin():
    # margin is max(25 points, half of |B&H|)
    assert run(ret=10.0, bh=35.0).verdict == "promising"  # exactly 25 points behind: not wide
    assert run(ret=9.9, bh=35.0).verdict == "poor"
    assert run(ret=150.0, bh=300.0).verdict == "promising"  # exactly half: not wide
    assert run(ret=149.0, bh=300.0).verdict == "poor"
    assert run(ret=5.0, bh=20.0).verdict == "promising"  # behind, but not by much


def test_poor_rules_take_precedence_over_promising():
    a = run(ret=40.0, bh=200.0)
    assert a.verdict == "poor"
    assert "trails buy & hold" in a.summary


def test_summary_states_the_reason_and_figures():
    a = run(sharpe=1.0)
    assert a.summary.startswith("neutral: ")
    assert "Sharpe 1.00 is not above 1" in a.summary
    assert "80 trades" in a.summary
    b = run(trades=50)
    assert "50 trades are not more than 50" in b.summary


def test_strengths_mention_numbers():
    a = run()
    text = " | ".join(a.strengths)
    assert "Sharpe 1.50" in text
    assert "return 25.0% beat buy & hold (10.0%) by 15.0 points" in text


def test_few_trades_on_one_dataset_is_specific():
    thin = stats(win=38.0, trades=12, sharpe=0.2)
    a = assess(SPEC, TRAINING, stats(), {"EURUSD/1h": stats(), "BTCUSD/1h": thin})
    note = next(w for w in a.weaknesses if "BTCUSD/1h" in w and "12 trades" in w)
    assert "win rate 38.0%" in note
    assert "lower the zigzag threshold from 0.005" in note


def test_many_thin_datasets_share_one_note():
    thin = stats(trades=5)
    by = {f"S{i}/1d": thin for i in range(6)}
    a = assess(SPEC, TRAINING, stats(), by)
    assert sum("too few trades" in w for w in a.weaknesses) == 2
    assert any(w.startswith("also too few trades on S1/1d (5)") for w in a.weaknesses)


def test_dataset_disagreement():
    by = {"BTCUSD/1h": stats(sharpe=1.8), "EURUSD/1h": stats(sharpe=-0.6)}
    a = assess(SPEC, TRAINING, stats(sharpe=0.6), by)
    assert any(
        "datasets disagree: Sharpe 1.80 on BTCUSD/1h but -0.60 on EURUSD/1h" in w
        for w in a.weaknesses
    )
    assert any("BTCUSD/1h alone" in h for h in a.hypotheses)


def test_consistent_datasets_are_a_strength():
    by = {"AAPL/1d": stats(sharpe=0.4), "MSFT/1d": stats(sharpe=1.1)}
    a = assess(SPEC, TRAINING, stats(), by)
    assert any(
        "positive Sharpe on all 2 datasets (lowest 0.40 on AAPL/1d" in s for s in a.strengths
    )


def test_overfitting_sign():
    a = run(training={**TRAINING, "val_accuracy": 0.66, "test_accuracy": 0.5})
    assert any("overfitting" in w and "0.66" in w and "0.50" in w for w in a.weaknesses)
    assert any("dropout from 0.2 to 0.35" in s and "[16, 8]" in s for s in a.suggestions)


def test_no_overfitting_when_val_close_to_test():
    a = run(training={**TRAINING, "val_accuracy": 0.55})
    assert not any("overfitting" in w for w in a.weaknesses)


def test_profit_factor_below_one():
    a = run(pf=0.87)
    assert any("profit factor 0.87 < 1" in w for w in a.weaknesses)


def test_low_exposure():
    a = run(exposure=6.0)
    assert any("only 6.0% of the time" in w for w in a.weaknesses)
    assert any("exposure 6.0% is very low" in s for s in a.suggestions)


def test_costs_dominate():
    a = run(trades=400, ret=20.0)  # 0.05% per trade against 0.3% round trip
    assert any("costs dominate: 400 trades" in w and "0.300%" in w for w in a.weaknesses)
    assert any(
        "raise the zigzag threshold from 0.005 to 0.0075 or lengthen the lookahead from 24 to 48"
        in s
        for s in a.suggestions
    )


def test_costs_dominate_with_forward_returns_suggests_a_longer_horizon():
    spec = spec_with(training__labels={"source": "forward_return", "horizon": 4, "threshold": 0})
    a = run(spec=spec, trades=400, ret=20.0)
    assert any("lengthen the forward-return horizon from 4 to 8 bars" in s for s in a.suggestions)
    assert not any("dead zone" in s for s in a.suggestions)


def test_high_drawdown_without_volatility_input_suggests_one():
    a = run(dd=27.5)
    assert any("max drawdown 27.5%" in w for w in a.weaknesses)
    assert any("ATR or Bollinger width" in s for s in a.suggestions)


def test_high_drawdown_with_volatility_input_suggests_selectivity():
    data = SPEC.to_dict()
    data["indicators"]["atr_14"] = {"type": "atr", "period": 14}
    data["fuzzy_sets"]["vol"] = {
        "indicator": "atr_14",
        "low": {"type": "triangular", "parameters": [0, 0.005, 0.01]},
    }
    data["nn_inputs"].append({"fuzzy_set": "vol"})
    a = run(spec=StrategySpec.from_dict(data), dd=27.5)
    assert not any("ATR or Bollinger width" in s for s in a.suggestions)
    assert any("max drawdown 27.5%: raise the zigzag threshold" in s for s in a.suggestions)


def test_forward_return_advice_names_the_horizon():
    spec = spec_with(training__labels={"source": "forward_return", "horizon": 8, "threshold": 0})
    a = run(spec=spec, trades=30)
    assert any("shorten the forward-return horizon from 8 to 4 bars" in s for s in a.suggestions)


def test_low_loss_decrease():
    a = run(training={**TRAINING, "loss_decrease": 0.22})
    assert any("loss fell only 22%" in w for w in a.weaknesses)
    assert any("learning rate from 0.001 to 0.003" in s for s in a.suggestions)


def test_class_imbalance_from_f1():
    a = run(training={**TRAINING, "f1": 0.3, "test_accuracy": 0.55})
    assert any("F1 0.30 far below accuracy 0.55" in w for w in a.weaknesses)
    assert any("lower the zigzag threshold from 0.005 to 0.0025" in s for s in a.suggestions)


def test_class_imbalance_from_class_balance():
    balance = {"class_balance_up": 0.15, "class_balance_flat": 0.7, "class_balance_down": 0.15}
    a = run(training={**TRAINING, **balance})
    assert any("flat is 70% of the training labels" in w for w in a.weaknesses)
    assert sum("balance the classes" in s for s in a.suggestions) == 1
    even = {"class_balance_up": 0.5, "class_balance_flat": 0.01, "class_balance_down": 0.49}
    assert not any("imbalanced" in w for w in run(training={**TRAINING, **even}).weaknesses)


def test_forward_return_dead_zone_imbalance_suggests_dropping_it():
    spec = spec_with(training__labels={"source": "forward_return", "horizon": 5, "threshold": 0.02})
    a = run(spec=spec, training={**TRAINING, "class_balance_flat": 0.8})
    assert any("lower the forward-return threshold from 0.02 to 0" in s for s in a.suggestions)


def test_hypotheses_are_specific():
    a = run()
    text = " | ".join(a.hypotheses)
    assert "doubled costs (commission 0.002 instead of 0.001)" in text  # promising only
    assert "other 1h symbols than EURUSD" in text
    assert "rsi_14 with period 28 instead of 14" in text
    assert a.hypotheses


def test_deterministic():
    by = {"BTCUSD/1h": stats(sharpe=1.8), "EURUSD/1h": stats(sharpe=-0.6, trades=3)}
    first = assess(SPEC, TRAINING, stats(), by)
    assert all(assess(SPEC, TRAINING, stats(), by) == first for _ in range(5))


def test_limits_hold_under_many_notes():
    by = {f"SYM{i}/1h": stats(sharpe=(-1) ** i * 2.0, trades=3) for i in range(10)}
    a = assess(
        SPEC,
        {"test_accuracy": 0.5, "val_accuracy": 0.7, "f1": 0.2, "loss_decrease": 0.21},
        stats(sharpe=0.2, dd=35.0, pf=0.8, exposure=3.0, trades=30, win=30.0, ret=-5.0),
        by,
    )
    for items in (a.strengths, a.weaknesses, a.suggestions, a.hypotheses):
        assert len(items) <= 8
        assert all(len(x) <= 300 for x in items)
    assert len(a.summary) <= 1000


def test_missing_figures_do_not_crash():
    a = assess(SPEC, {}, {"Sharpe Ratio": 0.5}, {})
    assert a.verdict == "neutral"
    assert "n/a" in a.summary


def test_assessment_model_is_strict():
    with pytest.raises(ValidationError):
        Assessment(
            verdict="great", summary="", strengths=[], weaknesses=[], suggestions=[], hypotheses=[]
        )
    with pytest.raises(ValidationError):
        Assessment(
            verdict="poor",
            summary="",
            strengths=["x" * 301],
            weaknesses=[],
            suggestions=[],
            hypotheses=[],
        )
    with pytest.raises(ValidationError):
        Assessment(
            verdict="poor",
            summary="",
            strengths=["x"] * 9,
            weaknesses=[],
            suggestions=[],
            hypotheses=[],
        )
    with pytest.raises(ValidationError):
        Assessment(
            verdict="poor",
            summary="",
            strengths=[],
            weaknesses=[],
            suggestions=[],
            hypotheses=[],
            extra="no",
        )
    a = run()
    with pytest.raises(ValidationError):
        a.verdict = "poor"  # type: ignore[misc]
    assert Assessment.model_validate(a.model_dump()) == a
