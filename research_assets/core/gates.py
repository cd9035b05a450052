"""Quality gates: pure pass/fail decisions on training metrics and backtest statistics.

A research that fails a gate stops there and is recorded as rejected with the first failing
check's reason, so that designers can learn from it. Every check is evaluated and reported even
after one fails, so a rejection shows the whole picture. A missing or NaN figure fails its check:
a gate never passes by accident.

**Training gate: does the model predict its labels better than their frequencies do?** A model
that always predicts the training labels' majority class scores the share of that class in the
test labels (``baseline_accuracy``), and one that predicts the training labels' class frequencies
scores their entropy as its cross-entropy (``label_entropy``). So the gate judges a model against
its own labels: ``accuracy_lift`` (test accuracy minus the baseline) at least
``min_accuracy_lift`` (``no_accuracy_lift``), and ``loss_ratio`` (test loss over the entropy;
below 1 is better than the frequencies) at most ``max_loss_ratio`` (``loss_above_baseline``).
Neither depends on how many classes the labels have or how balanced they are.

The seeds' absolute checks (test accuracy, test loss, loss decrease) stay, with their variables,
but are off by default (``0``, ``10``, ``-1``): they mostly measure the labels, not the model.
Measured on 48 offline-designer specs for each of the bundled data and three synthetic markets
(``benchmarks/training_gate_calibration.py``: 192 models, walk-forward with 4 folds), the seeds'
thresholds pass 75% of two-class models on driftless random walks, where nothing can be
predicted (balanced two-class labels have an entropy of ln 2 = 0.69 < 0.8, a coin flip's
accuracy is 0.5 > 0.45, and the network, which has three outputs, starts near a loss of ln 3, so
its loss falls by (ln 3 - ln 2) / ln 3 = 0.37 > 0.2 just by learning that a third class never
occurs), and 0% of three-class models on a planted learnable trend (ln 3 = 1.10 > 0.8).

The defaults of the relative checks come from the same measurements: a lift of at least 0.005
and a loss ratio of at most 1.0 pass 0% of the models on random walks, 2% with an upward drift,
54% on the planted trend (two-class 45%, three-class 61%; the other 23% learnt nothing, a lift of
about 0) and 17% on the bundled data. A loss ratio of 1 is the natural line (no worse than the
label frequencies); looser lines let noise through (1.02 passes 33% on random walks). A lift of
0.005 rather than 0 rejects models that predict one class (lift 0, rounding aside) and the lifts
between 0 and 0.005 that are 20% of random-walk models and none of the skilled ones. Whether the
skill a model has is worth trading is the backtest gate's question, where significance is judged.

**Backtest gate: skill, not luck or market exposure**, on the backtest period's statistics pooled
over the spec's datasets (``metrics.summarize``). In this order, since the first failure is the
reason a research is rejected and designers steer by it: at least ``min_trades`` trades
(``too_few_trades``: nothing else means much with fewer), the seeds' win rate, drawdown and
Sharpe checks, an ``Excess Sharpe`` over buy & hold strictly above ``min_excess_sharpe``
(``no_edge_over_benchmark``), a random-timing ``p-value`` of at most ``max_p_value``
(``no_edge_over_random``), and a ``Deflated Sharpe Ratio`` of at least ``min_deflated_sharpe``
(``not_significant``). The p-value and the Deflated Sharpe are those of the spec's datasets
pooled into one equal-weight portfolio (``significance.pooled_significance``).

The seeds' win-rate check stays, with its variable, but is off by default (``0``; the seeds'
0.45): the share of winning trades measures the shape of a strategy's trades, not its skill. A
trend follower loses small and often and wins big and rarely: on the planted-trend data every
variant of a spec that trades the trend (out-of-sample Sharpe about 2, p-value 0.01-0.02) won
30-41% of its trades, and the designer's specs that learnt the trend were rejected by it 9 times
in 15, while the designer's specs on random walks won 37-50% of theirs
(``benchmarks/research_quality.py --diagnose``). Skill is what the other checks judge.

>>> t = GateThresholds()
>>> r = evaluate_training_gate({"test_accuracy": 0.52, "test_loss": 0.67, "loss_decrease": 0.03,
...                             "accuracy_lift": -0.012, "loss_ratio": 0.97}, t)
>>> r.passed, r.reason
(False, 'no_accuracy_lift')
>>> r.description()
'accuracy lift -0.012 < 0.005 (no_accuracy_lift)'
>>> r = evaluate_backtest_gate({"# Trades": 12, "Win Rate [%]": 42.0, "Sharpe Ratio": 0.4,
...                             "Max. Drawdown [%]": 20, "Excess Sharpe": -0.2,
...                             "p-value": 0.31, "Deflated Sharpe Ratio": 0.61}, t)
>>> r.reason
'too_few_trades'
>>> print(r.description().replace("; ", "\\n"))
trades 12 < 30 (too_few_trades)
excess Sharpe -0.2 <= 0 (no_edge_over_benchmark)
p-value 0.31 > 0.05 (no_edge_over_random)
Deflated Sharpe 0.61 < 0.95 (not_significant)
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields

from research_assets.core.config import env_float
from research_assets.core.errors import ConfigError
from research_assets.core.names import BACKTEST_GATE, TRAINING_GATE

_FRACTION = "a fraction between 0 and 1 (0.4 means 40%)"
_PROBABILITY = "a probability between 0 and 1 (0.05, not 5)"

# Environment variable per threshold, the range a sensible value lies in, and how to say it
# (None: said from the range).
_ENV: dict[str, tuple[str, float, float, str | None]] = {
    "min_accuracy": ("GATE_TRAINING_MIN_ACCURACY", 0.0, 1.0, _FRACTION),
    "max_loss": ("GATE_TRAINING_MAX_LOSS", 0.0, math.inf, None),
    "min_loss_decrease": ("GATE_TRAINING_MIN_LOSS_DECREASE", -math.inf, 1.0, None),
    "min_win_rate": ("GATE_BACKTEST_MIN_WIN_RATE", 0.0, 1.0, _FRACTION),
    "max_drawdown": ("GATE_BACKTEST_MAX_DRAWDOWN", 0.0, 1.0, _FRACTION),
    "min_sharpe": ("GATE_BACKTEST_MIN_SHARPE", -math.inf, math.inf, None),
    "min_accuracy_lift": (
        "GATE_TRAINING_MIN_ACCURACY_LIFT",
        -1.0,
        1.0,
        "a difference of accuracies between -1 and 1 (0.02 means 2 points above the baseline)",
    ),
    "max_loss_ratio": (
        "GATE_TRAINING_MAX_LOSS_RATIO",
        0.0,
        math.inf,
        "a positive ratio of test loss to the labels' entropy (1 means no better than the "
        "label frequencies)",
    ),
    "min_trades": (
        "GATE_BACKTEST_MIN_TRADES",
        0.0,
        math.inf,
        "a whole number of trades, 0 or more",
    ),
    "min_deflated_sharpe": ("GATE_BACKTEST_MIN_DEFLATED_SHARPE", 0.0, 1.0, _PROBABILITY),
    "max_p_value": ("GATE_BACKTEST_MAX_P_VALUE", 0.0, 1.0, _PROBABILITY),
    "min_excess_sharpe": ("GATE_BACKTEST_MIN_EXCESS_SHARPE", -math.inf, math.inf, None),
}


def env_names() -> dict[str, str]:
    """Each threshold's environment variable, by field name."""
    return {field: spec[0] for field, spec in _ENV.items()}


