"""Every gate check wide open, as resource fields and as GATE_* variables, so that a test
provokes exactly the check it closes. Derived from ``GateThresholds``' own fields: a new check
that is not opened here fails ``tests/core/test_gates.py``'s coverage test, not a slow one."""

from research_assets.core.gates import GateThresholds, env_names

# The most permissive value of each threshold. A figure that is missing (no trades, so no
# Sharpe ratio or p-value) still fails its check whatever the threshold.
OPEN_GATES: dict[str, float] = {
    "min_accuracy": 0.0,
    "max_loss": 1_000_000.0,
    "min_loss_decrease": -1_000_000.0,
    "min_win_rate": 0.0,
    "max_drawdown": 1.0,
    "min_sharpe": -1_000_000.0,
    "min_accuracy_lift": -1.0,
    "max_loss_ratio": 1_000_000.0,
    "min_trades": 0.0,
    "min_deflated_sharpe": 0.0,
    "max_p_value": 1.0,
    "min_excess_sharpe": -1_000_000.0,
}
OPEN_GATES_ENV: dict[str, str] = {env_names()[k]: f"{v:g}" for k, v in OPEN_GATES.items()}
TRAINING_OPEN_ENV = {k: v for k, v in OPEN_GATES_ENV.items() if k.startswith("GATE_TRAINING_")}
BACKTEST_OPEN_ENV = {k: v for k, v in OPEN_GATES_ENV.items() if k.startswith("GATE_BACKTEST_")}


def open_thresholds(**closed: float) -> GateThresholds:
    """Every gate open but the ``closed`` fields given."""
    return GateThresholds(**{**OPEN_GATES, **closed})
