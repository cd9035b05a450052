"""The quality gates as Dagster asset checks: one blocking check per gate criterion, partitioned
by research.

``trained_model`` carries the training gate's criteria (``accuracy``, ``loss``,
``loss_decrease``, ``accuracy_lift``, ``loss_ratio``) and ``backtest_report`` the backtest gate's
(``trades``, ``win_rate``, ``max_drawdown``, ``sharpe``, ``excess_sharpe``, ``p_value``,
``deflated_sharpe``); the names, labels, comparisons and rejection reasons are core/gates.py's,
read from it rather than written out again. Each evaluation records the research's observed
value, the threshold, the comparison and the reason the criterion rejects a research with, and
the gate's verdict for the whole research.

**Why partitioned checks.** An unpartitioned check on a partitioned asset keeps one status for
all researches: the UI showed whichever research ran last, and its history and plots jumped from
one research to the next. With ``AssetCheckSpec(partitions_def=research_partitions)`` Dagster
stores the research on each evaluation (``AssetCheckEvaluation.partition``), keeps a status per
research (the check's "Partitions" tab, its ``partitionStatuses`` and
``assetCheckExecutions(partition: ...)`` in GraphQL), and counts the researches each criterion
failed ("3 of 40 partitions failed"). Dagster 1.13 marks this API as preview; it is the only way
to scope a check's status to a partition in Dagster's own storage and UI (a check per research
would be a definition per dynamic partition), and what it changes is where the evaluations are
stored and shown, not whether a failed check blocks: blocking is the step's, whatever the
partitioning (``execute_step``'s ``DagsterAssetCheckFailedError``).

**Why one check per criterion rather than one per gate.** Each criterion is a property of the
asset with its own threshold and rejection reason, which is what a Dagster check is: a rejected
research's partition shows which criteria failed and by how much, each criterion's status
counts the researches it rejected, and the run's failure names the failed criteria. The gate's
verdict (and the reason the research is rejected, its first failing criterion) is on every
evaluation and in the asset's own metadata.

Every check is blocking with ERROR severity, so a failed criterion stops the research's run
before anything downstream. A launch cannot leave the checks out (the asset does not subset),
and a later launch of what lies downstream refuses on the gate's outcome recorded in the
asset's metadata (``assets._require_gate``), so no launch gets past a gate.
"""

import math
import warnings
from collections.abc import Iterator
from dataclasses import fields
from typing import Any

import dagster as dg

from research_assets.core.gates import (
    BACKTEST_GATE,
    TRAINING_GATE,
    GateCheck,
    GateResult,
    GateThresholds,
    env_names,
    evaluate_backtest_gate,
    evaluate_training_gate,
)
from research_assets.core.names import GATED_ASSETS
from research_assets.defs.partitions import research_partitions
from research_assets.defs.tags import GATE_DESCRIPTION, GATE_PASSED, GATE_REASON

_EVALUATE = {TRAINING_GATE: evaluate_training_gate, BACKTEST_GATE: evaluate_backtest_gate}
_WHAT = {
    TRAINING_GATE: "the test folds of the walk-forward training",
    BACKTEST_GATE: "the backtest period, the spec's datasets pooled",
}
# Dagster warns once per process that loads the definitions (code server, daemon, webserver,
# every run worker and `research` command) that partitioned checks are in preview. The choice is
# made and explained above; the warning is silenced for exactly this message, and only while
# these specs are built, so any other preview or beta warning still shows.
_PREVIEW_WARNING = r"Specifying a partitions_def on an AssetCheckSpec is currently in preview"


def _criteria(gate: str) -> tuple[GateCheck, ...]:
    """The gate's criteria, in its order, each with its default threshold: the gate evaluated on
    no figures (every criterion then fails, which is irrelevant here)."""
    return _EVALUATE[gate]({}, GateThresholds()).checks


def _threshold_variables(gate: str) -> dict[str, str]:
    """Each criterion's GATE_* variable. The gate is evaluated once more with every threshold
    set to a distinct value, so the value a criterion compares with names its threshold field:
    the mapping is gates.py's own, not a second copy of it here."""
    probe = {f.name: float(i) + 0.5 for i, f in enumerate(fields(GateThresholds))}
    by_value = {value: name for name, value in probe.items()}
    env = env_names()
    checks = _EVALUATE[gate]({}, GateThresholds(**probe)).checks
    return {c.name: env[by_value[c.threshold]] for c in checks}