def _range_text(low: float, high: float) -> str:
    if math.isfinite(low) and math.isfinite(high):
        return f"a number between {low:g} and {high:g}"
    if math.isfinite(low):
        return f"a finite number of at least {low:g}"
    if math.isfinite(high):
        return f"a finite number of at most {high:g}"
    return "a finite number"


@dataclass(frozen=True)
class GateThresholds:
    """Thresholds of both gates. Fractions, not percent: ``max_drawdown=0.4`` is 40%.

    The seeds' six come first (positional construction keeps working); the training gate's
    absolute ones are off by default (see the module docstring for why)."""

    min_accuracy: float = 0.0
    max_loss: float = 10.0
    min_loss_decrease: float = -1.0
    min_win_rate: float = 0.0  # off: see the module docstring; the seeds' 0.45
    max_drawdown: float = 0.4
    min_sharpe: float = -0.5
    min_accuracy_lift: float = 0.005
    max_loss_ratio: float = 1.0
    min_trades: float = 30.0
    min_deflated_sharpe: float = 0.95
    max_p_value: float = 0.05
    min_excess_sharpe: float = 0.0  # strictly above

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "GateThresholds":
        """Defaults overridden by ``GATE_TRAINING_*`` / ``GATE_BACKTEST_*`` variables."""
        defaults = cls()
        values: dict[str, float] = {}
        for f in fields(cls):
            name, low, high, hint = _ENV[f.name]
            default = getattr(defaults, f.name)
            value = env_float(name, default, env)
            if not math.isfinite(value) or not low <= value <= high:
                raise ConfigError(
                    f"{name}={value} is out of range: set it to {hint or _range_text(low, high)}, "
                    f"or unset it to use the default {_fmt(default)}"
                )
            if f.name == "min_trades" and value != int(value):
                raise ConfigError(
                    f"{name}={value} is not a whole number of trades: set it to one, such as "
                    f"{_fmt(default)}, or unset it to use the default"
                )
            values[f.name] = value
        return cls(**values)


