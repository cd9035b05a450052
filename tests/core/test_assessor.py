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
    "Buy & Hold Sharpe Ratio": 0.9,
    "Excess Sharpe": 0.6,
    "Excess Return [%]": 15.0,
    "Beta": 0.2,
    "Alpha [%]": 11.0,
    "Probabilistic Sharpe Ratio": 0.995,
    "Deflated Sharpe Ratio": 0.97,
    "p-value": 0.012,
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
    "bh_sharpe": "Buy & Hold Sharpe Ratio",
    "excess_sharpe": "Excess Sharpe",
    "excess_ret": "Excess Return [%]",
    "beta": "Beta",
    "alpha": "Alpha [%]",
    "psr": "Probabilistic Sharpe Ratio",
    "dsr": "Deflated Sharpe Ratio",
    "p": "p-value",
}


def stats(**kw: float) -> dict[str, float]:
    """BASE with some figures changed; the excess figures follow the return and Sharpe ratio
    they are the difference of, unless given."""
    out = {**BASE, **{KEYS[k]: v for k, v in kw.items()}}
    if "excess_ret" not in kw and {"ret", "bh"} & set(kw):
        out["Excess Return [%]"] = out["Return [%]"] - out["Buy & Hold Return [%]"]
    if "excess_sharpe" not in kw and {"sharpe", "bh_sharpe"} & set(kw):
        out["Excess Sharpe"] = out["Sharpe Ratio"] - out["Buy & Hold Sharpe Ratio"]
    return out


def run(training=None, by_dataset=None, spec=SPEC, trials=None, **kw: float) -> Assessment:
    agg = stats(**kw)
    return assess(spec, training or TRAINING, agg, by_dataset or {"EURUSD/1h": agg}, trials=trials)


def spec_with(**changes) -> StrategySpec:
    data = SPEC.to_dict()
    for path, value in changes.items():
        node = data
        *parents, leaf = path.split("__")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return StrategySpec.from_dict(data)


def test_promising_when_every_rule_holds():
    a = run(trials=12)
    assert a.verdict == "promising"
    assert "significant (Deflated Sharpe 0.970 after 12 trials, p-value 0.012)" in a.summary
    assert "ahead of buy & hold (excess Sharpe +0.60, excess return +15.0 points)" in a.summary


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
        # significance: the backtest gate's default thresholds
        ({"dsr": 0.95}, "promising"),
        ({"dsr": 0.9499}, "neutral"),
        ({"dsr": math.nan}, "neutral"),
        ({"p": 0.05}, "promising"),
        ({"p": 0.0501}, "neutral"),
        ({"p": math.nan}, "neutral"),
        # beating buy & hold, risk-adjusted and plain
        ({"excess_sharpe": 0.0}, "neutral"),
        ({"excess_sharpe": 0.0001}, "promising"),
        ({"excess_ret": 0.0}, "neutral"),
        ({"excess_ret": 0.01}, "promising"),
        ({"excess_sharpe": math.nan, "bh_sharpe": math.nan}, "neutral"),
    ],
)
def test_verdict_boundaries(kw, verdict):
    assert run(**kw).verdict == verdict


def test_drawdown_sign_convention_does_not_matter():
    assert run(dd=-12.0).verdict == "promising"
    assert run(dd=-25.0).verdict == "neutral"


def test_poor_when_trailing_buy_and_hold_by_a_wide_margin():
    # margin is max(25 points, half of |B&H|); behind buy & hold but not by that much is
    # neutral: never promising, which requires beating buy & hold
    assert run(ret=10.0, bh=35.0).verdict == "neutral"  # exactly 25 points behind: not wide
    assert run(ret=9.9, bh=35.0).verdict == "poor"
    assert run(ret=150.0, bh=300.0).verdict == "neutral"  # exactly half: not wide
    assert run(ret=149.0, bh=300.0).verdict == "poor"
    assert run(ret=5.0, bh=20.0).verdict == "neutral"  # behind, but not by much
    assert run(ret=20.1, bh=20.0).verdict == "promising"


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


# -- significance and the benchmark -------------------------------------------------------------


def test_an_older_report_without_the_new_figures_is_never_promising():
    old = {
        k: v
        for k, v in BASE.items()
        if k in KEYS.values()
        and k
        not in (
            "Buy & Hold Sharpe Ratio",
            "Excess Sharpe",
            "Excess Return [%]",
            "Beta",
            "Alpha [%]",
            "Probabilistic Sharpe Ratio",
            "Deflated Sharpe Ratio",
            "p-value",
        )
    }
    a = assess(SPEC, TRAINING, old, {"EURUSD/1h": old})
    assert a.verdict == "neutral"
    assert "Deflated Sharpe n/a is below 0.95" in a.summary
    assert "p-value n/a against random timing is above 0.05" in a.summary


