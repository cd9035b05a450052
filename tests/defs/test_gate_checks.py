"""The gates as Dagster checks: one blocking check per criterion, each scoped to a research."""

import subprocess
import sys

import dagster as dg
import pytest
from dagster._core.event_api import PartitionKeyFilter
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from research_assets.core.gates import (
    BACKTEST_GATE,
    TRAINING_GATE,
    GateThresholds,
    env_names,
    evaluate_backtest_gate,
    evaluate_training_gate,
)
from research_assets.core.names import GATED_ASSETS
from research_assets.definitions import defs
from research_assets.defs.partitions import research_partitions
from research_assets.state.records import load_statuses
from tests.defs.test_research_assets import run_research
from tests.gate_support import OPEN_GATES

CRITERIA = {
    TRAINING_GATE: [c.name for c in evaluate_training_gate({}, GateThresholds()).checks],
    BACKTEST_GATE: [c.name for c in evaluate_backtest_gate({}, GateThresholds()).checks],
}


def test_each_criterion_of_a_gate_is_a_blocking_check_partitioned_by_research():
    variables = env_names()
    for gate, asset in GATED_ASSETS.items():
        specs = defs.resolve_assets_def(asset).check_specs
        assert [s.name for s in specs] == CRITERIA[gate]
        for spec in specs:
            assert spec.blocking
            assert spec.partitions_def == research_partitions
            assert spec.metadata["gate"] == gate
            # the variable that sets the threshold is the one gates.py reads for it
            assert spec.metadata["threshold_variable"] in variables.values()
            assert spec.metadata["threshold_variable"] in spec.description
    assert {
        s.metadata["threshold_variable"]
        for a in GATED_ASSETS.values()
        for s in defs.resolve_assets_def(a).check_specs
    } == set(variables.values())
    p_value = next(
        s for s in defs.resolve_assets_def("backtest_report").check_specs if s.name == "p_value"
    )
    assert p_value.description.startswith(
        "backtest_gate: p-value <= GATE_BACKTEST_MAX_P_VALUE (default 0.05)"
    )


def test_loading_the_definitions_shows_no_preview_warning_but_others_still_show():
    # A fresh interpreter: the definitions are already imported in this one.
    code = (
        "import warnings, dagster as dg\n"
        "warnings.simplefilter('error', dg.PreviewWarning)\n"
        "import research_assets.definitions\n"
        "from research_assets.defs.partitions import research_partitions\n"
        "try:\n"
        "    dg.AssetCheckSpec('x', asset='a', partitions_def=research_partitions)\n"
        "except dg.PreviewWarning:\n"
        "    print('other preview warnings still show')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "other preview warnings still show"


def test_a_launch_cannot_leave_out_some_of_a_gates_checks(instance, small_spec):
    # The asset does not subset: a launch with only one criterion of a gate is refused, as one
    # without any is (test_research_assets.py), so no criterion can be skipped.
    only_trades = dg.AssetSelection.assets(
        "strategy_spec", "trained_model", "backtest_report"
    ).without_checks() | dg.AssetSelection.checks(
        dg.AssetCheckKey(dg.AssetKey("backtest_report"), "trades")
    )
    with pytest.raises(dg.DagsterInvalidDefinitionError) as raised:
        run_research(instance, "r-some", small_spec, selection=only_trades)
    assert "does not support subsetting" in str(raised.value.__cause__)


def history(instance, asset: str, check: str, research_id: str | None = None):
    return instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey(asset), check),
        limit=100,
        partition_filter=None if research_id is None else PartitionKeyFilter(key=research_id),
    )


@pytest.mark.slow
def test_each_research_has_its_own_check_status_and_history(instance, small_spec):
    run_research(instance, "r-pass", small_spec)
    rejected = run_research(
        instance, "r-no", small_spec, gates={**OPEN_GATES, "min_sharpe": 100.0, "max_p_value": 0.0}
    )
    # Rejections stay blocking: the failed checks stop the run before anything downstream.
    assert not rejected.success
    [failure] = [e for e in rejected.all_events if e.is_step_failure]
    assert failure.step_key == "backtest_report"
    assert "backtest_report: sharpe,p_value" in failure.step_failure_data.error.message
    assert {e.asset_key.to_user_string() for e in rejected.get_asset_materialization_events()} == {
        "strategy_spec",
        "trained_model",
        "backtest_report",
    }
    [status] = load_statuses(instance, ["r-no"])
    assert (status.status, status.reason) == ("rejected", "sharpe_too_low")

    for gate, asset in GATED_ASSETS.items():
        for check in CRITERIA[gate]:
            everything = history(instance, asset, check)
            # Every evaluation is stored for its research, so no history mixes researches.
            assert sorted(r.partition for r in everything) == ["r-no", "r-pass"], check
            [passed] = history(instance, asset, check, "r-pass")
            # the research that ran last did not change the passed one's status
            assert passed.status == AssetCheckExecutionRecordStatus.SUCCEEDED, check
            assert passed.event.asset_check_evaluation.metadata["gate_passed"].value is True

    def rejected_check(check: str):
        [record] = history(instance, "backtest_report", check, "r-no")
        evaluation = record.event.asset_check_evaluation
        assert evaluation.partition == "r-no"
        return (
            record.status,
            evaluation.description,
            {k: v.value for k, v in evaluation.metadata.items()},
        )

    status, description, metadata = rejected_check("sharpe")
    assert status == AssetCheckExecutionRecordStatus.FAILED
    assert float(metadata.pop("observed")) < 100
    assert description.startswith("Sharpe ") and description.endswith(
        " < 100: rejected as sharpe_too_low"
    )
    assert metadata == {
        "threshold": "100",
        "comparison": ">=",
        "reason": "sharpe_too_low",
        "gate": "backtest_gate",
        "gate_passed": False,
        "gate_reason": "sharpe_too_low",
    }

    status, description, metadata = rejected_check("p_value")
    assert status == AssetCheckExecutionRecordStatus.FAILED
    assert description.endswith(
        " > 0 (no_edge_over_random); rejected as sharpe_too_low, "
        "backtest_gate's first failing check"
    )
    assert (metadata["threshold"], metadata["reason"]) == ("0", "no_edge_over_random")

    status, description, metadata = rejected_check("trades")
    assert status == AssetCheckExecutionRecordStatus.SUCCEEDED
    assert (metadata["gate_passed"], metadata["gate_reason"]) == (False, "sharpe_too_low")
    assert description.startswith("trades ") and " >= 0" in description


@pytest.mark.slow
def test_a_missing_figure_fails_its_check_and_says_so(instance, small_spec):
    # A model that never takes a position: no trades, so no win rate (a NaN), which fails.
    data = small_spec.to_dict()
    data["decisions"] = {"confidence_threshold": 0.99}
    spec = type(small_spec).from_dict(data)
    result = run_research(instance, "r-idle", spec)
    assert not result.success
    [record] = history(instance, "backtest_report", "win_rate", "r-idle")
    evaluation = record.event.asset_check_evaluation
    assert record.status == AssetCheckExecutionRecordStatus.FAILED
    assert evaluation.metadata["observed"].value == "missing"
    assert evaluation.description == "win rate missing (needs >= 0): rejected as win_rate_too_low"