# What "failed" reads as, for each comparison a check passes by.
_FAILED_RELATION = {">=": "<", "<=": ">", ">": "<=", "<": ">="}


@dataclass(frozen=True)
class GateCheck:
    """One comparison of a gate. ``observed`` is None when the figure was missing or NaN.

    ``name`` is machine-friendly (the metadata's ``<name>.observed``), ``label`` what a person
    reads (``win rate``, ``Deflated Sharpe``)."""

    name: str
    observed: float | None
    threshold: float
    comparison: str  # ">=", "<=" or ">" (strictly above)
    passed: bool
    reason: str  # the rejection reason this check gives when it fails
    label: str = ""

    def describe(self) -> str:
        """``win rate 0.42 < 0.45``: the observed value, the relation, the threshold."""
        label = self.label or self.name
        if self.observed is None:
            return f"{label} missing (needs {self.comparison} {_fmt(self.threshold)})"
        relation = self.comparison if self.passed else _FAILED_RELATION[self.comparison]
        return f"{label} {_fmt(self.observed)} {relation} {_fmt(self.threshold)}"


@dataclass(frozen=True)
class GateResult:
    gate: str  # TRAINING_GATE | BACKTEST_GATE
    passed: bool
    reason: str | None  # the first failing check's reason
    checks: tuple[GateCheck, ...]

    def metadata(self) -> dict[str, float | str | bool | None]:
        """Flat values for a Dagster asset check: ``<check>.observed``, ``<check>.threshold``,
        ``<check>.passed`` and ``<check>.reason`` (the reason it gives when it fails)."""
        out: dict[str, float | str | bool | None] = {"passed": self.passed, "reason": self.reason}
        for c in self.checks:
            out[f"{c.name}.observed"] = c.observed
            out[f"{c.name}.threshold"] = c.threshold
            out[f"{c.name}.passed"] = c.passed
            out[f"{c.name}.reason"] = c.reason
        return out

    def description(self) -> str:
        """One line in numbers: the failing checks with their reasons, first failure first
        (``trades 12 < 30 (too_few_trades); Deflated Sharpe 0.61 < 0.95 (not_significant)``),
        or every check when passed."""
        if self.passed:
            return "passed: " + ", ".join(c.describe() for c in self.checks)
        return "; ".join(f"{c.describe()} ({c.reason})" for c in self.checks if not c.passed)


def _fmt(x: float) -> str:
    """Four significant figures; whole numbers (trades, thresholds such as 0 or 30) as such."""
    if math.isfinite(x) and x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.4g}"


def observed(values: Mapping[str, float | None], key: str, scale: float = 1.0) -> float | None:
    """A finite-or-infinite float from ``values``, or None for missing, NaN or non-numbers."""
    raw = values.get(key)
    if raw is None or isinstance(raw, bool):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value * scale