def test_excess_figures_fall_back_to_the_differences():
    # no Excess Sharpe / Excess Return in the report: Sharpe - B&H Sharpe, return - B&H return
    summary = {
        k: v
        for k, v in stats(sharpe=1.5, bh_sharpe=1.7).items()
        if k not in ("Excess Sharpe", "Excess Return [%]")
    }
    a = assess(SPEC, TRAINING, summary, {"EURUSD/1h": summary})
    assert a.verdict == "neutral"
    assert "Sharpe 1.50 vs buy & hold 1.70 (excess -0.20) is not above buy & hold" in a.summary


def test_neutral_summary_names_every_missing_condition_in_numbers():
    a = run(
        dsr=0.61,
        p=0.23,
        excess_sharpe=-0.3,
        bh_sharpe=1.8,
        excess_ret=-18.0,
        ret=12.0,
        bh=30.0,
        trials=40,
    )
    assert a.verdict == "neutral"
    assert "Deflated Sharpe 0.610 is below 0.95 after 40 trials" in a.summary
    assert "p-value 0.230 against random timing is above 0.05" in a.summary
    assert "Sharpe 1.50 vs buy & hold 1.80 (excess -0.30) is not above buy & hold" in a.summary
    assert "return 12.0% vs buy & hold 30.0% (excess -18.0 points)" in a.summary


def test_benchmark_comparison_in_numbers():
    a = run(trials=12)
    strengths = " | ".join(a.strengths)
    assert (
        "Sharpe 1.50 vs buy & hold 0.90 (excess +0.60): more return per unit of risk than "
        "holding the asset"
    ) in strengths
    assert "beta 0.20 to buy & hold, alpha 11.0% a year: the returns do not come from" in strengths
    assert (
        "significant: Deflated Sharpe 0.970 after 12 trials and p-value 0.012 against random timing"
    ) in strengths
    # the benchmark and significance come first: the item limit never drops them
    assert a.strengths[0].startswith("Sharpe 1.50 vs buy & hold 0.90")


def test_market_exposure_is_a_weakness_with_advice():
    a = run(excess_sharpe=-0.2, bh_sharpe=1.7, beta=0.96, alpha=-1.5, exposure=99.9)
    weak = " | ".join(a.weaknesses)
    assert "Sharpe 1.50 vs buy & hold 1.70 (excess -0.20): no more return per unit of risk" in weak
    assert (
        "beta 0.96 to buy & hold, alpha -1.5% a year: the returns mostly come from market exposure"
    ) in weak
    assert "in the market 99.9% of the time" in weak
    # the example spec's zigzag labels: stand aside more with a larger threshold
    assert [s for s in a.suggestions if "so that flat" in s] == [
        "to beat buy & hold rather than ride it, raise the zigzag threshold from 0.005 to "
        "0.0075 so that flat (no position) is predicted when no clear move is due"
    ]
    # a Sharpe above 1 is no strength where holding the asset did better
    assert not any(s.startswith("Sharpe 1.50 over the backtest period") for s in a.strengths)
    two_class = spec_with(
        training__labels={"source": "forward_return", "horizon": 8, "threshold": 0}
    )
    b = run(spec=two_class, excess_sharpe=-0.2, beta=0.96)
    assert any(
        "add a dead zone to the forward-return labels" in s and "over 8 bars" in s
        for s in b.suggestions
    )


def test_not_significant_asks_for_other_inputs_than_tuning():
    a = run(dsr=0.42, psr=0.91, p=0.3, trials=25)
    weak = " | ".join(a.weaknesses)
    assert (
        "Deflated Sharpe 0.420 < 0.95 after 25 trials (before deflating: 0.910): the Sharpe "
        "could be the luck of the best of many tries"
    ) in weak
    assert "p-value 0.300 > 0.05: 30% of random timings of the same positions did" in weak
    assert any(
        "try other kinds of inputs than rsi, sma rather than tuning" in s for s in a.suggestions
    )
    assert any("inputs of another kind than rsi, sma" in h for h in a.hypotheses)


def test_training_lift_over_the_majority_class():
    lifted = {**TRAINING, "baseline_accuracy": 0.5, "accuracy_lift": 0.05, "loss_ratio": 0.9}
    a = run(training=lifted)
    assert any(
        "test accuracy 0.53 vs 0.50 always predicting the majority class (lift +0.05)" in s
        for s in a.strengths
    )
    assert "(lift +0.05 over the majority class)" in a.summary
    flat = {**TRAINING, "baseline_accuracy": 0.53, "accuracy_lift": 0.0, "loss_ratio": 0.995}
    b = run(training=flat)
    weak = " | ".join(b.weaknesses)
    assert "(lift +0.00): the inputs barely predict the labels" in weak
    assert "test loss is 100% of the labels' entropy" in weak