def _spec(gate: str, criterion: GateCheck, variable: str) -> dg.AssetCheckSpec:
    label = criterion.label or criterion.name
    return dg.AssetCheckSpec(
        criterion.name,
        asset=GATED_ASSETS[gate],
        blocking=True,
        partitions_def=research_partitions,
        description=(
            f"{gate}: {label} {criterion.comparison} {variable} (default "
            f"{criterion.threshold:g}) on {_WHAT[gate]}. A research that fails it is "
            f"rejected as {criterion.reason} and nothing downstream runs for it."
        ),
        metadata={"gate": gate, "threshold_variable": variable, "reason": criterion.reason},
    )


def gate_check_specs(gate: str) -> list[dg.AssetCheckSpec]:
    """One blocking check per criterion of ``gate``, partitioned by research."""
    variables = _threshold_variables(gate)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PREVIEW_WARNING, category=dg.PreviewWarning)
        return [_spec(gate, c, variables[c.name]) for c in _criteria(gate)]


TRAINING_GATE_CHECKS = gate_check_specs(TRAINING_GATE)
BACKTEST_GATE_CHECKS = gate_check_specs(BACKTEST_GATE)


def gate_metadata(gate: GateResult) -> dict[str, Any]:
    """The gate's outcome on the gated asset's materialization, which the research's status and
    the later launches' refusal (``assets._require_gate``) read back."""
    return {
        GATE_PASSED: gate.passed,
        GATE_REASON: gate.reason or "",
        GATE_DESCRIPTION: gate.description(),
        gate.gate: dg.MetadataValue.json(gate.metadata()),
    }


def gate_check_results(
    context: dg.AssetExecutionContext, gate: GateResult
) -> Iterator[dg.AssetCheckResult]:
    """One result per criterion of ``gate`` for this research. Dagster records each for the
    run's partition (the research), as the specs are partitioned."""
    asset_key = dg.AssetKey(GATED_ASSETS[gate.gate])
    for criterion in gate.checks:
        key = dg.AssetCheckKey(asset_key, criterion.name)
        if key not in context.selected_asset_check_keys:
            continue
        yield dg.AssetCheckResult(
            check_name=criterion.name,
            asset_key=asset_key,
            passed=criterion.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=_describe(criterion, gate),
            metadata=_check_metadata(criterion, gate),
        )


def _describe(criterion: GateCheck, gate: GateResult) -> str:
    """``trades 12 < 30: rejected as too_few_trades``, or ``p-value 0.31 > 0.05
    (no_edge_over_random); rejected as too_few_trades, backtest_gate's first failing check``."""
    if criterion.passed:
        return criterion.describe()
    if criterion.reason == gate.reason:
        return f"{criterion.describe()}: rejected as {criterion.reason}"
    return (
        f"{criterion.describe()} ({criterion.reason}); rejected as {gate.reason}, "
        f"{gate.gate}'s first failing check"
    )


def _number(x: float) -> str:
    return str(int(x)) if math.isfinite(x) and x == int(x) and abs(x) < 1e15 else f"{x:.6g}"


def _check_metadata(criterion: GateCheck, gate: GateResult) -> dict[str, Any]:
    """The research's figures for one criterion. The observed value and the threshold are text,
    not numbers: the check's Overview tab plots every numeric entry over the evaluations of all
    researches in one unlabelled line, which reads as one research's history; each research's
    own history is its partition's."""
    metadata: dict[str, Any] = {
        # A missing or NaN figure fails its criterion: shown as such, not as a number.
        "observed": "missing" if criterion.observed is None else _number(criterion.observed),
        "threshold": _number(criterion.threshold),
        "comparison": criterion.comparison,
        "reason": criterion.reason,
        "gate": gate.gate,
        "gate_passed": gate.passed,
    }
    if not gate.passed:
        metadata["gate_reason"] = gate.reason or ""
    return metadata
