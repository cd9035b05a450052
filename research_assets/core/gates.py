"""Quality gates: pure pass/fail decisions on training metrics and backtest statistics.

A research that fails a gate stops there and is recorded as rejected with the first failing
check's reason, so that designers can learn from it. Every check is evaluated and reported even
after one fails, so a rejection shows the whole picture. A missing or NaN figure fails its check:
a gate never passes by accident.

>>> t = GateThresholds()
>>> r = evaluate_training_gate({"test_accuracy": 0.41, "test_loss": 0.6, "loss_decrease": 0.3}, t)
>>> r.passed, r.reason
(False, 'accuracy_below_threshold')
>>> r.description()
'accuracy 0.41 < 0.45 (accuracy_below_threshold)'
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields

from research_assets.core.config import env_float
from research_assets.core.errors import ConfigError

TRAINING_GATE = "training_gate"
BACKTEST_GATE = "backtest_gate"

# Environment variable per threshold, and the range a sensible value lies in.
_ENV: dict[str, tuple[str, float, float]] = {
    "min_accuracy": ("GATE_TRAINING_MIN_ACCURACY", 0.0, 1.0),
    "max_loss": ("GATE_TRAINING_MAX_LOSS", 0.0, math.inf),
    "min_loss_decrease": ("GATE_TRAINING_MIN_LOSS_DECREASE", -math.inf, 1.0),
    "min_win_rate": ("GATE_BACKTEST_MIN_WIN_RATE", 0.0, 1.0),
    "max_drawdown": ("GATE_BACKTEST_MAX_DRAWDOWN", 0.0, 1.0),
    "min_sharpe": ("GATE_BACKTEST_MIN_SHARPE", -math.inf, math.inf),
}


def _range_text(low: float, high: float) -> str:
    if (low, high) == (0.0, 1.0):
        return "a fraction between 0 and 1 (0.4 means 40%)"
    if math.isfinite(low) and math.isfinite(high):
        return f"a number between {low:g} and {high:g}"
    if math.isfinite(low):
        return f"a finite number of at least {low:g}"
    if math.isfinite(high):
        return f"a finite number of at most {high:g}"
    return "a finite number"


@dataclass(frozen=True)
class GateThresholds:
    """Thresholds of both gates. Fractions, not percent: ``max_drawdown=0.4`` is 40%."""

    min_accuracy: float = 0.45
    max_loss: float = 0.8
    min_loss_decrease: float = 0.2
    min_win_rate: float = 0.45
    max_drawdown: float = 0.4
    min_sharpe: float = -0.5

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "GateThresholds":
        """Defaults overridden by ``GATE_TRAINING_*`` / ``GATE_BACKTEST_*`` variables."""
        defaults = cls()
        values: dict[str, float] = {}
        for f in fields(cls):
            name, low, high = _ENV[f.name]
            default = getattr(defaults, f.name)
            value = env_float(name, default, env)
            if not math.isfinite(value) or not low <= value <= high:
                raise ConfigError(
                    f"{name}={value} is out of range: set it to {_range_text(low, high)}, "
                    f"or unset it to use the default {default}"
                )
            values[f.name] = value
        return cls(**values)


@dataclass(frozen=True)
class GateCheck:
    """One comparison of a gate. ``observed`` is None when the figure was missing or NaN."""

    name: str
    observed: float | None
    threshold: float
    comparison: str  # ">=" or "<="
    passed: bool
    reason: str  # the rejection reason this check gives when it fails

    def describe(self) -> str:
        """``accuracy 0.41 < 0.45``: the observed value, the relation, the threshold."""
        if self.observed is None:
            return f"{self.name} missing (needs {self.comparison} {_fmt(self.threshold)})"
        if self.passed:
            relation = self.comparison
        else:
            relation = "<" if self.comparison == ">=" else ">"
        return f"{self.name} {_fmt(self.observed)} {relation} {_fmt(self.threshold)}"


@dataclass(frozen=True)
class GateResult:
    gate: str  # "training_gate" | "backtest_gate"
    passed: bool
    reason: str | None  # the first failing check's reason
    checks: tuple[GateCheck, ...]

    def metadata(self) -> dict[str, float | str | bool | None]:
        """Flat values for a Dagster asset check: ``<check>.observed``, ``<check>.threshold``..."""
        out: dict[str, float | str | bool | None] = {"passed": self.passed, "reason": self.reason}
        for c in self.checks:
            out[f"{c.name}.observed"] = c.observed
            out[f"{c.name}.threshold"] = c.threshold
            out[f"{c.name}.passed"] = c.passed
        return out

    def description(self) -> str:
        """One line: the failing checks with their reasons, or every check when passed."""
        if self.passed:
            return "passed: " + ", ".join(c.describe() for c in self.checks)
        return "; ".join(f"{c.describe()} ({c.reason})" for c in self.checks if not c.passed)


def _fmt(x: float) -> str:
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
    name: str, observed: float | None, threshold: float, comparison: str, reason: str
) -> GateCheck:
    if observed is None:
        passed = False
    elif comparison == ">=":
        passed = observed >= threshold
    else:
        passed = observed <= threshold
    return GateCheck(name, observed, threshold, comparison, passed, reason)


def _result(gate: str, checks: list[GateCheck]) -> GateResult:
    failed = [c for c in checks if not c.passed]
    return GateResult(
        gate=gate,
        passed=not failed,
        reason=failed[0].reason if failed else None,
        checks=tuple(checks),
    )


def evaluate_training_gate(metrics: Mapping[str, float], t: GateThresholds) -> GateResult:
    """Accuracy, loss and loss decrease on the training metrics (``test_accuracy``...)."""
    return _result(
        TRAINING_GATE,
        [
            _check(
                "accuracy",
                observed(metrics, "test_accuracy"),
                t.min_accuracy,
                ">=",
                "accuracy_below_threshold",
            ),
            _check("loss", observed(metrics, "test_loss"), t.max_loss, "<=", "loss_too_high"),
            _check(
                "loss_decrease",
                observed(metrics, "loss_decrease"),
                t.min_loss_decrease,
                ">=",
                "insufficient_loss_decrease",
            ),
        ],
    )


def evaluate_backtest_gate(summary: Mapping[str, float], t: GateThresholds) -> GateResult:
    """Win rate, max drawdown and Sharpe on the aggregate backtest-period statistics.

    ``Win Rate [%]`` is NaN when there were no trades: that fails ``win_rate_too_low``.
    """
    drawdown = observed(summary, "Max. Drawdown [%]", 0.01)
    if drawdown is not None:
        drawdown = abs(drawdown)  # a magnitude, whichever sign convention produced it
    return _result(
        BACKTEST_GATE,
        [
            _check(
                "win_rate",
                observed(summary, "Win Rate [%]", 0.01),
                t.min_win_rate,
                ">=",
                "win_rate_too_low",
            ),
            _check("max_drawdown", drawdown, t.max_drawdown, "<=", "drawdown_too_high"),
            _check(
                "sharpe", observed(summary, "Sharpe Ratio"), t.min_sharpe, ">=", "sharpe_too_low"
            ),
        ],
    )