def _check(
    name: str, label: str, observed: float | None, threshold: float, comparison: str, reason: str
) -> GateCheck:
    if observed is None:
        passed = False
    elif comparison == ">=":
        passed = observed >= threshold
    elif comparison == ">":
        passed = observed > threshold
    elif comparison == "<=":
        passed = observed <= threshold
    else:
        raise ValueError(f"unknown comparison {comparison!r}")
    return GateCheck(name, observed, threshold, comparison, passed, reason, label)


def _result(gate: str, checks: list[GateCheck]) -> GateResult:
    failed = [c for c in checks if not c.passed]
    return GateResult(
        gate=gate,
        passed=not failed,
        reason=failed[0].reason if failed else None,
        checks=tuple(checks),
    )


def evaluate_training_gate(metrics: Mapping[str, float], t: GateThresholds) -> GateResult:
    """The seeds' accuracy, loss and loss decrease (``test_accuracy``, ``test_loss``,
    ``loss_decrease``), then the lift over the labels' baseline (``accuracy_lift``,
    ``loss_ratio``) on the training metrics."""
    return _result(
        TRAINING_GATE,
        [
            _check(
                "accuracy",
                "accuracy",
                observed(metrics, "test_accuracy"),
                t.min_accuracy,
                ">=",
                "accuracy_below_threshold",
            ),
            _check(
                "loss", "loss", observed(metrics, "test_loss"), t.max_loss, "<=", "loss_too_high"
            ),
            _check(
                "loss_decrease",
                "loss decrease",
                observed(metrics, "loss_decrease"),
                t.min_loss_decrease,
                ">=",
                "insufficient_loss_decrease",
            ),
            _check(
                "accuracy_lift",
                "accuracy lift",
                observed(metrics, "accuracy_lift"),
                t.min_accuracy_lift,
                ">=",
                "no_accuracy_lift",
            ),
            _check(
                "loss_ratio",
                "loss ratio",
                observed(metrics, "loss_ratio"),
                t.max_loss_ratio,
                "<=",
                "loss_above_baseline",
            ),
        ],
    )


def evaluate_backtest_gate(summary: Mapping[str, float], t: GateThresholds) -> GateResult:
    """Trades, win rate, max drawdown, Sharpe, excess Sharpe over buy & hold, the random-timing
    p-value and the Deflated Sharpe Ratio on the aggregate backtest-period statistics.

    ``Win Rate [%]`` is NaN when there were no trades: that fails ``win_rate_too_low`` (after
    ``too_few_trades``); a strategy without trades has no Sharpe, excess Sharpe, p-value or
    Deflated Sharpe either, and fails those checks too.
    """
    drawdown = observed(summary, "Max. Drawdown [%]", 0.01)
    if drawdown is not None:
        drawdown = abs(drawdown)  # a magnitude, whichever sign convention produced it
    return _result(
        BACKTEST_GATE,
        [
            _check(
                "trades",
                "trades",
                observed(summary, "# Trades"),
                t.min_trades,
                ">=",
                "too_few_trades",
            ),
            _check(
                "win_rate",
                "win rate",
                observed(summary, "Win Rate [%]", 0.01),
                t.min_win_rate,
                ">=",
                "win_rate_too_low",
            ),
            _check(
                "max_drawdown", "max drawdown", drawdown, t.max_drawdown, "<=", "drawdown_too_high"
            ),
            _check(
                "sharpe",
                "Sharpe",
                observed(summary, "Sharpe Ratio"),
                t.min_sharpe,
                ">=",
                "sharpe_too_low",
            ),
            _check(
                "excess_sharpe",
                "excess Sharpe",
                observed(summary, "Excess Sharpe"),
                t.min_excess_sharpe,
                ">",
                "no_edge_over_benchmark",
            ),
            _check(
                "p_value",
                "p-value",
                observed(summary, "p-value"),
                t.max_p_value,
                "<=",
                "no_edge_over_random",
            ),
            _check(
                "deflated_sharpe",
                "Deflated Sharpe",
                observed(summary, "Deflated Sharpe Ratio"),
                t.min_deflated_sharpe,
                ">=",
                "not_significant",
            ),
        ],
    )
